"""The ``openbss`` command."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from openbss.settings import Settings, get_settings

if TYPE_CHECKING:  # the composition root is imported by the commands that need it (start-up stays fast)
    from openbss.services import Services

app = typer.Typer(help="OpenBSS: BSS/OSS for telecom operators.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
events_app = typer.Typer(help="The event backbone.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys of personal data.", no_args_is_help=True)
gdpr_app = typer.Typer(help="Personal data requests (GDPR).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(events_app, name="events")
app.add_typer(keys_app, name="keys")
app.add_typer(gdpr_app, name="gdpr")
finance_app = typer.Typer(help="Finance reports (payments and the ledger).", no_args_is_help=True)
app.add_typer(finance_app, name="finance")
billing_app = typer.Typer(help="Bill runs and billing reports.", no_args_is_help=True)
app.add_typer(billing_app, name="billing")
console = Console()

REPO_ROOT = Path(__file__).resolve().parents[2]


def _settings() -> Settings:
    return get_settings()


def _require_secrets(settings: Settings) -> None:
    """Outside demo mode, stop with the list of built-in or generated secrets to replace (exit status 2)."""
    from openbss.platform.startup import secret_problems

    problems = secret_problems(settings)
    if problems:
        console.print("[red]refusing to start outside demo mode with built-in or generated secrets:[/]")
        for problem in problems:
            console.print(f"  - {problem}", markup=False, highlight=False)
        console.print("Set them in the environment (docs/security.md), or run `openbss demo` to try OpenBSS.")
        raise typer.Exit(2)


def _use_embedded_if_needed(settings: Settings) -> Any:
    """Without OPENBSS_DATABASE_URL, start the embedded PostgreSQL and point the settings at it."""
    if settings.database_url:
        return None
    from openbss.platform.embedded import start_embedded_postgres

    with console.status("Starting the embedded PostgreSQL…"):
        url, server = start_embedded_postgres(settings.data_dir)
    os.environ["OPENBSS_DATABASE_URL"] = url
    get_settings.cache_clear()
    return server


def _alembic_config(url: Any = None) -> Any:
    from alembic.config import Config

    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    if url is not None:
        cfg.attributes["url"] = url
    return cfg


def upgrade_database(url: Any = None) -> None:
    from alembic import command

    command.upgrade(_alembic_config(url), "head")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (as the database owner, OPENBSS_DATABASE_URL)."""
    server = _use_embedded_if_needed(_settings())
    upgrade_database()
    console.print("[green]database is at the latest migration[/]")
    del server


@db_app.command("partitions")
def db_partitions(
    ahead: Annotated[int | None, typer.Option(help="Months created ahead (default: usage_partitions_ahead)")] = None,
    retention_months: Annotated[int | None, typer.Option(
        help="Drop monthly partitions older than this many months (0: keep; default: usage_retention_months)")] = None,
) -> None:
    """Create the monthly partitions of time-partitioned tables ahead and drop those past the retention (as the
    database owner, OPENBSS_DATABASE_URL; schedule it daily)."""
    from sqlalchemy import create_engine

    from openbss.platform.db import owner_url
    from openbss.platform.partitions import maintain

    settings = _settings()
    server = _use_embedded_if_needed(settings)
    engine = create_engine(owner_url(get_settings()).set(drivername="postgresql+psycopg"))
    try:
        with engine.begin() as conn:
            done = maintain(conn, ahead=settings.usage_partitions_ahead if ahead is None else ahead,
                            retention_months=settings.usage_retention_months if retention_months is None
                            else retention_months)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        engine.dispose()
    console.print(f"created {len(done.created)} partition(s) {' '.join(done.created)}; moved "
                  f"{sum(done.moved.values())} row(s) out of the default partition; dropped {len(done.dropped)} "
                  f"{' '.join(done.dropped)}")
    del server


