"""The router of one TMF API: the endpoints of every declared resource over the services the composition root
built for them (``resource_services``), the domain's extra routes, and the API's notification hub."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter

from openbss.platform.tmf.hub import add_hub_routes
from openbss.platform.tmf.resource import ResourceService, TmfApi, add_resource_routes

ExtraRoutes = Callable[[APIRouter], None]


def api_router(api: TmfApi, services: Mapping[str, ResourceService], extra: ExtraRoutes | None = None) -> APIRouter:
    """Mount ``services`` (one per resource of ``api``, by path) at the API's base path. ``extra(router)`` adds the
    domain's own routes under the same prefix (before the hub's)."""
    missing = [r.path for r in api.resources if r.path not in services]
    assert not missing, f"{api.name}: no service for {missing}"
    router = APIRouter(prefix=api.base_path or "", tags=[api.title])
    for resource in api.resources:
        add_resource_routes(router, api, services[resource.path])
    if extra is not None:
        extra(router)
    add_hub_routes(router, api)
    return router


__all__ = ["ExtraRoutes", "api_router"]
