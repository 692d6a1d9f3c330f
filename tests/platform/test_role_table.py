"""The role table against every write operation of the OpenAPI document.

For each write operation (POST, PUT, PATCH, DELETE) and each role of ``ROLE_PERMISSIONS``, the expected answer is
derived from the declarations: a TMF resource's operation needs ``<resource write_permission>:write`` (when the
resource declares one, else ``<api permission>:write``) and, for a customer,
the operation among the resource's ``customer_operations``; a hub needs ``hub:write`` and ``<api permission>:read``
and is never a customer's; the other operations are listed in ``EXTRA`` below. A role without the right gets 403
(before its body is even validated); a role with it never gets 401/403. An operation that none of these rules
describes fails the test: a new write operation must say who may call it.
"""

from __future__ import annotations

from typing import Any

import httpx

from openbss.platform.auth import ROLE_PERMISSIONS, WRITE, Principal, permissions_for
from tests.conftest import bearer

#: write operations outside the TMF kit: (method, path) → who may call them
EXTRA: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/tmf-api/shoppingCart/v4/shoppingCart/{id}/checkout"): ("ordering:write",),
    ("POST", "/tmf-api/productOrderingManagement/v4/productOrder/{id}/retry"): ("ordering:write",),
    ("PUT", "/api/provisioning/v1/simulator/{element}"): ("provisioning:write",),
    ("POST", "/api/inventory/v1/numberRange"): ("inventory:write",),
    ("POST", "/api/inventory/v1/ipv4Pool"): ("inventory:write",),
    ("POST", "/api/inventory/v1/ont"): ("inventory:write",),
    ("POST", "/api/inventory/v1/simBatch"): ("inventory:write",),
    ("POST", "/ocs/v1/creditControl"): ("charging:write",),
    ("PATCH", "/ocs/v1/settings"): ("rating:write",),
    ("POST", "/privacy/v1/party/{partyId}/erasure"): ("role:admin",),
    # rating: one record through TMF635 is the usage API's; files and the suspense queue are billing operations'
    ("POST", "/tmf-api/usageManagement/v4/usage"): ("charging:write",),
    ("POST", "/rating/v1/usageFile"): ("rating:write",),
    ("POST", "/rating/v1/suspense/reprocess"): ("rating:write",),
    ("POST", "/rating/v1/rerate"): ("rating:write",),
    # care configuration: supervisors (agents work tickets, through the TMF621 resource's rule)
    ("POST", "/api/care/v1/queue"): ("careconfig:write",),
    ("POST", "/api/care/v1/slaPolicy"): ("careconfig:write",),
    ("POST", "/api/care/v1/slaPolicy/{id}/deactivate"): ("careconfig:write",),
    # the agent console's actions: the operator's staff only (a customer's care:write raises their own tickets)
    ("PUT", "/api/care/v1/adjustmentLimit"): ("staff", "careconfig:write"),
    ("POST", "/api/care/v1/billAdjustment"): ("staff", "care:write"),
    ("POST", "/api/care/v1/approval/{id}/approve"): ("staff", "careconfig:write"),
    ("POST", "/api/care/v1/approval/{id}/reject"): ("staff", "careconfig:write"),
    ("POST", "/api/care/v1/topUp"): ("staff", "care:write"),
    ("POST", "/api/care/v1/selfcareAccessReset"): ("staff", "care:write"),
    ("POST", "/billing/v1/billRun"): ("billing:write",),
    ("PATCH", "/billing/v1/settings"): ("billing:write",),
    ("POST", "/billing/v1/creditNote"): ("billing:write",),
    ("POST", "/billing/v1/taxRate"): ("billing:write",),
    ("POST", "/billing/v1/productChange"): ("billing:write",),
    ("POST", "/billing/v1/charge"): ("billing:write",),
    ("POST", "/billing/v1/testClock"): ("billing:write",),
    ("POST", "/billing/v1/testClock/advance"): ("billing:write",),
    ("DELETE", "/billing/v1/testClock"): ("billing:write",),
    ("POST", "/tmf-api/paymentMethod/v4/paymentMethod"): ("payments:write",),
    ("POST", "/tmf-api/paymentManagement/v4/payment"): ("payments:write",),
    ("POST", "/tmf-api/paymentManagement/v4/refund"): ("payments:write",),
    ("POST", "/payments/v1/sepaBatch"): ("payments:write",),
    ("POST", "/payments/v1/statement"): ("payments:write",),
    ("POST", "/payments/v1/ledgerPeriod"): ("payments:write",),
    ("POST", "/payments/v1/writeOff"): ("payments:write",),
    ("POST", "/api/assurance/v1/alertmanager"): ("assurance:write",),
    ("POST", "/api/collections/v1/run"): ("collectionsconfig:write",),
    ("POST", "/api/assurance/v1/correlationRule"): ("assurance:write",),
    ("PATCH", "/api/assurance/v1/correlationRule/{id}"): ("assurance:write",),
    ("DELETE", "/api/assurance/v1/correlationRule/{id}"): ("assurance:write",),
    ("POST", "/api/assurance/v1/measurement"): ("assurance:write",),
    ("POST", "/api/assurance/v1/sla"): ("assurance:write",),
    ("PATCH", "/api/assurance/v1/sla/{id}"): ("assurance:write",),
    ("POST", "/api/assurance/v1/sla/{id}/evaluate"): ("assurance:write",),
}
#: write operations a third party calls, authenticated by its signature and never by a role: (method, path) → the
#: path of the real endpoint, where an unsigned request is refused with 401 whatever bearer token it carries
SIGNED: dict[tuple[str, str], str] = {
    ("POST", "/payments/v1/webhook/{gateway}"): "/payments/v1/webhook/sandbox",
}
#: the portal's own API: a portal session (cookie or session token), never a bearer token of the role table
SESSION_PREFIX = "/selfcare/"