@db_app.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree (``alembic check`` on a scratch database)."""
    from alembic import command
    from sqlalchemy import create_engine

    from openbss.platform.db import owner_url

    settings = _settings()
    base = owner_url(settings) if settings.database_url else None
    if base is None:
        from openbss.platform.db import make_url

        base = make_url(os.environ.get("OPENBSS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    name = f"openbss_check_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = base.set(database=name)
        upgrade_database(url)
        command.check(_alembic_config(url))
        console.print("[green]models and migrations agree[/]")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    role: Annotated[list[str], typer.Option(help="Role (repeatable)")],
    party: Annotated[str | None, typer.Option(help="Party id (required for the customer role)")] = None,
    subject: Annotated[str | None, typer.Option(help="Subject (defaults to a random cli: id)")] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 3600,
) -> None:
    """Print a bearer JWT signed with the local development key."""
    from openbss.platform.auth import issue_token

    if "customer" in role and not party:
        raise typer.BadParameter("the customer role needs --party")
    try:
        typer.echo(issue_token(tenant, role, party=party, subject=subject, ttl_seconds=ttl))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@tenant_app.command("create")
def tenant_create(name: str, tenant_id: Annotated[str | None, typer.Option("--id")] = None,
                  sandbox: Annotated[bool, typer.Option(help="A sandbox tenant (billing test clocks)")] = False,
                  ) -> None:
    """Create a tenant (production unless --sandbox)."""
    server = _use_embedded_if_needed(_settings())

    async def run() -> str:
        from openbss.platform.db import Database
        from openbss.platform.tenancy import create_tenant

        db = Database.from_settings(get_settings())
        try:
            async with db.transaction(None) as session:
                t = await create_tenant(session, name, tenant_id, sandbox=sandbox)
                return t.id
        finally:
            await db.dispose()

    from openbss.platform.errors import DomainError

    try:
        tid = asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from exc
    console.print(f"tenant [bold]{tid}[/] created")
    del server


def _install_stop(stop: asyncio.Event) -> None:
    from openbss.platform.worker import install_stop_signals

    install_stop_signals(stop)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[int, typer.Option(help="Number of API processes")] = 1,
    certfile: Annotated[str | None, typer.Option(help="TLS certificate (PEM)")] = None,
    keyfile: Annotated[str | None, typer.Option(help="TLS private key (PEM)")] = None,
) -> None:
    """Run the API only (stateless; run several behind a load balancer)."""
    import uvicorn

    from openbss.platform.observability import configure_logging

    settings = _settings()
    _require_secrets(settings)
    server = _use_embedded_if_needed(settings)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    from openbss.platform.connections import server_options

    uvicorn.run(
        "openbss.app:create_app", factory=True, host=host or settings.host, port=port or settings.port,
        workers=workers, ssl_certfile=certfile, ssl_keyfile=keyfile, log_config=None, access_log=False,
        **server_options(settings),
    )
    del server


@app.command()
def worker() -> None:
    """Run the outbox relay, event consumers and background jobs."""
    from openbss.platform.observability import configure_logging

    _require_secrets(_settings())
    server = _use_embedded_if_needed(_settings())
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)

    async def run() -> None:
        from openbss.platform.runtime import Runtime
        from openbss.platform.worker import run_worker

        rt = Runtime.build(settings)
        register_domain_consumers(rt)
        stop = asyncio.Event()
        _install_stop(stop)
        try:
            await run_worker(rt, stop, on_ready=lambda: console.print("worker ready", style="dim"))
        finally:
            await rt.close()

    asyncio.run(run())
    del server


@app.command()
def orchestrator() -> None:
    """Run only the order orchestrator (the worker runs it too): steps of order items, claimed with SKIP LOCKED."""
    from openbss.platform.observability import configure_logging

    _require_secrets(_settings())
    server = _use_embedded_if_needed(_settings())
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)

    async def run() -> None:
        from openbss.platform.runtime import Runtime

        rt = Runtime.build(settings)
        services = _services(rt)
        stop = asyncio.Event()
        _install_stop(stop)
        try:
            console.print("orchestrator ready", style="dim")
            await services.provisioning.orchestrator().run(stop)
        finally:
            await rt.close()

    asyncio.run(run())
    del server


@app.command()
def escalations() -> None:
    """Run only the SLA escalation scheduler (the worker runs it too): due steps claimed with SKIP LOCKED, each
    fired once."""
    from openbss.platform.observability import configure_logging

    server = _use_embedded_if_needed(_settings())
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)

    async def run() -> None:
        from openbss.platform.runtime import Runtime

        rt = Runtime.build(settings)
        services = _services(rt)
        stop = asyncio.Event()
        _install_stop(stop)
        try:
            console.print("escalation scheduler ready", style="dim")
            await services.care.escalation(rt.db).run(stop)
        finally:
            await rt.close()

    asyncio.run(run())
    del server


@app.command()
def diameter(
    host: Annotated[str | None, typer.Option(help="Bind address (default OPENBSS_DIAMETER_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default OPENBSS_DIAMETER_PORT, 3868)")] = None,
    tenant: Annotated[str | None, typer.Option(help="Default tenant of peers not in OPENBSS_DIAMETER_PEER_TENANTS"
                                               )] = None,
) -> None:
    """Run the Diameter Gy/Ro credit-control front end (RFC 6733 / RFC 4006 over TCP) over the charging service."""
    from openbss.platform.observability import configure_logging

    server = _use_embedded_if_needed(_settings())
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)

    async def run() -> None:
        from openbss.charging.diameter.engine import ServiceEngine
        from openbss.charging.diameter.server import DiameterConfig, DiameterServer
        from openbss.platform.runtime import Runtime

        rt = Runtime.build(settings)
        services = _services(rt)
        config = DiameterConfig.from_settings(settings)
        config.host, config.port = host or config.host, port if port is not None else config.port
        config.default_tenant = tenant or config.default_tenant
        front = DiameterServer(ServiceEngine(services.charging.service, rt.db, settings.public_url), config)
        stop = asyncio.Event()
        _install_stop(stop)
        try:
            await front.start()
            console.print(f"diameter front end on {config.host}:{front.port} as {config.origin_host}", style="dim")
            await stop.wait()
        finally:
            await front.close()
            await rt.close()

    asyncio.run(run())
    del server


def _shard_list(text: str | None) -> set[int] | None:
    """'0-15,32' -> {0, ..., 15, 32}."""
    if not text:
        return None
    out: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


@app.command("charging-node")
def charging_node(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port (0: any free port)")] = None,
    node_id: Annotated[str | None, typer.Option(help="This node's name in the shard leases (default: random)")] = None,
    address: Annotated[str | None, typer.Option(help="Where redirects point (default http://host:port)")] = None,
    shards: Annotated[str | None, typer.Option(help="Shards this node may take, e.g. '0-31' (default: any)")] = None,
    max_shards: Annotated[int | None, typer.Option(help="Take at most this many shards")] = None,
    diameter_port: Annotated[int | None, typer.Option(
        help="Also answer Diameter Gy/Ro on this TCP port (OPENBSS_DIAMETER_HOST), decided by this node")] = None,
    diameter_tls_cert: Annotated[str | None, typer.Option(
        help="Diameter over TLS: the front end's certificate chain (PEM; OPENBSS_DIAMETER_TLS_CERT)")] = None,
    diameter_tls_key: Annotated[str | None, typer.Option(
        help="Diameter over TLS: the certificate's private key (PEM; OPENBSS_DIAMETER_TLS_KEY)")] = None,
) -> None:
    """Run a charging node: credit control for the accounts of the shards it leases, from memory, every decision
    group-committed to PostgreSQL before it is answered (JSON at /ocs/v1/creditControl, /metrics)."""
    from openbss.platform.observability import configure_logging

    _require_secrets(_settings())
    server = _use_embedded_if_needed(_settings())
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)

    async def run() -> None:
        from openbss.charging.node import ChargingNode, NodeConfig
        from openbss.charging.node.server import FrontEnd, run_node, settle_heap
        from openbss.platform.runtime import Runtime

        rt = Runtime.build(settings)
        services = _services(rt)
        bind_host = host or settings.charging_node_host
        bind_port = settings.charging_node_port if port is None else port
        config = NodeConfig(shards=settings.charging_shards, lease_seconds=settings.charging_node_lease_seconds,
                            max_queue=settings.charging_node_max_queue, batch_max=settings.charging_node_batch_max,
                            wanted=_shard_list(shards), max_shards=max_shards, base_url=settings.public_url,
                            address=address or f"http://{bind_host}:{bind_port}")
        if node_id:
            config.node_id = node_id
        node = ChargingNode(services.charging.service, rt.db, config)
        front = FrontEnd(node, rt.verifier, rt.tenants)
        stop = asyncio.Event()
        _install_stop(stop)

        def ready(bound: int) -> None:
            if not address:
                node.config.address = node.leases.address = f"http://{bind_host}:{bound}"
            console.print(f"charging node {config.node_id} ready on {bind_host}:{bound}, shards "
                          f"{node.owned_shards()}", style="dim")
            settle_heap()

        diameter_front = None
        if diameter_port is not None:
            from openbss.charging.diameter.server import DiameterConfig, DiameterServer

            dconfig = DiameterConfig.from_settings(settings)
            dconfig.port = diameter_port
            dconfig.tls_cert = diameter_tls_cert or dconfig.tls_cert
            dconfig.tls_key = diameter_tls_key or dconfig.tls_key
            try:
                dconfig.ssl_context()  # a missing or unreadable certificate or key: said now, not at the first peer
            except (ValueError, OSError) as exc:
                console.print(f"diameter TLS: {exc}", style="red")
                raise typer.Exit(2) from exc
            diameter_front = DiameterServer(node, dconfig)
        try:
            if diameter_front is not None:
                await diameter_front.start()
                console.print(f"diameter front end on {dconfig.host}:{diameter_front.port}, decided by this node",
                              style="dim")
            await run_node(node, front, bind_host, bind_port, stop, on_ready=ready)
        finally:
            if diameter_front is not None:
                await diameter_front.close()
            await rt.close()

    try:  # uvloop (it comes with uvicorn[standard]) when installed: less CPU per request
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())
    del server


def _services(rt: Any) -> Services:
    """The process's services (the composition root, ``openbss.services``)."""
    from openbss.services import build_services

    return build_services(rt.settings, rt)


def register_domain_consumers(rt: Any) -> Services:
    """What a worker process runs for the platform and every domain (event consumers, background loops, job
    blueprints), over the process's services, which it returns."""
    from openbss.services import wire_worker

    services = _services(rt)
    wire_worker(services, rt)
    return services


# --- the event backbone: consumers, failed deliveries, replays (logic in platform/events/admin.py) ------------------
def _events_run(action: Any, *, consumers: bool = True) -> Any:
    """Run ``action(rt)`` with a runtime whose consumers are registered as in the worker; typed errors to exit 1."""
    from openbss.platform.events.admin import FailureNotFound, UnknownConsumer

    server = _use_embedded_if_needed(_settings())

    async def run() -> Any:
        from openbss.platform.runtime import Runtime

        rt = Runtime.build(get_settings())
        if consumers:
            register_domain_consumers(rt)
        try:
            return await action(rt)
        finally:
            await rt.close()

    try:
        return asyncio.run(run())
    except (FailureNotFound, UnknownConsumer, ValueError) as exc:
        console.print(f"[red]{exc.args[0] if exc.args else exc}[/]")
        raise typer.Exit(1) from exc
    finally:
        del server


