"""ASGI app factory: mounts each domain's routers on the platform."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from openbss import __version__
from openbss.account import api as account_api
from openbss.assurance import api as assurance_api
from openbss.billing import api as billing_api
from openbss.care import api as care_api
from openbss.care.agent_api import CONSOLE_STATIC, ConsoleSecurityHeaders
from openbss.catalog import api as catalog_api
from openbss.charging import api as charging_api
from openbss.collections import api as collections_api
from openbss.customer import api as customer_api
from openbss.inventory import api as inventory_api
from openbss.ordering import api as ordering_api
from openbss.party import api as party_api
from openbss.payments import api as payments_api
from openbss.platform.audit import audit_router
from openbss.platform.dispatch import install_dispatcher
from openbss.platform.http import PlatformMiddleware, ops_router
from openbss.platform.messaging import messaging_router
from openbss.platform.personal_data import privacy_router
from openbss.platform.runtime import Runtime
from openbss.platform.startup import check_secrets
from openbss.platform.tmf.errors import install_error_handlers
from openbss.platform.tmf.extensions import schema_router
from openbss.provisioning import api as provisioning_api
from openbss.rating import api as rating_api
from openbss.selfcare.api import STATIC as SELFCARE_STATIC
from openbss.selfcare.api import TAG as SELFCARE_TAG
from openbss.selfcare.api import router as selfcare_router
from openbss.selfcare.portal import close_portal
from openbss.selfcare.security import PortalSecurityHeaders
from openbss.services import Services, build_services
from openbss.settings import Settings, get_settings


def domain_routers(services: Services) -> list[tuple[str, APIRouter]]:
    """Every domain's API routers over the process's services, in documentation order."""
    return [*party_api.routers(services.party), *customer_api.routers(services.customer),
            *account_api.routers(services.account), *catalog_api.routers(services.catalog),
            *charging_api.routers(services.charging), *rating_api.routers(services.rating),
            *ordering_api.routers(services.ordering),
            *provisioning_api.routers(services.provisioning), *inventory_api.routers(services.inventory),
            *care_api.routers(services.care),
            *billing_api.routers(services.billing),
            *payments_api.routers(services.payments),
            *assurance_api.routers(services.assurance),
            *collections_api.routers(services.collections),
            ("Privacy (GDPR)", privacy_router(services.personal_data))]


def mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs with its JavaScript and CSS served by OpenBSS itself."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="OpenBSS API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js", swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)


def create_app(settings: Settings | None = None, services: Services | None = None,
               runtime: Runtime | None = None) -> FastAPI:
    """The HTTP app over ``services`` (built here from ``settings`` and ``runtime`` when not given: once per
    process). A runtime built here is closed with the app."""
    settings = settings or (services.settings if services is not None else get_settings())
    check_secrets(settings)  # outside demo mode: no built-in secret, no generated key (platform/startup.py)
    rt = runtime or Runtime.build(settings)
    services = services or build_services(settings, rt)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await close_portal(app)
            if runtime is None:
                await rt.close()

    routers = domain_routers(services)
    app = FastAPI(
        title="OpenBSS",
        version=__version__,
        description="Open-source BSS/OSS for telecom operators, behind the TM Forum Open APIs. "
                    "Authenticate with `Authorization: Bearer <token>` (`openbss token` prints one).",
        lifespan=lifespan,
        docs_url=None,  # served below from bundled assets: no CDN on an operator's closed network
        redoc_url=None,
        openapi_tags=[{"name": title} for title, _ in routers]
        + [{"name": t} for t in (SELFCARE_TAG, "Messaging (simulator)", "Audit trail", "Operations")],
    )
    app.state.runtime = rt
    app.state.services = services
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(PlatformMiddleware, max_bytes=settings.max_body_bytes, response_headers=[PortalSecurityHeaders(
        https=(settings.selfcare_public_url or settings.public_url).startswith("https://")), ConsoleSecurityHeaders()])
    app.include_router(ops_router)
    # requests are matched by path prefix (platform/dispatch.py): the order of routers matters only between overlaps
    app.include_router(selfcare_router)
    app.mount("/selfcare/assets", StaticFiles(directory=SELFCARE_STATIC), name="selfcare-assets")
    app.mount("/console/assets", StaticFiles(directory=CONSOLE_STATIC), name="console-assets")
    for _, router in routers:
        app.include_router(router)
    app.include_router(schema_router(ext for api in services.apis for ext in api.extensions))
    app.include_router(audit_router)
    app.include_router(messaging_router)
    mount_docs(app)
    install_dispatcher(app)  # requests matched by path prefix, not by trying every route (platform/dispatch.py)
    return app
