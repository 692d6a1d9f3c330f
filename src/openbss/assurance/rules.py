"""Correlation rules: data per tenant, managed through ``/api/assurance/v1/correlationRule``.

* ``suppression`` — a child alarm is suppressed while **every** parent of its object is down (a parent is down while
  it has an open alarm of one of ``downSeverities``). Parents are the resources its TMF639 ``resourceRelationship``
  names with one of ``relationshipTypes`` (default ``reliesOn``).
* ``rootCause`` — an alarm on a child raised within ``windowSeconds`` (before or after) of an open alarm on one of
  its parents is correlated to it: ``parentAlarm`` names the parent's alarm, ``isRootCause`` is false.
* ``grouping`` — which alarms open a service problem (``severities``, default ``critical``) and, with ``scope``
  ``topology`` (the default), correlated alarms join the problem of their parent alarm instead of opening their own;
  ``object`` keeps one problem per managed object.

Without any rule a tenant gets one problem per managed object for its critical alarms. Of several enabled rules of
one kind, the one with the lowest ``priority`` applies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select

from openbss.assurance import x733
from openbss.assurance.errors import InvalidRule
from openbss.assurance.models import CorrelationRule
from openbss.platform.errors import NotFound
from openbss.platform.tmf.errors import validation_message
from openbss.platform.tmf.resource import Context

KINDS = ("suppression", "rootCause", "grouping")
DEFAULT_RELATIONSHIPS = ["reliesOn"]
#: what a tenant without a grouping rule gets
DEFAULT_PROBLEM_SEVERITIES = frozenset({"critical"})


class RuleBody(BaseModel):
    """A rule as a client gives it (every parameter has a default)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: str
    enabled: bool = True
    priority: int = Field(100, ge=0, le=10_000)
    relationshipTypes: list[str] = Field(default_factory=lambda: list(DEFAULT_RELATIONSHIPS), min_length=1)
    downSeverities: list[str] = Field(default_factory=lambda: ["critical"], min_length=1)
    windowSeconds: int = Field(60, ge=1, le=86_400)
    severities: list[str] = Field(default_factory=lambda: ["critical"], min_length=1)
    scope: str = "topology"

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"'kind' must be one of {', '.join(KINDS)}")
        return value

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        if value not in ("topology", "object"):
            raise ValueError("'scope' must be 'topology' or 'object'")
        return value

    @field_validator("downSeverities", "severities")
    @classmethod
    def _severities(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v not in x733.SEVERITIES or v == "cleared"]
        if bad:
            raise ValueError(f"unknown perceived severity {bad[0]!r} (critical, major, minor, warning, "
                             "indeterminate)")
        return value


PARAMS = ("relationshipTypes", "downSeverities", "windowSeconds", "severities", "scope")


def parse_rule(payload: Any) -> RuleBody:
    if not isinstance(payload, dict):
        raise InvalidRule("a correlation rule is a JSON object")
    try:
        return RuleBody.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRule(validation_message(exc)) from exc


def render(rule: CorrelationRule) -> dict[str, Any]:
    return {"id": rule.id, "name": rule.name, "kind": rule.kind, "enabled": rule.enabled, "priority": rule.priority,
            **rule.params}


@dataclass(frozen=True)
class Rules:
    """The rules in force in a tenant (the applicable one of each kind)."""

    suppression: dict[str, Any] | None = None
    root_cause: dict[str, Any] | None = None
    grouping: dict[str, Any] | None = None

    @property
    def relationship_types(self) -> frozenset[str]:
        out: set[str] = set()
        for rule in (self.suppression, self.root_cause, self.grouping):
            if rule:
                out |= set(rule["relationshipTypes"])
        return frozenset(out)

    @property
    def topology(self) -> bool:
        """Whether any rule looks at the topology."""
        return bool(self.suppression or self.root_cause)

    @property
    def problem_severities(self) -> frozenset[str]:
        return frozenset(self.grouping["severities"]) if self.grouping else DEFAULT_PROBLEM_SEVERITIES

    @property
    def group_by_topology(self) -> bool:
        return self.grouping is None or self.grouping["scope"] == "topology"

    @property
    def down_severities(self) -> frozenset[str]:
        return frozenset(self.suppression["downSeverities"]) if self.suppression else frozenset()


class RuleBook:
    """The tenant's correlation rules: create, list, get, change, delete, and the rules in force."""

    async def in_force(self, ctx: Context) -> Rules:
        rows = (await ctx.session.execute(select(CorrelationRule).where(CorrelationRule.enabled).order_by(
            CorrelationRule.priority, CorrelationRule.created_at, CorrelationRule.id))).scalars().all()
        chosen: dict[str, dict[str, Any]] = {}
        for row in rows:
            chosen.setdefault(row.kind, row.params)
        return Rules(suppression=chosen.get("suppression"), root_cause=chosen.get("rootCause"),
                     grouping=chosen.get("grouping"))

    async def create(self, ctx: Context, payload: Any) -> dict[str, Any]:
        body = parse_rule(payload)
        row = CorrelationRule(id=str(uuid.uuid4()), name=body.name, kind=body.kind, enabled=body.enabled,
                              priority=body.priority, params=body.model_dump(include=set(PARAMS)))
        ctx.session.add(row)
        await ctx.session.flush()
        return render(row)

    async def list(self, ctx: Context) -> list[dict[str, Any]]:
        rows = (await ctx.session.execute(select(CorrelationRule).order_by(
            CorrelationRule.kind, CorrelationRule.priority, CorrelationRule.created_at))).scalars().all()
        return [render(r) for r in rows]

    async def _row(self, ctx: Context, rule_id: str, *, lock: bool = False) -> CorrelationRule:
        stmt = select(CorrelationRule).where(CorrelationRule.id == rule_id)
        row = (await ctx.session.execute(stmt.with_for_update() if lock else stmt)).scalars().first()
        if row is None:
            raise NotFound(f"no correlation rule '{rule_id}'")
        return row

    async def get(self, ctx: Context, rule_id: str) -> dict[str, Any]:
        return render(await self._row(ctx, rule_id))

    async def patch(self, ctx: Context, rule_id: str, changes: Any) -> dict[str, Any]:
        if not isinstance(changes, dict):
            raise InvalidRule("a change of a correlation rule is a JSON object")
        if "kind" in changes or "id" in changes:
            raise InvalidRule("'kind' and 'id' of a rule cannot change; delete it and create another")
        row = await self._row(ctx, rule_id, lock=True)
        body = parse_rule({k: v for k, v in {**render(row), **changes}.items() if k != "id"})
        row.name, row.enabled, row.priority = body.name, body.enabled, body.priority
        row.params = body.model_dump(include=set(PARAMS))
        await ctx.session.flush()
        return render(row)

    async def delete(self, ctx: Context, rule_id: str) -> None:
        await ctx.session.delete(await self._row(ctx, rule_id, lock=True))
        await ctx.session.flush()


__all__ = ["KINDS", "RuleBody", "RuleBook", "Rules", "parse_rule"]
