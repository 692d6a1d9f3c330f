"""The TMF656 task resources: ``problemAcknowledgement`` and ``problemUnacknowledgement`` (a problem acknowledged
by the NOC, or handed back), ``problemGroup`` and ``problemUngroup`` (problems grouped under a parent problem:
the children name it in ``parentProblem``, the parent lists them in ``underlyingProblem``). A task is carried out at
once, in its request's transaction, and recorded with what it changed (``ackProblem``, ``unackProblem``)."""

from __future__ import annotations

from typing import Any

from openbss.assurance.errors import InvalidProblem
from openbss.assurance.problems import ServiceProblemService
from openbss.platform.db import utcnow
from openbss.platform.errors import NotFound
from openbss.platform.tmf.resource import Context, ResourceService, TmfApi, TmfResource
from openbss.platform.tmf.spec import format_datetime

#: task path → (resource type, the attribute listing the problems it changed)
PROBLEM_TASKS = {"problemAcknowledgement": ("ProblemAcknowledgement", "ackProblem"),
                 "problemUnacknowledgement": ("ProblemUnacknowledgement", "unackProblem"),
                 "problemGroup": ("ProblemGroup", None), "problemUngroup": ("ProblemUngroup", None)}
ACKNOWLEDGEABLE = frozenset({"pending", "inProgress"})


def _ids(refs: Any, what: str) -> list[str]:
    if not isinstance(refs, list) or not refs:
        raise InvalidProblem(f"'{what}' names at least one service problem")
    ids = [str(r.get("id") or "") for r in refs if isinstance(r, dict)]
    if len(ids) != len(refs) or not all(ids):
        raise InvalidProblem(f"every item of '{what}' is a service problem reference with an 'id'")
    return list(dict.fromkeys(ids))


class ProblemTaskService(ResourceService):
    def __init__(self, api: TmfApi, resource: TmfResource, problems: ServiceProblemService) -> None:
        super().__init__(api, resource)
        self.problems = problems

    async def _exists(self, ctx: Context, ids: list[str], what: str) -> None:
        for problem_id in ids:
            try:
                await self.problems.store.get(ctx, problem_id)
            except NotFound as exc:
                raise InvalidProblem(f"'{what}': service problem '{problem_id}' does not exist") from exc

    def _ref(self, ctx: Context, problem_id: str) -> dict[str, Any]:
        return {"id": problem_id, "href": self.problems.store.href(ctx.base_url, problem_id),
                "@referredType": "ServiceProblem"}

    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        doc = dict(doc)
        path = self.resource.path
        result = PROBLEM_TASKS[path][1]
        if result and result in doc:
            raise InvalidProblem(f"'{result}' is the task's result; leave it out")
        now = format_datetime(utcnow())
        if result:
            ids = _ids(doc.get("problem"), "problem")
            await self._exists(ctx, ids, "problem")
            wanted = "acknowledged" if path == "problemAcknowledgement" else "pending"
            done = []
            for problem_id in ids:
                changed = False

                def mutate(p: dict[str, Any], wanted: str = wanted) -> None:
                    nonlocal changed
                    status = p.get("status")
                    if (wanted == "acknowledged" and status in ACKNOWLEDGEABLE) or (
                            wanted == "pending" and status == "acknowledged"):
                        p.update(status=wanted, statusChangeDate=now,
                                 statusChangeReason=f"{self.resource.type} by {ctx.principal.subject}")
                        changed = True

                await self.problems.change(ctx, problem_id, mutate, action=path)
                if changed:
                    done.append(self._ref(ctx, problem_id))
            doc[result] = done
            doc.setdefault("trackingRecord", {"description": self.resource.type, "time": now,
                                              "user": ctx.principal.subject, "systemId": "openbss"})
        else:
            parent = str((doc.get("parentProblem") or {}).get("id") or "")
            if not parent:
                raise InvalidProblem("'parentProblem' names the parent service problem")
            children = _ids(doc.get("childProblem"), "childProblem")
            if parent in children:
                raise InvalidProblem(f"service problem '{parent}' cannot be its own child")
            await self._exists(ctx, [parent], "parentProblem")
            await self._exists(ctx, children, "childProblem")
            grouping = path == "problemGroup"
            parent_ref, child_refs = self._ref(ctx, parent), [self._ref(ctx, c) for c in children]

            def on_parent(p: dict[str, Any]) -> None:
                kept = [r for r in p.get("underlyingProblem") or [] if r.get("id") not in children]
                p["underlyingProblem"] = [*kept, *child_refs] if grouping else kept
                if not p["underlyingProblem"]:
                    p.pop("underlyingProblem")

            await self.problems.change(ctx, parent, on_parent, action=path)
            for child in children:
                def on_child(p: dict[str, Any]) -> None:
                    kept = [r for r in p.get("parentProblem") or [] if r.get("id") != parent]
                    p["parentProblem"] = [*kept, parent_ref] if grouping else kept
                    if not p["parentProblem"]:
                        p.pop("parentProblem")

                await self.problems.change(ctx, child, on_child, action=path)
            doc["parentProblem"], doc["childProblem"] = parent_ref, child_refs
        doc["id"] = self.resource.id_factory()
        return await self.record(ctx, doc)


__all__ = ["PROBLEM_TASKS", "ProblemTaskService"]