@events_app.command("list")
def events_list() -> None:
    """Every registered consumer: its event types, retry policy, open failures, and on JetStream its durable
    consumers with their pending and unacknowledged counts."""
    from rich.table import Table

    from openbss.platform.events.admin import describe_consumers
    from openbss.platform.events.failures import RetryPolicy

    async def action(rt: Any) -> Any:
        bus = rt.make_bus() if rt.settings.nats_url else None
        return await describe_consumers(rt.db, rt.consumers, RetryPolicy.from_settings(rt.settings), bus)

    reports, broker = _events_run(action)
    console.print(f"JetStream stream [bold]{broker.stream}[/]: {broker.messages} events (sequence "
                  f"{broker.first_seq} to {broker.last_seq}); one durable consumer per consumer and event type"
                  if broker else "Embedded mode: consumers run in process after commit; the worker retries failures")
    table = Table(title="Event consumers", show_lines=broker is not None)
    for col in ("consumer", "domain", "event types", "attempts · backoff", "retrying", "dead"):
        table.add_column(col, overflow="fold")
    if broker:
        for col in ("durable consumer", "pending", "ack pending", "redelivered"):
            table.add_column(col, overflow="fold", justify="right" if col != "durable consumer" else "left")
    for r in reports:
        types = ", ".join(r.event_types) if r.event_types else "every event"
        if r.apis:
            types += f" (of {', '.join(r.apis)})"
        p = r.policy
        cells = [r.name, r.domain or "-", types, f"{p.max_attempts} · {p.base_seconds:g}s..{p.max_seconds:g}s",
                 str(r.failures.get("retrying", 0)),
                 f"[red]{r.failures['dead']}[/]" if r.failures.get("dead") else "0"]
        if broker:
            cells += ["\n".join(lane.durable if lane.exists else f"{lane.durable} [dim](not created)[/]"
                                for lane in r.lanes)]
            cells += ["\n".join(str(getattr(lane, f)) if lane.exists else "-" for lane in r.lanes)
                      for f in ("pending", "ack_pending", "redelivered")]
        table.add_row(*cells)
    console.print(table)
    if broker and broker.orphaned:
        console.print(f"[yellow]durable consumers no registered consumer uses[/]: {', '.join(broker.orphaned)}")


