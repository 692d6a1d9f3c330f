"""``openbss demo``: the whole platform in one process with a demo tenant and data."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from rich.console import Console

from openbss.demo.parties import DEMO_TENANT, seed_parties
from openbss.demo.selfcare import DEMO_PASSWORD
from openbss.platform.auth import issue_token
from openbss.platform.connections import server_options
from openbss.platform.observability import configure_logging
from openbss.platform.runtime import Runtime
from openbss.platform.worker import install_stop_signals, run_worker
from openbss.services import build_services, wire_worker
from openbss.settings import Settings

DEMO_IDPS = (("north", "NorthID (demo)", "#1a7f37"), ("social", "Sociable (demo)", "#8250df"))


def with_demo_identity_providers(settings: Settings, base: str) -> tuple[Settings, list[tuple[str, Any]]]:
    """Unless identity providers are configured, two built-in demo OpenID providers mounted at /demo-idp/<id>
    (a stand-in for a Google-like and a Facebook-like social login), with the portal registered as their client."""
    if settings.selfcare_identity_providers:
        return settings, []
    import secrets

    from openbss.demo.identity_provider import IdpClient, create_identity_provider
    from openbss.demo.selfcare import DEMO_USERS

    portal = (settings.selfcare_public_url or base).rstrip("/")
    configs, apps = [], []
    for name, label, color in DEMO_IDPS:
        secret = secrets.token_urlsafe(24)
        issuer = f"{base}/demo-idp/{name}"
        client = IdpClient("openbss-selfcare", secret, (f"{portal}/selfcare/auth/callback",),
                           (f"{portal}/selfcare/",))
        apps.append((f"/demo-idp/{name}", create_identity_provider(
            issuer, clients=[client], users=DEMO_USERS, title=label, brand_color=color, show_demo_users=True)))
        configs.append({"id": name, "label": label, "issuer": issuer, "clientId": client.client_id,
                        "clientSecret": secret})
    return settings.model_copy(update={"selfcare_identity_providers": configs}), apps


def with_demo_console_identity_provider(settings: Settings, base: str) -> tuple[Settings, list[tuple[str, Any]]]:
    """Unless the console's provider is configured, a demo workforce OpenID provider at /demo-idp/staff whose users
    (the demo's agents and supervisor, password ``DEMO_PASSWORD``) carry the demo tenant and their roles."""
    if settings.care_console_identity_provider:
        return settings, []
    import secrets

    from openbss.demo.care import SUPERVISOR
    from openbss.demo.identity_provider import IdpClient, IdpUser, create_identity_provider

    secret = secrets.token_urlsafe(24)
    issuer = f"{base}/demo-idp/staff"
    staff = [("agent-alice", "alice", "csr_agent", "Alice (first line)"),
             ("agent-bob", "bob", "csr_agent", "Bob (network)"),
             (SUPERVISOR, "sam", "care_supervisor", "Sam (supervisor)")]
    users = [IdpUser(sub, username, DEMO_PASSWORD, f"{username}@operator.example", name=name,
                     claims=((settings.tenant_claim, DEMO_TENANT), (settings.roles_claim, [role])))
             for sub, username, role, name in staff]
    client = IdpClient("openbss-console", secret, (f"{base}/console/auth/callback",))
    app = create_identity_provider(issuer, clients=[client], users=users, title="Operator staff sign-in (demo)",
                                   brand_color="#0b5cad", show_demo_users=True)
    return settings.model_copy(update={"care_console_identity_provider": {
        "issuer": issuer, "clientId": client.client_id, "clientSecret": secret,
        "label": "Sign in with the operator's account (demo)"}}), [("/demo-idp/staff", app)]


async def seed_corporate_directory(settings: Settings) -> str | None:
    """Seed the demo corporate customers into the configured corporate directory; its address, or None."""
    if not settings.selfcare_corporate_directory_url:
        return None
    from openbss.demo.corporate import seed_demo
    from openbss.selfcare.corporate import CorporateDirectory

    directory = CorporateDirectory.from_url(settings.selfcare_corporate_directory_url)
    await asyncio.to_thread(_create_database, directory)
    try:
        await seed_demo(directory, DEMO_TENANT)
        return directory.where
    finally:
        await directory.close()


def _create_database(directory: Any) -> None:
    """The demo creates its corporate directory's database on the server when it is missing."""
    import pymysql

    conn = pymysql.connect(host=directory.host, port=directory.port, user=directory.user,
                           password=directory._password, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{directory.database.replace('`', '')}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


async def run_demo(settings: Settings, *, host: str | None, port: int | None, console: Console) -> None:
    from openbss.app import create_app
    from openbss.demo.billing import seed_billing
    from openbss.demo.care import seed_care
    from openbss.demo.catalog import seed_catalog
    from openbss.demo.charging import seed_charging
    from openbss.demo.collections import seed_collections
    from openbss.demo.customers import seed_customers
    from openbss.demo.network import run_network_scenario, seed_network
    from openbss.demo.orders import seed_orders
    from openbss.demo.payments import seed_payments
    from openbss.demo.rating import INBOX, drop_demo_file
    from openbss.demo.selfcare import CORPORATE_LINE, seed_corporate_line, seed_selfcare
    from openbss.rating.collect import watch

    configure_logging(settings.log_level, json_logs=False)
    if settings.assurance_syslog_port is None:  # the demo listens for syslog alarms on loopback, port 5514
        settings = settings.model_copy(update={"assurance_syslog_port": 5514, "assurance_syslog_tenant": DEMO_TENANT})
    rt = Runtime.build(settings)
    services = build_services(settings, rt)
    wire_worker(services, rt)
    host = host or settings.host
    port = port or settings.port
    base = settings.public_url.rstrip("/")
    info = await seed_parties(services, rt.db, base)

    with console.status("Seeding the demo catalog, customers and orders…"):
        await seed_catalog(services, rt.db, DEMO_TENANT, base)
        await seed_customers(services, rt.db, DEMO_TENANT, base)
        await seed_orders(services, rt, DEMO_TENANT, base)
        owners = await seed_selfcare(services, rt.db, DEMO_TENANT, base)
        await seed_charging(services, rt.db, DEMO_TENANT, base, owners=owners)
        if CORPORATE_LINE in owners:
            await seed_corporate_line(services, rt.db, DEMO_TENANT, base, owners[CORPORATE_LINE])
        await seed_care(services, rt.db, DEMO_TENANT, base)
        await seed_billing(services, rt.db, DEMO_TENANT, base)
        await seed_payments(services, rt.db, DEMO_TENANT, base)
        await seed_collections(services, rt, DEMO_TENANT, base)
        await seed_network(services, rt.db, DEMO_TENANT, base)
        corporate = await seed_corporate_directory(settings)
    inbox = drop_demo_file(settings.data_dir / INBOX).parent  # collected below, by the watched-directory loop
    settings, providers = with_demo_identity_providers(settings, base)
    settings, staff_idp = with_demo_console_identity_provider(settings, base)
    providers = [*providers, *staff_idp]
    stop = asyncio.Event()
    worker_up = asyncio.Event()
    install_stop_signals(stop)
    app = create_app(settings, services=services, runtime=rt)
    for path, idp in providers:
        app.mount(path, idp)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                           lifespan="on", **server_options(settings)))
    node, node_front, node_url, diameter = await _start_charging_node(settings, services, rt, console)

    def ready() -> None:
        rows = [
            ("API docs", f"{base}/docs"),
            ("Party API", f"{base}/tmf-api/party/v4/individual"),
            ("Customers", f"{base}/tmf-api/customerManagement/v4/customer"),
            ("Billing accounts", f"{base}/tmf-api/accountManagement/v4/billingAccount"),
            ("Product catalog", f"{base}/tmf-api/productCatalogManagement/v4/productOffering"),
            ("Tariffs", f"{base}/api/catalog/v1/tariff"),
            ("Product orders", f"{base}/tmf-api/productOrderingManagement/v4/productOrder"),
            ("Products (subscriptions)", f"{base}/tmf-api/productInventory/v4/product"),
            ("Prepay balances", f"{base}/tmf-api/prepayBalanceManagement/v4/bucket"),
            ("Credit control (Gy)", f"{base}/ocs/v1/creditControl"),
            *([("Charging node (Gy, JSON)", f"{node_url}/ocs/v1/creditControl"),
               ("Charging node metrics", f"{node_url}/metrics")] if node_url else []),
            *([("Charging node (Diameter Gy/Ro)", f"{diameter.config.host}:{diameter.port}")] if diameter else []),
            ("Usage", f"{base}/tmf-api/usageManagement/v4/usage"),
            ("Payments", f"{base}/tmf-api/paymentManagement/v4/payment"),
            ("Trial balance", f"{base}/payments/v1/trialBalance"),
            ("Receivables aging (chart)", f"{base}/payments/v1/chart/arAging.svg"),
            ("Trouble tickets", f"{base}/tmf-api/troubleTicket/v4/troubleTicket"),
            ("Interactions", f"{base}/tmf-api/partyInteraction/v4/partyInteraction"),
            ("Usage files (watched directory)", str(inbox.resolve())),
            ("Alarms", f"{base}/tmf-api/alarm/v4/alarm"),
            ("Syslog alarms (RFC 5424)",
             f"udp://{settings.assurance_syslog_host}:{settings.assurance_syslog_port}"),
            ("Service problems (network)", f"{base}/tmf-api/serviceProblemManagement/v4/serviceProblem"),
            ("Threshold alarms (site KPI)", f"{base}/tmf-api/alarm/v4/alarm?probableCause=thresholdCrossed"),
            ("Site KPI (latency, cell-07)",
             f"{base}/api/assurance/v1/kpi?objectId=demo-cell-07&indicator=demo-site-rtt"),
            ("SLAs", f"{base}/api/assurance/v1/sla"),
            ("Health", f"{base}/health/ready"),
            ("Metrics", f"{base}/metrics"),
        ]
        width = max(len(k) for k, _ in rows)
        out = [f"OpenBSS demo is serving (tenant '{DEMO_TENANT}'):"]
        out += [f"  {k.ljust(width)}  {v}" for k, v in rows]
        out.append("Demo credentials (bearer tokens, valid 12 h):")
        for role in ("admin", "csr_agent"):
            out.append(f"  {role}: {issue_token(DEMO_TENANT, [role], subject=f'demo-{role}', ttl_seconds=43200)}")
        party = info["customer_party"]
        tok = issue_token(DEMO_TENANT, ["customer"], party=party, subject="demo-customer", ttl_seconds=43200)
        out.append(f"  customer (party {party}): {tok}")
        out.append(f"Self-care portal: {base}/selfcare/  (sign in with a demo identity provider, password "
                   f"'{DEMO_PASSWORD}')")
        out.append("  alex     residential, prepaid +33600000101: linked automatically by the verified email")
        out.append("  camille  residential, postpaid +33600000202: the portal asks for the mobile number and sends "
                   "a code by SMS; read it with:")
        out.append(f'           curl -H "Authorization: Bearer $ADMIN" "{base}/api/messaging/v1/message?channel=sms"'
                   "   (ADMIN = the admin token above)")
        out.append("  claire   corporate (Northwind Logistics), data from the corporate directory: "
                   + ("MariaDB " + corporate if corporate else
                      "set OPENBSS_SELFCARE_CORPORATE_DIRECTORY_URL=mysql://root@127.0.0.1:3306/openbss_corporate "
                      "to enable"))
        out.append(f"Agent console: {base}/console/  (sign in with the operator's demo account — alice, bob or sam, "
                   f"password '{DEMO_PASSWORD}' — or paste a token; bill adjustments and top-ups: Alice alone up to "
                   "20 EUR, Bob 100 EUR, above that Sam approves)")
        for role, subject in (("csr_agent", "agent-alice"), ("csr_agent", "agent-bob"),
                              ("care_supervisor", "supervisor-sam")):
            out.append(f"  {subject} ({role}): "
                       f"{issue_token(DEMO_TENANT, [role], subject=subject, ttl_seconds=43200)}")
        out.append("More tokens: .venv/bin/openbss token --tenant demo --role csr_agent")
        out.append(f'Try: TOKEN=$(.venv/bin/openbss token --tenant demo --role csr_agent); '
                   f'curl -H "Authorization: Bearer $TOKEN" {base}/tmf-api/customerManagement/v4/customer')
        print("\n".join(out), flush=True)  # plain text: URLs and tokens must not wrap
        worker_up.set()

    async def api() -> None:
        await server.serve()
        stop.set()

    async def stopper() -> None:
        await stop.wait()
        server.should_exit = True

    async def network() -> None:  # the aggregation node fails once the worker's syslog listener is up
        await worker_up.wait()
        await run_network_scenario(services, rt.db, DEMO_TENANT, base, settings, console)

    try:
        await asyncio.gather(api(), stopper(), run_worker(rt, stop, on_ready=ready), network(),
                             watch(rt.db, services.rating.service, DEMO_TENANT, inbox, source="demo", base_url=base,
                                   stop=stop, queue=services.rating.queue))
    finally:
        if diameter is not None:
            await diameter.close()
        if node is not None:
            await node_front.stop()
            await node.stop()
        if services.rating.queue is not None:
            await services.rating.queue.close()
        await rt.close()