def _principal(role: str) -> Principal:
    return Principal("t", "t", (role,), party_id="p" if role == "customer" else None,
                     permissions=permissions_for((role,)))


def _holds(p: Principal, needs: tuple[str, ...]) -> bool:
    for need in needs:
        if need == "staff":  # not a self-service principal
            if p.is_customer:
                return False
            continue
        if need.startswith("role:"):
            if need[5:] not in p.roles:
                return False
            continue
        scope, action = need.split(":")
        if not p.can(scope, action):
            return False
    return True


def expectations(app: Any, services: Any) -> dict[tuple[str, str], dict[str, bool]]:
    """(method, path) → role → allowed, for every write operation of the OpenAPI document."""
    rules: dict[tuple[str, str], Any] = {}
    for api in services.apis:
        rules[("POST", f"{api.base_path}/hub")] = lambda p, api=api: (
            not p.is_customer and _holds(p, ("hub:write", f"{api.permission}:read")))
        rules[("DELETE", f"{api.base_path}/hub/{{id}}")] = rules[("POST", f"{api.base_path}/hub")]
        for r in api.resources:
            for op, method, path in (("create", "POST", f"/{r.path}"), ("patch", "PATCH", f"/{r.path}/{{id}}"),
                                     ("delete", "DELETE", f"/{r.path}/{{id}}")):
                if op in r.operations:
                    rules[(method, f"{api.base_path}{path}")] = lambda p, api=api, r=r, op=op: (
                        p.can(r.write_permission or api.permission, WRITE)
                        and (not p.is_customer or op in r.customer_operations))
    for key, needs in EXTRA.items():
        rules[key] = lambda p, needs=needs: _holds(p, needs)
    out: dict[tuple[str, str], dict[str, bool]] = {}
    undeclared = []
    for path, item in app.openapi()["paths"].items():
        for method in item:
            if method not in ("post", "put", "patch", "delete") or path.startswith(SESSION_PREFIX):
                continue
            if (method.upper(), path) in SIGNED:
                continue
            key = (method.upper(), path)
            if key not in rules:
                undeclared.append(key)
                continue
            out[key] = {role: bool(rules[key](_principal(role))) for role in ROLE_PERMISSIONS}
    assert not undeclared, f"write operations with no rule of who may call them: {undeclared}"
    return out