@events_app.command("failed")
def events_failed(
    consumer: Annotated[str | None, typer.Option(help="Only this consumer")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant")] = None,
    state: Annotated[str, typer.Option(help="open (retrying and dead), all, or retrying,dead,replayed,resolved")
                     ] = "open",
    limit: Annotated[int, typer.Option(help="At most this many (most recent first)")] = 50,
) -> None:
    """Failed deliveries of events to consumers (dead letters and those still retrying)."""
    from rich.table import Table

    from openbss.platform.events.admin import list_failures, parse_states

    try:
        states = parse_states(state)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--state") from exc

    async def action(rt: Any) -> Any:
        return await list_failures(rt.db, consumer=consumer, tenant=tenant, states=states, limit=limit)

    rows, total = _events_run(action, consumers=False)
    table = Table(title=f"Event failures ({len(rows)} of {total}, state {state})")
    for col in ("id", "state", "consumer · event type", "tenant", "attempts", "last failed (UTC)", "error"):
        table.add_column(col, overflow="fold", no_wrap=col in ("id", "state", "attempts"))
    colors = {"dead": "red", "retrying": "yellow", "replayed": "green", "resolved": "green"}
    for f in rows:
        state = f"[{colors[f.state]}]{f.state}[/]"
        if f.next_attempt_at:
            state += f"\nnext {f.next_attempt_at:%H:%M:%S}"
        table.add_row(str(f.id), state, f"{f.consumer}\n[dim]{f.event_type}[/]", f.tenant_id,
                      f"{f.attempts}/{f.max_attempts}", f"{f.last_failed_at:%Y-%m-%d %H:%M:%S}", f.last_error[:120])
    console.print(table)


@events_app.command("inspect")
def events_inspect(
    failure_id: Annotated[int, typer.Argument(help="The failure's id (see `openbss events failed`)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON")] = False,
) -> None:
    """One failed delivery: its consumer, attempts, last error with its traceback, and the event."""
    from rich.panel import Panel
    from rich.syntax import Syntax

    from openbss.platform.events.admin import event_of, get_failure

    async def action(rt: Any) -> Any:
        return event_of(await get_failure(rt.db, failure_id))

    data = _events_run(action, consumers=False)
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    lines = [f"[bold]{k}[/]: {data[k]}" for k in ("state", "consumer", "tenant", "eventType", "eventId", "api",
                                                    "attempts", "maxAttempts", "streamSequence", "firstFailedAt",
                                                    "lastFailedAt", "nextAttemptAt", "settledAt", "settledBy")
             if data[k] is not None]
    console.print(Panel("\n".join(lines), title=f"event failure {failure_id}"))
    console.print(Panel(data["lastError"], title="last error", style="red"))
    if data["traceback"]:
        console.print(Syntax(data["traceback"], "pytb", word_wrap=True))
    console.print(Syntax(json.dumps(data["event"], indent=2, ensure_ascii=False), "json", word_wrap=True))


@events_app.command("replay")
def events_replay(
    failure_id: Annotated[int | None, typer.Argument(help="Replay this failure (see `openbss events failed`)")
                          ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter (of --consumer / --tenant)")] = False,
    consumer: Annotated[str | None, typer.Option(help="Only this consumer")] = None,
    tenant: Annotated[str | None, typer.Option(help="With --all: only this tenant")] = None,
    from_seq: Annotated[int | None, typer.Option("--from-seq", help="Replay the JetStream stream from here")] = None,
    to_seq: Annotated[int | None, typer.Option("--to-seq", help="Last stream sequence (default: the end)")] = None,
    force: Annotated[bool, typer.Option(help="Run handlers even for events they already processed")] = False,
) -> None:
    """Run failed deliveries through their consumer again (one by id, or --all dead letters), or re-read the
    stream from a position (--from-seq); idempotently unless --force."""
    from rich.progress import Progress

    from openbss.platform.events import admin

    modes = [failure_id is not None, all_, from_seq is not None]
    if sum(modes) != 1:
        raise typer.BadParameter("give one of: a failure id, --all, or --from-seq")
    if from_seq is not None:
        if not _settings().nats_url:
            raise typer.BadParameter("replay --from-seq needs OPENBSS_NATS_URL (the in-process bus keeps no stream)")

        async def stream(rt: Any) -> Any:
            from openbss.platform.events.bus import NatsBus

            bus = rt.make_bus()
            assert isinstance(bus, NatsBus)
            targets = [rt.consumers.get(consumer)] if consumer else rt.consumers.all()
            return await admin.replay_stream(rt.db, bus, targets, from_seq=from_seq, to_seq=to_seq, force=force)

        out = _events_run(stream)
        console.print(f"replayed {out.seen} events; {out.handled} handler runs (others had already processed them)")
        for seq, name, error in out.failed:
            console.print(f"[red]seq {seq}: {name} failed[/]: {error}")
        if out.failed:
            raise typer.Exit(1)
        return

    def show(result: Any) -> None:
        color = {"replayed": "green", "failed": "red"}.get(result.outcome, "yellow")
        console.print(f"failure {result.failure_id} ({result.consumer}, event {result.event_id}, tenant "
                      f"{result.tenant_id}): [{color}]{result.outcome}[/]" + (f": {result.error}" if result.error
                                                                              else ""))

    if failure_id is not None:
        async def one(rt: Any) -> Any:
            return await admin.replay_failure(rt.db, rt.consumers, failure_id, force=force, by="openbss events")

        result = _events_run(one)
        show(result)
        if result.outcome == "failed":
            raise typer.Exit(1)
        return

    async def many(rt: Any) -> Any:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("replaying dead letters", total=None)

            def on_result(result: Any, total: int) -> None:
                progress.update(task, total=total, advance=1)
                if result.outcome != "replayed":
                    progress.console.print(f"failure {result.failure_id}: {result.outcome}"
                                           + (f": {result.error}" if result.error else ""))

            return await admin.replay_failures(rt.db, rt.consumers, consumer=consumer, tenant=tenant, force=force,
                                               by="openbss events", on_result=on_result)

    results = _events_run(many)
    by_outcome: dict[str, int] = {}
    for r in results:
        by_outcome[r.outcome] = by_outcome.get(r.outcome, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(by_outcome.items())) or "nothing to replay"
    console.print(f"{len(results)} dead letter(s): {summary}")
    if by_outcome.get("failed"):
        raise typer.Exit(1)


@events_app.command("resolve")
def events_resolve(
    failure_id: Annotated[int, typer.Argument(help="The failure's id")],
    note: Annotated[str, typer.Option(help="Why it is closed without a replay (kept with the record)")],
) -> None:
    """Close a failed delivery without running the consumer again (handled otherwise)."""
    from openbss.platform.events.admin import resolve_failure

    async def action(rt: Any) -> Any:
        return await resolve_failure(rt.db, failure_id, note=note, by="openbss events")

    row = _events_run(action, consumers=False)
    console.print(f"event failure {row.id} ({row.consumer}) is [green]{row.state}[/]")


@events_app.command("outbox")
def events_outbox(
    retry: Annotated[bool, typer.Option(help="Hand the dead events back to the relay (after fixing the cause)")]
        = False,
    event: Annotated[list[str] | None, typer.Option(help="Only this event id (repeatable)")] = None,
) -> None:
    """Outbox events the relay could not publish (dead letters: e.g. larger than the broker accepts), and why."""
    from rich.table import Table

    from openbss.platform.events.admin import dead_outbox_events, retry_dead_outbox_events

    async def action(rt: Any) -> Any:
        if retry:
            return await retry_dead_outbox_events(rt.db, event)
        return await dead_outbox_events(rt.db)

    out = _events_run(action, consumers=False)
    if retry:
        console.print(f"{out} outbox event(s) handed back to the relay")
        return
    table = Table(title="Outbox events that could not be published")
    for col in ("event id", "tenant", "event type", "resource", "dead since", "error"):
        table.add_column(col, overflow="fold")
    for row in out:
        table.add_row(str(row.event_id), row.tenant_id, row.event_type, f"{row.resource_type} {row.resource_id}",
                      row.dead_at.isoformat() if row.dead_at else "", row.last_error or "")
    console.print(table if out else "no dead outbox event")


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
) -> None:
    """Everything in one process: embedded PostgreSQL, migrations, demo data, API and worker."""
    from openbss.demo.run import run_demo

    # demo mode: the built-in development secrets and the keys generated under data_dir/keys are accepted
    os.environ["OPENBSS_DEMO_MODE"] = "true"
    if (host or port) and "OPENBSS_PUBLIC_URL" not in os.environ:  # the links printed and served name this address
        shown = host if host not in (None, "0.0.0.0", "::") else "127.0.0.1"
        os.environ["OPENBSS_PUBLIC_URL"] = f"http://{shown}:{port or 8000}"
    get_settings.cache_clear()
    server = _use_embedded_if_needed(_settings())
    upgrade_database()
    asyncio.run(run_demo(get_settings(), host=host, port=port, console=console))
    del server


@keys_app.command("rotate")
def keys_rotate(
    tenant: Annotated[list[str] | None, typer.Option(help="Only this tenant (repeatable; default: all)")] = None,
    rewrap_only: Annotated[bool, typer.Option(help="Only re-wrap tenant keys; keep data keys and values")] = False,
) -> None:
    """Re-encrypt under the current master key, online.

    With OPENBSS_MASTER_KEYS, put the new key first (keep the old ones), roll it out to every process, then run
    this; afterwards the old keys can be removed. In development a new local master key is generated first.
    Every tenant key is re-wrapped, each tenant gets a new data key, and every stored value is re-encrypted in
    small batches while the API keeps serving.
    """
    from rich.progress import Progress

    from openbss.platform.crypto import add_dev_master_key, describe_keyring, key_service, reset_key_service, rotate
    from openbss.platform.runtime import Runtime

    settings = _settings()
    server = _use_embedded_if_needed(settings)
    settings = get_settings()
    if not (settings.master_keys or settings.master_key):
        kid = add_dev_master_key(settings)
        console.print(f"new development master key [bold]{kid}[/]")
    reset_key_service()
    keys = key_service(settings)
    console.print(f"master keys: {describe_keyring(keys.keyring)}")

    async def run() -> Any:
        rt = Runtime.build(settings)
        tables = _services(rt).encrypted_tables()
        try:
            with Progress(console=console, transient=True) as progress:
                tasks: dict[str, Any] = {}

                def on_progress(name: str, n: int) -> None:
                    if name not in tasks:
                        tasks[name] = progress.add_task(f"re-encrypting {name}", total=None)
                    progress.advance(tasks[name], n)

                return await rotate(rt.db, keys, tables, tenants=tenant or None,
                                    new_data_keys=not rewrap_only, on_progress=on_progress)
        finally:
            await rt.close()

    report = asyncio.run(run())
    console.print(f"[green]rotated[/]: {report.tenants} tenant(s), {report.keys_rewrapped} key(s) re-wrapped under "
                  f"{report.master_key_id}, {report.rows_reencrypted} record(s) / {report.values_reencrypted} "
                  "value(s) re-encrypted")
    del server


@gdpr_app.command("export")
def gdpr_export(
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    party: Annotated[str, typer.Option(help="Party id (individual or organization)")],
    out: Annotated[Path | None, typer.Option(help="Write the JSON here (default: standard output)")] = None,
) -> None:
    """Export every personal datum held on a party, as JSON (right of access)."""
    from openbss.platform.auth import Principal, permissions_for
    from openbss.platform.db import json_dumps
    from openbss.platform.errors import DomainError
    from openbss.platform.runtime import Runtime
    from openbss.platform.tmf.resource import Context

    server = _use_embedded_if_needed(_settings())
    settings = get_settings()

    async def run() -> dict[str, Any]:
        rt = Runtime.build(settings)
        services = _services(rt)
        principal = Principal("cli:gdpr-export", tenant, ("admin",), permissions=permissions_for(("admin",)))
        try:
            async with rt.db.transaction(tenant) as session:
                ctx = Context(principal=principal, session=session, base_url=settings.public_url.rstrip("/"))
                return await services.personal_data.export(ctx, party)
        finally:
            await rt.close()

    try:
        data = asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from exc
    text = json.dumps(json.loads(json_dumps(data)), indent=2, ensure_ascii=False)
    if out:
        out.write_text(text + "\n")
        console.print(f"personal data of party {party} written to {out}")
    else:
        typer.echo(text)
    del server


# --- order to activate: SIM stock and operator actions on orders -------------------------------------------------
inventory_app = typer.Typer(help="Resource inventory and pools.", no_args_is_help=True)
order_app = typer.Typer(help="Product orders: operator actions.", no_args_is_help=True)
app.add_typer(inventory_app, name="inventory")
app.add_typer(order_app, name="order")


def _system_run(tenant: str, action: Callable[[Any, Services], Awaitable[Any]]) -> Any:
    """Run ``action(ctx, services)`` in one transaction of ``tenant`` as the CLI operator."""
    settings = get_settings()

    async def run() -> Any:
        from openbss.platform.auth import Principal, permissions_for
        from openbss.platform.runtime import Runtime
        from openbss.platform.tmf.resource import Context

        rt = Runtime.build(settings)
        services = _services(rt)
        principal = Principal("cli:operator", tenant, ("admin",), permissions=permissions_for(("admin",)))
        try:
            async with rt.db.transaction(tenant) as session:
                ctx = Context(principal=principal, session=session, base_url=settings.public_url.rstrip("/"))
                return await action(ctx, services)
        finally:
            await rt.close()

    from openbss.platform.errors import DomainError

    try:
        return asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from exc


@inventory_app.command("load-sims")
def inventory_load_sims(
    file: Annotated[Path, typer.Argument(help="CSV with the columns iccid,imsi,ki_ref[,pool,form]")],
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    pool: Annotated[str, typer.Option(help="Pool of the cards without a pool column")] = "default",
) -> None:
    """Bulk-load SIM cards (ICCID, IMSI, Ki reference) into the SIM pool; cards already known are skipped."""
    server = _use_embedded_if_needed(_settings())
    content = file.read_text()

    async def action(ctx: Any, services: Services) -> dict[str, int]:
        with console.status(f"Loading {file.name}…"):
            return await services.inventory.service.load_sims(ctx, content, pool)

    out = _system_run(tenant, action)
    console.print(f"{out['read']} SIM cards read, [green]{out['added']} added[/]")
    del server


@order_app.command("retry")
def order_retry(order_id: str, tenant: Annotated[str, typer.Option(help="Tenant id")]) -> None:
    """Run the failed items of a failed or partial product order again."""
    server = _use_embedded_if_needed(_settings())

    async def action(ctx: Any, services: Services) -> dict[str, Any]:
        return await services.ordering.service.retry(ctx, order_id)

    out = _system_run(tenant, action)
    console.print(f"product order {order_id} is [bold]{out['state']}[/]; the worker runs its failed items again")
    del server


@order_app.command("cancel")
def order_cancel(order_id: str, tenant: Annotated[str, typer.Option(help="Tenant id")],
                 reason: Annotated[str | None, typer.Option(help="Cancellation reason")] = None) -> None:
    """Cancel a product order (what its items already did on the network is compensated by the worker)."""
    server = _use_embedded_if_needed(_settings())

    async def action(ctx: Any, services: Services) -> dict[str, Any]:
        return await services.ordering.cancellations.create(
            ctx, {"productOrder": {"id": order_id}, "cancellationReason": reason or "cancelled by an operator"})

    out = _system_run(tenant, action)
    console.print(f"cancellation {out['id']} of product order {order_id}: [bold]{out['state']}[/]")
    del server


# --- batch rating: usage files, suspense, reconciliation (logic in rating/service.py and rating/collect.py) -------
rating_app = typer.Typer(help="Mediation and batch rating of usage files.", no_args_is_help=True)
app.add_typer(rating_app, name="rating")


def _rating_run(action: Callable[[Any, Services], Awaitable[Any]]) -> Any:
    """Run ``action(rt, services)`` with a runtime and the process's services; typed errors to exit 1."""
    settings = get_settings()

    async def run() -> Any:
        from openbss.platform.runtime import Runtime

        rt = Runtime.build(settings)
        services = _services(rt)
        try:
            return await action(rt, services)
        finally:
            if services.rating.queue is not None:
                await services.rating.queue.close()
            await rt.close()

    from openbss.platform.errors import DomainError

    try:
        return asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from exc


def _file_line(report: dict[str, Any]) -> str:
    amounts = ", ".join(f"{v} {c}" for c, v in report["amounts"].items()) or "-"
    if report.get("duplicateFile"):
        state = "[yellow]duplicate file, nothing changed[/]"
    elif report.get("status") == "queued":
        return f"{report['name']}: [cyan]queued[/] in {report['chunks']} chunk(s) for the workers"
    else:
        state = "[green]rated[/]"
    return (f"{report['name']}: {state} received {report['received']} = rated {report['rated']} + duplicate "
            f"{report['duplicate']} + rejected {report['rejected']} + suspended {report['suspended']}; {amounts}")


@rating_app.command("ingest")
def rating_ingest(
    files: Annotated[list[Path], typer.Argument(help="Usage files (CSV or JSON lines, docs/rating.md)",
                                                exists=True, dir_okay=False, readable=True)],
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    source: Annotated[str, typer.Option(help="Collection source (part of a file's registration key)")] = "files",
) -> None:
    """Mediate and rate usage files, each once (a file seen before is reported as a duplicate)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from openbss.rating.collect import ingest_path

    server = _use_embedded_if_needed(_settings())
    base = get_settings().public_url.rstrip("/")

    async def action(rt: Any, services: Services) -> list[dict[str, Any]]:
        reports = []
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("rating", total=sum(f.stat().st_size for f in files))
            for f in files:
                progress.update(task, description=f.name)
                reports.append(await ingest_path(rt.db, services.rating.service, tenant, f, source=source,
                                                 base_url=base))
                progress.advance(task, f.stat().st_size)
        return reports

    for report in _rating_run(action):
        console.print(_file_line(report))
    del server


@rating_app.command("submit")
def rating_submit(
    files: Annotated[list[Path], typer.Argument(help="Usage files (CSV, JSON lines or BER, docs/rating.md)",
                                                exists=True, dir_okay=False, readable=True)],
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    source: Annotated[str, typer.Option(help="Collection source (part of a file's registration key)")] = "files",
    wait: Annotated[bool, typer.Option(help="Wait, with a progress bar, until the workers rated every chunk")] = True,
) -> None:
    """Submit usage files to the work queue (NATS JetStream): cut into chunks by subscriber, rated by every running
    `openbss worker`; prints each file's reconciliation once rated."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from openbss.charging.service import system_context
    from openbss.rating.queue import WorkQueue

    server = _use_embedded_if_needed(_settings())
    settings = get_settings()
    if not settings.nats_url:
        console.print("[red]the work queue needs NATS (OPENBSS_NATS_URL); use `openbss rating ingest` without it[/]")
        raise typer.Exit(1)
    base = settings.public_url.rstrip("/")

    async def action(rt: Any, services: Services) -> list[dict[str, Any]]:
        queue = WorkQueue(rt.db, settings)
        service = services.rating.service
        reports = []
        try:
            for f in files:
                async with rt.db.transaction(tenant) as session:
                    report = await service.submit(system_context(session, tenant, base), f.name, f.read_bytes(),
                                                  source=source, partitions=settings.rating_partitions,
                                                  chunk_records=settings.rating_chunk_records)
                await queue.publish(tenant, report["id"], report["workItems"])
                reports.append(report)
        finally:
            await queue.close()
        if not wait:
            return reports
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            tasks = {r["id"]: progress.add_task(r["name"], total=max(r["chunks"], 1)) for r in reports}
            while True:
                async with rt.db.transaction(tenant) as session:
                    current = {r["id"]: r for r in await service.files(system_context(session, tenant, base),
                                                                       limit=1000) if r["id"] in tasks}
                for fid, task in tasks.items():
                    progress.update(task, completed=current[fid]["chunksDone"] if current[fid]["chunks"] else 1)
                if all(r["status"] == "rated" for r in current.values()):
                    return [current[r["id"]] | {"duplicateFile": r["duplicateFile"]} for r in reports]
                await asyncio.sleep(0.5)

    for report in _rating_run(action):
        console.print(_file_line(report) if report["status"] == "rated" else
                      f"{report['name']}: queued in {report['chunks']} chunk(s)")
    del server


@rating_app.command("requeue")
def rating_requeue(tenant: Annotated[str, typer.Option(help="Tenant id")]) -> None:
    """Publish again the chunks of submitted files that are not rated yet (after the submitter died between its
    commit and its publication; a chunk already on the stream is not queued twice within the duplicate window, and
    a chunk rated already changes nothing)."""
    from openbss.charging.service import system_context
    from openbss.rating.queue import WorkQueue

    server = _use_embedded_if_needed(_settings())
    settings = get_settings()

    async def action(rt: Any, services: Services) -> int:
        async with rt.db.transaction(tenant) as session:
            queued = await services.rating.service.queued_chunks(system_context(session, tenant, settings.public_url))
        queue = WorkQueue(rt.db, settings)
        try:
            n = 0
            for file_id in sorted({f for f, _, _ in queued}):
                n += await queue.publish(tenant, file_id, [(c, p) for f, c, p in queued if f == file_id])
            return n
        finally:
            await queue.close()

    console.print(f"{_rating_run(action)} chunk(s) published")
    del server


@rating_app.command("collect")
def rating_collect(
    directory: Annotated[Path, typer.Argument(help="Watched directory", exists=True, file_okay=False)],
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    source: Annotated[str, typer.Option(help="Collection source")] = "files",
    watch: Annotated[bool, typer.Option(help="Keep watching (until interrupted)")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks when watching")] = 2.0,
) -> None:
    """Collect the usage files waiting in a directory (moved to processed/ or failed/ once handled); with NATS they
    are submitted to the work queue and rated by the running `openbss worker` processes."""
    from openbss.rating.collect import Collected, collect_once
    from openbss.rating.collect import watch as watch_directory

    server = _use_embedded_if_needed(_settings())
    base = get_settings().public_url.rstrip("/")

    def show(c: Collected) -> None:
        console.print(_file_line(c.report) if c.report else f"{c.path.name}: [red]{c.error}[/]")

    async def action(rt: Any, services: Services) -> None:
        if not watch:
            await collect_once(rt.db, services.rating.service, tenant, directory, source=source, base_url=base,
                               on_file=show, queue=services.rating.queue)
            return
        stop = asyncio.Event()
        _install_stop(stop)
        await watch_directory(rt.db, services.rating.service, tenant, directory, source=source, base_url=base,
                              stop=stop, interval=interval, on_file=show, queue=services.rating.queue)

    _rating_run(action)
    del server


@rating_app.command("collect-bucket")
def rating_collect_bucket(
    bucket: Annotated[str, typer.Argument(help="S3-compatible bucket")],
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    prefix: Annotated[str, typer.Option(help="Prefix holding incoming/, processed/ and failed/")] = "",
    endpoint_url: Annotated[str | None, typer.Option(help="S3 endpoint (MinIO, Ceph, ...); default AWS")] = None,
    region: Annotated[str, typer.Option(help="Region")] = "us-east-1",
    source: Annotated[str | None, typer.Option(help="Collection source (default s3://BUCKET/PREFIX)")] = None,
) -> None:
    """Collect the usage files waiting under PREFIX/incoming/ of a bucket (credentials from the usual AWS_*
    environment variables); each is moved to processed/ or failed/ once handled."""
    from openbss.platform.storage import S3ObjectStore
    from openbss.rating.collect import Collected, collect_store

    server = _use_embedded_if_needed(_settings())
    base = get_settings().public_url.rstrip("/")
    store = S3ObjectStore(bucket, prefix, endpoint_url=endpoint_url, region=region)

    def show(c: Collected) -> None:
        console.print(_file_line(c.report) if c.report else f"{c.path}: [red]{c.error}[/]")

    async def action(rt: Any, services: Services) -> None:
        await collect_store(rt.db, services.rating.service, tenant, store, source=source or f"s3://{bucket}/{prefix}",
                            base_url=base, on_file=show, queue=services.rating.queue)

    _rating_run(action)
    del server


@rating_app.command("assign-number")
def rating_assign_number(
    msisdn: Annotated[str, typer.Argument(help="The number (E.164)")],
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    account: Annotated[str, typer.Option(help="Charging account (subscription) using the number from then on")],
    valid_from: Annotated[str, typer.Option("--from", help="From when (ISO 8601 with an offset)")],
) -> None:
    """Record that a number is used by a subscription from a moment on (guiding by event time); the previous
    owner's assignment ends then."""
    _assign(tenant, valid_from, lambda services: services.rating.service.assign_number, msisdn, account,
            f"{msisdn} is used by charging account {account}")


def _assign(tenant: str, valid_from: str, assign: Callable[[Services], Any], key: str, account: str,
            said: str) -> None:
    """A guiding assignment (a number or a SIM used by a charging account from ``valid_from`` on)."""
    from datetime import datetime

    try:
        since = datetime.fromisoformat(valid_from)
    except ValueError as exc:
        raise typer.BadParameter(f"--from '{valid_from}' is not an ISO 8601 date-time") from exc
    server = _use_embedded_if_needed(_settings())

    async def action(ctx: Any, services: Services) -> None:
        await assign(services)(ctx, key, account, since)

    _system_run(tenant, action)
    console.print(f"{said} from {since.isoformat()}")
    del server


@rating_app.command("assign-imsi")
def rating_assign_imsi(
    imsi: Annotated[str, typer.Argument(help="The SIM's IMSI (6 to 15 digits)")],
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    account: Annotated[str, typer.Option(help="Charging account (subscription) using the SIM from then on")],
    valid_from: Annotated[str, typer.Option("--from", help="From when (ISO 8601 with an offset)")],
) -> None:
    """Record that a SIM (IMSI) is used by a subscription from a moment on: records carrying the IMSI are guided
    by it at their event time; the previous assignment ends then."""
    _assign(tenant, valid_from, lambda services: services.rating.service.assign_imsi, imsi, account,
            f"IMSI {imsi} is used by charging account {account}")


@rating_app.command("suspense")
def rating_suspense(
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    reprocess: Annotated[bool, typer.Option(help="Re-process the pending records")] = False,
    record: Annotated[list[int] | None, typer.Option(help="Only this suspended record (repeatable)")] = None,
    fix: Annotated[list[str] | None, typer.Option(help="Correction field=value for --record (repeatable)")] = None,
    discard: Annotated[int | None, typer.Option(help="Discard this suspended record")] = None,
    limit: Annotated[int, typer.Option(help="How many to list")] = 50,
) -> None:
    """The suspense queue: records that failed validation or could not be guided or rated, with their reason;
    correct, re-process or discard them."""
    from rich.table import Table

    corrections: dict[str, Any] = {}
    for item in fix or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--fix '{item}' is not field=value")
        corrections[name] = value
    if corrections and (not record or len(record) != 1):
        raise typer.BadParameter("--fix applies to exactly one --record")
    server = _use_embedded_if_needed(_settings())

    async def action(ctx: Any, services: Services) -> Any:
        rating = services.rating.service
        if discard is not None:
            await rating.discard(ctx, discard)
            return f"suspended record {discard} discarded"
        if reprocess:
            got = await rating.reprocess(ctx, record, {record[0]: corrections} if corrections and record else None)
            return f"re-processed: rated {got['rated']}, duplicate {got['duplicate']}, still pending {got['pending']}"
        return await rating.suspense(ctx, limit=limit)

    out = _system_run(tenant, action)
    if isinstance(out, str):
        console.print(out)
    else:
        table = Table(title="Suspense queue (pending)")
        for col in ("id", "age (h)", "category", "reason", "record"):
            table.add_column(col, overflow="fold")
        for s in out:
            table.add_row(str(s["id"]), str(s["ageHours"]), s["category"], s["reason"],
                          ", ".join(f"{k}={v}" for k, v in s["record"].items()))
        console.print(table)
    del server


@rating_app.command("rerate")
def rating_rerate(
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    period: Annotated[str, typer.Option(help="Billing period, YYYY-MM")],
    job: Annotated[str, typer.Option(help="The job's id: run again, it prints the first run's report")],
    account: Annotated[str | None, typer.Option(help="Re-rate this charging account's usage")] = None,
    tariff: Annotated[str | None, typer.Option(help="Re-rate the usage of the accounts whose plan uses it")] = None,
) -> None:
    """Re-rate a billing period's usage after a tariff correction: each record whose figures change gets a
    reversal and a new version (billing bills the difference); prints the report of the differences."""
    server = _use_embedded_if_needed(_settings())

    async def action(ctx: Any, services: Services) -> dict[str, Any]:
        return await services.rating.service.rerate(ctx, job, period, account_id=account, tariff_id=tariff)

    rep = _system_run(tenant, action)
    seen = " (already run: nothing written)" if rep["alreadyRun"] else ""
    console.print(f"re-rate job {rep['id']} ({rep['period']}){seen}: {rep['records']} records of "
                  f"{rep['accounts']} accounts, {rep['changed']} changed")
    for c in sorted(rep["difference"]):
        console.print(f"  {c}: before {rep['before'][c]}, after {rep['after'][c]}, difference {rep['difference'][c]}")
    for u in rep["unrated"][:20]:
        console.print(f"  not rated: {u['recordId']} ({u['origin']}): {u['reason']}")
    del server


@rating_app.command("report")
def rating_report(tenant: Annotated[str, typer.Option(help="Tenant id")]) -> None:
    """Per file: received = rated + duplicate + rejected + suspended, and the rated amounts; the suspense queue
    by age and reason."""
    from rich.table import Table

    server = _use_embedded_if_needed(_settings())

    async def action(ctx: Any, services: Services) -> dict[str, Any]:
        return await services.rating.service.report(ctx)

    rep = _system_run(tenant, action)
    table = Table(title="Usage files")
    for col in ("file", "source", "registered", "received", "rated", "duplicate", "rejected", "suspended",
                "reconciles", "amounts"):
        table.add_column(col, overflow="fold")
    for f in rep["files"]:
        ok = f["received"] == f["rated"] + f["duplicate"] + f["rejected"] + f["suspended"]
        table.add_row(f["name"], f["source"], f["registeredAt"], *(str(f[k]) for k in (
            "received", "rated", "duplicate", "rejected", "suspended")), "yes" if ok else "[red]NO[/]",
            ", ".join(f"{v} {c}" for c, v in f["amounts"].items()))
    console.print(table)
    s = rep["suspense"]
    console.print(f"Suspense (pending): under 1 day {s['under1Day']}, 1-7 days {s['1To7Days']}, 7-30 days "
                  f"{s['7To30Days']}, over 30 days {s['over30Days']}")
    for r in s["byReason"][:10]:
        console.print(f"  {r['count']:>6}  {r['category']}: {r['reason']}")
    del server


# --- billing: bill runs with a progress bar ---------------------------------------------------------------------
@billing_app.command("run")
def billing_run(
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Bill as of this date (YYYY-MM-DD; default today)")]
    = None,
    finalize: Annotated[bool | None, typer.Option("--finalize/--draft", help="Issue the bills (default: when "
                                                                              "their grace period is over)")] = None,
    partition_size: Annotated[int, typer.Option(help="Accounts per partition")] = 500,
) -> None:
    """Bill every account of a tenant as a partitioned run (the workers' code path: other workers may help, and a
    run interrupted is resumed by any worker), showing its progress, then its counts and totals."""
    from datetime import date

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from openbss.billing.runs import run_status, start_run, work_run
    from openbss.platform.runtime import Runtime
    from openbss.platform.tmf.resource import system_context

    try:
        day = date.fromisoformat(as_of) if as_of else date.today()
    except ValueError as exc:
        console.print("[red]--as-of is a date (YYYY-MM-DD)[/]")
        raise typer.Exit(2) from exc
    server = _use_embedded_if_needed(_settings())
    settings = get_settings()

    async def run() -> dict[str, Any]:
        rt = Runtime.build(settings)
        domain = _services(rt).billing
        billing = domain.service
        try:
            async with rt.db.transaction(tenant) as session:
                ctx = system_context(tenant, session, settings.public_url, "billing")
                job = await start_run(ctx, billing, day, finalize=finalize, size=partition_size)
            columns = (TextColumn("billing {task.fields[run]}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("accounts"), TimeRemainingColumn())
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("bill", total=job["accounts"], run=job["id"][:8])

                async def tick(_: str) -> None:
                    progress.advance(task)

                await work_run(rt.db, tenant, settings.public_url, billing, job["id"], after_account=tick,
                               documents=domain.documents)
                progress.update(task, completed=job["accounts"])
            async with rt.db.transaction(tenant) as session:
                return await run_status(system_context(tenant, session, settings.public_url, "billing"), job["id"])
        finally:
            await rt.close()

    try:
        status = asyncio.run(run())
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    finally:
        del server
    _print_run(status)


@billing_app.command("assurance")
def billing_assurance(
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    start: Annotated[str, typer.Option("--from", help="First day of the period (YYYY-MM-DD)")],
    end: Annotated[str, typer.Option("--to", help="Day after the period (YYYY-MM-DD)")],
) -> None:
    """Revenue assurance of a period: rated usage against billed usage, unbilled usage, products never charged."""
    from datetime import date

    from rich.table import Table

    from openbss.platform.runtime import Runtime
    from openbss.platform.tmf.resource import system_context

    try:
        first, after = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        console.print("[red]--from and --to are dates (YYYY-MM-DD)[/]")
        raise typer.Exit(2) from exc
    server = _use_embedded_if_needed(_settings())
    settings = get_settings()

    async def run() -> dict[str, Any]:
        rt = Runtime.build(settings)
        billing = _services(rt).billing.service
        try:
            async with rt.db.transaction(tenant) as session:
                return await billing.revenue_assurance(
                    system_context(tenant, session, settings.public_url, "billing"), first, after)
        finally:
            await rt.close()

    try:
        report = asyncio.run(run())
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    finally:
        del server
    table = Table(title=f"revenue assurance {report['from']} to {report['to']} ({report['accounts']} accounts)")
    for column in ("usage", "currency", "rated", "rated amount", "billed", "billed amount", "unbilled",
                   "unbilled amount"):
        table.add_column(column, justify="left" if column in ("usage", "currency") else "right")
    for r in report["usage"]:
        table.add_row(r["usageType"], r["currency"], str(r["ratedCount"]), str(r["ratedAmount"]),
                      str(r["billedCount"]), str(r["billedAmount"]), str(r["unbilledCount"]),
                      str(r["unbilledAmount"]))
    console.print(table)
    for lines in report["usageLinesBilled"]:
        console.print(f"usage lines billed: {lines['lines']}, {lines['amount']} {lines['currency']}")
    console.print(f"unbilled usage records: {report['unbilledUsageCount']}")
    for p in report["productsNeverCharged"]:
        console.print(f"[yellow]never charged[/] product {p['id']} ({p['name']}, {p['status']}) on account "
                      f"{p['billingAccount']['id']}", highlight=False)
    console.print(f"products never charged: {len(report['productsNeverCharged'])}")


def _print_run(status: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"bill run {status['id']} as of {status['asOf']} ({status['state']})")
    for column in ("accounts", "billed", "finalized", "skipped", "failed"):
        table.add_column(column, justify="right")
    table.add_row(*(str(status[k]) if k != "failed" else str(len(status["failed"]))
                    for k in ("accounts", "billed", "finalized", "skipped", "failed")))
    console.print(table)
    from decimal import Decimal

    from openbss.pricing.money import round_money

    for total in status["totals"]:
        console.print(f"total {total['unit']}: {round_money(Decimal(str(total['value'])), total['unit'])}")
    for failure in status["failed"]:
        console.print(f"[red]failed[/] {failure['billingAccount']}: {failure['reason']}", highlight=False)
collections_app = typer.Typer(help="Collections (dunning).", no_args_is_help=True)
app.add_typer(collections_app, name="collections")


@collections_app.command("run")
def collections_run(
    loop: Annotated[bool, typer.Option(help="Keep running on the worker's timer (until SIGTERM)")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate as of this date (YYYY-MM-DD)")] = None,
) -> None:
    """Run the dunning scheduler (the worker runs it too): every tenant evaluated, due steps claimed with SKIP
    LOCKED and taken once."""
    import os
    import socket
    from datetime import date

    from openbss.platform.observability import configure_logging
    from openbss.platform.runtime import Runtime

    server = _use_embedded_if_needed(_settings())
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    day = date.fromisoformat(as_of) if as_of else None

    async def run() -> None:
        rt = Runtime.build(settings)
        services = _services(rt)
        stop = asyncio.Event()
        if loop:
            _install_stop(stop)
        worker = f"cli:{socket.gethostname()}:{os.getpid()}"
        try:
            console.print("collections scheduler ready", style="dim")
            while True:
                report = await services.collections.service.run(day, worker=worker)
                if not loop:
                    console.print(report.as_dict())
                    return
                try:
                    await asyncio.wait_for(stop.wait(), settings.collections_loop_seconds)
                    return
                except TimeoutError:
                    pass
        finally:
            await rt.close()

    asyncio.run(run())
    del server


def _report_name(name: str, known: Any) -> None:
    """Refuse (exit 2) a report name that is not one of ``known``."""
    if name not in known:
        console.print(f"[red]no report {name!r}: {', '.join(known)}[/]")
        raise typer.Exit(2)


def _report_dates(*values: str | None, error: str) -> list[Any]:
    """The dates (YYYY-MM-DD) of a report's options, None where not given; ``error`` and exit 2 on a bad one."""
    from datetime import date

    try:
        return [date.fromisoformat(v) if v else None for v in values]
    except ValueError as exc:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from exc


def _print_report(rows: list[dict[str, Any]], out: Path | None, to_csv: Callable[[list[dict[str, Any]]], str],
                  title: str, *, empty: str, none: str = "") -> None:
    """A report's rows: a CSV file at ``out``, else a table on standard output (``empty``: the column of a report
    without rows; ``none``: what a missing value shows)."""
    from rich.table import Table

    if out is not None:
        out.write_text(to_csv(rows))
        console.print(f"{len(rows)} rows written to {out}")
        return
    table = Table(title=title)
    for column in rows[0] if rows else [empty]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(none if v is None else str(v) for v in row.values()))
    console.print(table)


@collections_app.command("report")
def collections_report(
    name: Annotated[str, typer.Argument(help="inCollection, recoveredByStep, cureRate, brokenPromises or "
                                             "suspensionsPerDay")],
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    start: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD; default 90 days ago)")] = None,
    out: Annotated[Path | None, typer.Option(help="Write CSV here (default: a table on standard output)")] = None,
) -> None:
    """A collections report of a tenant, as a table or a CSV file."""
    from datetime import date, timedelta

    from openbss.collections import reports
    from openbss.platform.runtime import Runtime

    _report_name(name, reports.REPORTS)
    [first] = _report_dates(start, error="--start is a date (YYYY-MM-DD)")
    first = first or date.today() - timedelta(days=90)
    _use_embedded_if_needed(_settings())
    settings = get_settings()

    async def run() -> list[dict[str, Any]]:
        rt = Runtime.build(settings)
        try:
            async with rt.db.transaction(tenant) as session:
                return await reports.report(session, name, first)
        finally:
            await rt.close()

    rows = asyncio.run(run())
    _print_report(rows, out, reports.to_csv, name, empty="(no rows)")


@finance_app.command("report")
def finance_report(
    name: Annotated[str, typer.Argument(help="trialBalance, arAging, cashReceipts, deferredRevenue, revenue, "
                                             "arAgingBySegment or gatewayReconciliation")],
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of the report (YYYY-MM-DD; default today)")]
    = None,
    start: Annotated[str | None, typer.Option(
        help="First day of a period report (cashReceipts, deferredRevenue, revenue)")] = None,
    out: Annotated[Path | None, typer.Option(help="Write CSV here (default: a table on standard output)")] = None,
) -> None:
    """A finance report of a tenant, as a table or a CSV file."""
    from datetime import date

    from openbss.payments import reports
    from openbss.platform.runtime import Runtime

    _report_name(name, reports.REPORTS)
    day, first = _report_dates(as_of, start, error="--as-of and --start are dates (YYYY-MM-DD)")
    day = day or date.today()
    _use_embedded_if_needed(_settings())
    settings = get_settings()

    async def run() -> list[dict[str, Any]]:
        rt = Runtime.build(settings)
        try:
            if name not in reports.SERVICE_REPORTS:
                async with rt.db.transaction(tenant) as session:
                    return await reports.report(session, name, day, first)
            from openbss.platform.tmf.resource import system_context
            from openbss.services import build_services

            payments = build_services(settings, rt).payments.service
            settlements = await payments.settlements(tenant, first or day.replace(day=1), day) \
                if name == "gatewayReconciliation" else []
            async with rt.db.transaction(tenant) as session:
                ctx = system_context(tenant, session, settings.public_url)

                async def segment_of(account_id: str) -> str:
                    return await payments.account_segment(ctx, account_id)

                return await reports.report(session, name, day, first, segment_of=segment_of,
                                            gateway=payments.gateway.name, settlements=settlements)
        finally:
            await rt.close()

    with console.status(f"computing {name}…"):
        rows = asyncio.run(run())
    _print_report(rows, out, reports.to_csv, f"{name} as of {day}", empty="(empty)", none="None")


assurance_app = typer.Typer(help="Service assurance: the alarm listeners.", no_args_is_help=True)
app.add_typer(assurance_app, name="assurance")


@assurance_app.command("listen")
def assurance_listen(
    processes: Annotated[int, typer.Option(help="Listener processes sharing the port (SO_REUSEPORT)")] = 1,
    protocol: Annotated[str, typer.Option(help="syslog (RFC 5424 over UDP) or snmp (traps)")] = "syslog",
    port: Annotated[int | None, typer.Option(help="UDP port (default: the settings')")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant of the alarms (default: the settings')")] = None,
    window: Annotated[float, typer.Option(help="Seconds over which repeats are folded before the database")] = 0.1,
) -> None:
    """Run alarm listeners only (without the worker): several processes on one UDP port, each with its own
    database connections and batches; SIGTERM/SIGINT stops them after applying what they received."""
    import signal
    import threading

    from openbss.assurance.shards import ListenerPool
    from openbss.services import run_listener_process

    if protocol not in ("syslog", "snmp"):
        console.print(f"--protocol is syslog or snmp, not '{protocol}'", style="red")
        raise typer.Exit(2)
    settings = _settings()
    _require_secrets(settings)
    chosen = port if port is not None else (
        settings.assurance_snmp_port if protocol == "snmp" else settings.assurance_syslog_port)
    default = 1162 if protocol == "snmp" else 5514
    pool = ListenerPool(run_listener_process, processes, {
        "protocol": protocol, "port": default if chosen is None else chosen, "tenant": tenant, "window": window})
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    pool.start()
    console.print(f"{processes} {protocol} listener process(es) on udp/{pool.port}", style="dim")
    while not stop.is_set() and pool.alive():
        stop.wait(1)
    for stats in pool.stop():
        console.print(f"listener {stats['index']}: received {stats['received']}, applied {stats['applied']}, "
                      f"failed {stats['failed']}, malformed {stats['malformed']}, ignored {stats['ignored']}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
