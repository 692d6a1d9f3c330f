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
console = Console()

REPO_ROOT = Path(__file__).resolve().parents[2]


def _settings() -> Settings:
    return get_settings()


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
def tenant_create(name: str, tenant_id: Annotated[str | None, typer.Option("--id")] = None) -> None:
    """Create a tenant."""
    server = _use_embedded_if_needed(_settings())

    async def run() -> str:
        from openbss.platform.db import Database
        from openbss.platform.tenancy import create_tenant

        db = Database.from_settings(get_settings())
        try:
            async with db.transaction(None) as session:
                t = await create_tenant(session, name, tenant_id)
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
    server = _use_embedded_if_needed(settings)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        "openbss.app:create_app", factory=True, host=host or settings.host, port=port or settings.port,
        workers=workers, ssl_certfile=certfile, ssl_keyfile=keyfile, log_config=None, access_log=False,
    )
    del server


@app.command()
def worker() -> None:
    """Run the outbox relay, event consumers and background jobs."""
    from openbss.platform.observability import configure_logging

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


@events_app.command("replay")
def events_replay(
    from_seq: Annotated[int, typer.Option("--from-seq", help="First stream sequence to replay")],
    to_seq: Annotated[int | None, typer.Option("--to-seq", help="Last stream sequence (default: the end)")] = None,
    consumer: Annotated[str | None, typer.Option(help="Only this consumer (default: all)")] = None,
    force: Annotated[bool, typer.Option(help="Run handlers even for events they already processed")] = False,
) -> None:
    """Replay events from a JetStream position through the consumers (idempotently unless --force)."""
    settings = _settings()
    if not settings.nats_url:
        raise typer.BadParameter("replay needs OPENBSS_NATS_URL (the in-process bus keeps no stream)")

    async def run() -> tuple[int, int]:
        from openbss.platform.events.bus import NatsBus
        from openbss.platform.events.consumers import Event, process
        from openbss.platform.runtime import Runtime

        rt = Runtime.build(settings)
        register_domain_consumers(rt)
        targets = [rt.consumers.get(consumer)] if consumer else rt.consumers.all()
        bus = rt.make_bus()
        assert isinstance(bus, NatsBus)
        handled = 0

        async def handle(event: Event, seq: int) -> None:
            nonlocal handled
            for c in targets:
                if await process(rt.db, c, event, force=force):
                    handled += 1

        try:
            seen = await bus.replay(from_seq, handle, to_seq)
        finally:
            await rt.close()
        return seen, handled

    seen, handled = asyncio.run(run())
    console.print(f"replayed {seen} events; {handled} handler runs (others had already processed them)")


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
) -> None:
    """Everything in one process: embedded PostgreSQL, migrations, demo data, API and worker."""
    from openbss.demo.run import run_demo

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