def test_the_table_covers_every_write_operation(app: Any, services: Any) -> None:
    table = expectations(app, services)
    assert len(table) >= 100, len(table)
    # the edges the table must hold
    assert table[("PATCH", "/tmf-api/party/v4/organization/{id}")]["customer"]  # (as its administrator: see below)
    assert not table[("POST", "/tmf-api/party/v4/organization")]["customer"]
    assert not table[("POST", "/privacy/v1/party/{partyId}/erasure")]["csr_agent"]
    # collections: agents record promises to pay; dunning policies and runs are the configuration's
    assert table[("POST", "/api/collections/v1/promiseToPay")]["csr_agent"]
    assert not table[("POST", "/api/collections/v1/dunningPolicy")]["csr_agent"]
    assert not table[("PATCH", "/api/collections/v1/dunningPolicy/{id}")]["csr_agent"]
    assert not table[("POST", "/api/collections/v1/run")]["csr_agent"]
    assert table[("POST", "/api/collections/v1/dunningPolicy")]["billing_ops"]
    # a customer records a promise to pay (for its own accounts: tests/collections/test_permissions.py), no more
    assert table[("POST", "/api/collections/v1/promiseToPay")]["customer"]
    assert not table[("PATCH", "/api/collections/v1/promiseToPay/{id}")]["customer"]
    assert not table[("POST", "/api/collections/v1/paymentPlan")]["customer"]
    # excluding an account from dunning (VIP, dispute, ...) is a supervisor's or finance's decision, not an agent's
    for method, path in (("POST", "/api/collections/v1/dunningExclusion"),
                         ("PATCH", "/api/collections/v1/dunningExclusion/{id}"),
                         ("DELETE", "/api/collections/v1/dunningExclusion/{id}")):
        assert not table[(method, path)]["csr_agent"] and not table[(method, path)]["customer"]
        assert table[(method, path)]["care_supervisor"] and table[(method, path)]["billing_ops"]
    assert not any(table[k]["customer"] for k in table if k[1].endswith("/hub") or "/hub/" in k[1])


async def test_every_write_operation_answers_as_the_role_table_says(app: Any, services: Any, tenant: str) -> None:
    table = expectations(app, services)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    tokens = {role: bearer(tenant, role, party="role-table-party" if role == "customer" else None)
              for role in ROLE_PERMISSIONS}
    wrong = []
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for (method, path), roles in sorted(table.items()):
            url = path.replace("{id}", "role-table-missing").replace("{partyId}", "role-table-missing") \
                      .replace("{element}", "hss")
            for role, allowed in roles.items():
                # a body that may be invalid: a role without the right is refused before it is read
                r = await client.request(method, url, headers={**tokens[role], "Content-Type": "application/json"},
                                         content=b"{}" if method != "DELETE" else None)
                if allowed and r.status_code in (401, 403):
                    wrong.append(f"{role} {method} {path}: {r.status_code} but the table allows it: {r.text[:200]}")
                if not allowed and r.status_code != 403:
                    wrong.append(f"{role} {method} {path}: {r.status_code}, the table refuses it: {r.text[:200]}")
                if r.status_code >= 500:
                    wrong.append(f"{role} {method} {path}: {r.status_code}")
        for (method, path), url in SIGNED.items():
            for role in ROLE_PERMISSIONS:
                r = await client.request(method, url, headers={**tokens[role], "Content-Type": "application/json"},
                                         content=b"{}")
                if r.status_code != 401:
                    wrong.append(f"{role} {method} {path} unsigned: {r.status_code}, not refused: {r.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_the_documented_table_is_the_code() -> None:
    """docs/api.md lists the scopes each role writes and reads: the same as ``ROLE_PERMISSIONS``."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].strip("`") in ROLE_PERMISSIONS:
            rows[cells[0].strip("`")] = cells[1:]
    assert set(rows) == set(ROLE_PERMISSIONS)
    for role, perms in ROLE_PERMISSIONS.items():
        if role in ("admin", "system"):
            continue
        for cell, action in zip(rows[role], ("write", "read"), strict=True):
            documented = {s.strip() for s in cell.split("—")[0].split(",")}
            assert documented == {p.split(":")[0] for p in perms if p.endswith(f":{action}")}, (role, action)