async def _start_charging_node(settings: Settings, services: Any, rt: Runtime, console: Console,
                               ) -> tuple[Any, Any, str | None, Any]:
    """A charging node in the demo process (every shard), serving credit control from memory with group commit on
    ``charging_node_host:charging_node_port``; its commits are what self-care and the APIs read. None when the
    port is taken (the demo runs without it). The node also answers Diameter Gy/Ro on ``diameter_host:diameter_port``
    (3868) for the demo tenant, when that port is free."""
    from openbss.charging.node import ChargingNode, NodeConfig
    from openbss.charging.node.server import FrontEnd

    url = f"http://{settings.charging_node_host}:{settings.charging_node_port}"
    node = ChargingNode(services.charging.service, rt.db, NodeConfig(
        node_id="demo-node", address=url, shards=settings.charging_shards,
        lease_seconds=settings.charging_node_lease_seconds, max_queue=settings.charging_node_max_queue,
        batch_max=settings.charging_node_batch_max, base_url=settings.public_url))
    front = FrontEnd(node, rt.verifier, rt.tenants)
    await node.start()
    try:
        await front.start(settings.charging_node_host, settings.charging_node_port)
    except OSError as exc:
        console.print(f"charging node not started ({url}: {exc})", style="yellow")
        await node.stop()
        return None, None, None, None
    from openbss.charging.diameter.server import DiameterConfig, DiameterServer

    config = DiameterConfig.from_settings(settings)
    config.default_tenant = config.default_tenant or DEMO_TENANT
    diameter = DiameterServer(node, config)
    try:
        await diameter.start()
    except OSError as exc:
        console.print(f"Diameter front end not started ({config.host}:{config.port}: {exc})", style="yellow")
        return node, front, url, None
    return node, front, url, diameter
