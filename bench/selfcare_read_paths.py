"""Self-care read paths under load: wrk on loopback against the four read operations of a signed-in customer.

    psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE openbss_bench_selfcare"
    export OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_selfcare
    .venv/bin/openbss db upgrade
    .venv/bin/python bench/selfcare_read_paths.py generate --customers 200      # ~2 min
    .venv/bin/python bench/selfcare_read_paths.py run --workers 2 --duration 15   # wrk: apt-get install -y wrk

``generate`` creates customers the way the demo does (party, customer, billing account, a prepaid line in the
charging system with 30 rated usage events last month) and one signed-in portal session per customer; the session
tokens go to ``bench/.data``. ``run`` starts ``openbss serve --workers N`` with the portal serving that tenant and
high rate limits (the limits would otherwise answer 429 to a load generator on one IP), then runs wrk against
each path with every request carrying a random customer's session (``Authorization: Bearer``). The portal reaches
the charging API over HTTP (itself, on loopback), as it would reach a remote charging system.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from support import api_server, free_port, require_wrk

DATA = Path(__file__).parent / ".data" / "selfcare_sessions.json"
TENANT = "bench-selfcare"
HIGH_LIMITS = {"OPENBSS_SELFCARE_RATE_LIMIT_IP": "100000000/minute",
               "OPENBSS_SELFCARE_RATE_LIMIT_USER": "100000000/minute",
               "OPENBSS_SELFCARE_RATE_LIMIT_DOCUMENTS": "100000000/minute"}


def last_month() -> tuple[str, datetime]:
    when = (datetime.now(UTC).replace(day=1) - timedelta(days=12)).replace(hour=8, minute=0, second=0,
                                                                          microsecond=0)
    return f"{when.year:04d}-{when.month:02d}", when


async def generate(customers: int, events: int) -> None:
    from openbss.charging import service as charging_module
    from openbss.charging.schemas import CreditControlRequest
    from openbss.demo.charging import FALLBACK_PLAN
    from openbss.platform.auth import Principal, permissions_for
    from openbss.platform.runtime import Runtime
    from openbss.platform.tenancy import ensure_tenant
    from openbss.platform.tmf.resource import Context
    from openbss.selfcare import signin
    from openbss.selfcare.directory import CustomerRef
    from openbss.selfcare.portal import build_portal
    from openbss.services import build_services
    from openbss.settings import get_settings

    settings = get_settings().model_copy(update={"selfcare_tenant": TENANT})
    rt = Runtime.build(settings)
    services = build_services(settings, rt)
    charging = services.charging.service
    portal = await build_portal(settings, rt.db, services.selfcare)
    admin = Principal("bench", TENANT, ("admin",), permissions=permissions_for(("admin",)))
    async with rt.db.transaction(None) as session:
        await ensure_tenant(session, TENANT, "Self-care benchmark")
    _, when = last_month()
    tokens = []
    for n in range(customers):
        msisdn = f"+3375{n:07d}"
        async with rt.db.transaction(TENANT) as session:
            ctx = Context(principal=admin, session=session, base_url=settings.public_url)
            party = await services.party.service.create_individual(ctx, {
                "givenName": "Bench", "familyName": f"Customer {n}", "contactMedium": [
                    {"mediumType": "email", "characteristic": {"emailAddress": f"bench{n}@example.net"}},
                    {"mediumType": "postalAddress", "characteristic": {"street1": f"{n} Load Street",
                                                                       "city": "Paris", "postCode": "75001",
                                                                       "country": "FR"}}]})
            customer = await services.customer.service.create_customer(ctx, {
                "name": party["fullName"], "status": "active",
                "engagedParty": {"id": party["id"], "@referredType": "Individual"}})
            account = await services.account.service.create_billing_account(ctx, {
                "name": "main", "currency": "EUR", "relatedParty": [
                    {"id": customer["id"], "@referredType": "Customer", "role": "customer", "name": "x"}]})
            await services.account.service.activate(ctx, account["id"])
            product = await services.inventory.service.record_subscription(ctx, {
                "name": "Prepaid S", "relatedParty": [{"id": party["id"], "role": "customer",
                                                       "@referredType": "Individual"}]}, [], [])
            await charging.open_account(charging_module.system_context(session, TENANT, settings.public_url),
                                        subscriber=msisdn, payment_type="prepaid", currency="EUR",
                                        party_id=party["id"], product_id=product["id"], plan=FALLBACK_PLAN,
                                        initial_balance=Decimal("20"))
            identity = await signin._link(session, "bench", f"bench-{n}", CustomerRef(
                customer["id"], party["id"], "residential"), "email")
            new = await signin._new_session(portal, session, identity)
            tokens.append(new.token)
        for e in range(events):
            body = {"sessionId": f"bench;{msisdn};{e}", "requestType": "EVENT_REQUEST", "requestNumber": 0,
                    "serviceContextId": "32274@3gpp.org", "requestedAction": "DIRECT_DEBITING",
                    "subscriptionId": {"type": "END_USER_E164", "data": msisdn},
                    "eventTimestamp": (when + timedelta(minutes=17 * e)).isoformat(),
                    "serviceInformation": {"calledParty": f"+336120000{e:02d}"},
                    "multipleServicesCreditControl": [{"ratingGroup": 3,
                                                       "requestedServiceUnit": {"serviceSpecificUnits": 1}}]}
            await charging.credit_control(rt.db, TENANT, CreditControlRequest.model_validate(body),
                                          settings.public_url)
        if (n + 1) % 50 == 0:
            print(f"{n + 1} customers")
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps({"tenant": TENANT, "tokens": tokens}))
    await portal.close()
    await rt.close()


LUA = """
tokens = {%s}
math.randomseed(%d)
request = function()
  return wrk.format("GET", "%s", {["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]})
end
"""


def wrk(base: str, path: str, tokens: list[str], *, duration: int, connections: int, threads: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % (",".join(json.dumps(t) for t in tokens), 7, path))
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
                          "-s", script.name, f"{base}{path}"], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


def run(workers: int, duration: int, connections: int, customers: int | None) -> None:
    require_wrk()
    data = json.loads(DATA.read_text())
    tokens = data["tokens"][:customers] if customers else data["tokens"]
    month, _ = last_month()
    port = free_port()
    env = {**HIGH_LIMITS, "OPENBSS_SELFCARE_TENANT": data["tenant"]}
    os.environ.update(env)
    paths = [("RetrieveCustomerInformation", "/selfcare/api/customer"),
             ("RetrieveCurrentBalance", "/selfcare/api/balance"),
             ("RetrieveItemizedUsage (JSON)", f"/selfcare/api/usage?month={month}"),
             ("RetrieveItemizedUsage (PDF)", f"/selfcare/api/usage/{month}.pdf")]
    with api_server(port, "--workers", str(workers)) as base:
        # the closed month's statements are archived once (what the measured requests then read)
        with httpx.Client(timeout=60) as http:
            for token in tokens:
                http.get(f"{base}{paths[3][1]}", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        for _, path in paths:  # warm up: caches, connection pools
            wrk(base, path, tokens, duration=3, connections=connections, threads=2)
        print(f"workers={workers} connections={connections} customers={len(tokens)} duration={duration}s")
        print("| operation | requests/s | p50 | p99 | non-2xx |")
        print("|---|---:|---:|---:|---:|")
        for name, path in paths:
            r = wrk(base, path, tokens, duration=duration, connections=connections, threads=2)
            print(f"| {name} | {r['rps']:,.0f} | {r['p50']} | {r['p99']} | {r['non2xx']} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--customers", type=int, default=200)
    g.add_argument("--events", type=int, default=30)
    r = sub.add_parser("run")
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--duration", type=int, default=15)
    r.add_argument("--connections", type=int, default=64)
    r.add_argument("--customers", type=int, default=None, help="use only the first N sessions")
    args = parser.parse_args()
    if args.command == "generate":
        asyncio.run(generate(args.customers, args.events))
    else:
        run(args.workers, args.duration, args.connections, args.customers)


if __name__ == "__main__":
    main()
