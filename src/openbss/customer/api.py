"""TMF629 Customer Management at /tmf-api/customerManagement/v4/: customer (kit endpoints, hub, events), plus

* ``GET .../customerSearch?name=&email=&phone=&identification=&accountId=&segment=&status=&offset=&limit=``:
  customers by name prefix (every word), e-mail, phone/MSISDN or identification number (of the customer or its
  party), account id; criteria combine with AND; paged (``X-Total-Count``), in a stable id order.
* ``GET .../customer360/{id}``: the customer, its party and every section other domains add to the personal-data
  registry (accounts, products, balances, bills, payments, tickets).
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from collections.abc import Callable

from fastapi import APIRouter, Depends, Query, Request, Response

from openbss.customer.service import CustomerService
from openbss.customer.wiring import CustomerServices
from openbss.platform.auth import READ, Principal
from openbss.platform.db import MAX_OFFSET
from openbss.platform.errors import Forbidden
from openbss.platform.runtime import authenticate
from openbss.platform.tmf.resource import TmfJSONResponse, unit_of_work
from openbss.platform.tmf.router import api_router


def _search_and_360(service: CustomerService) -> Callable[[APIRouter], None]:
    def add(router: APIRouter) -> None:
        @router.get("/customerSearch",
                    summary="Search customers by name prefix, e-mail, phone, identification, account",
                    response_class=TmfJSONResponse)
        async def search(request: Request, name: str | None = Query(None, max_length=200),
                         email: str | None = Query(None, max_length=320),
                         phone: str | None = Query(None, max_length=40),
                         identification: str | None = Query(None, max_length=100),
                         accountId: str | None = Query(None, max_length=64),
                         segment: str | None = Query(None, max_length=100), status: str | None = Query(None),
                         offset: int = Query(0, ge=0, le=MAX_OFFSET), limit: int = Query(20, ge=1, le=1000),
                         principal: Principal = Depends(authenticate)) -> Response:
            principal.require("customer", READ)
            params = {k: v for k, v in {"name": name, "email": email, "phone": phone,
                                        "identification": identification, "accountId": accountId,
                                        "segment": segment, "status": status}.items() if v}
            async with unit_of_work(request, principal) as ctx:
                items, total = await service.search(ctx, params, offset, limit)
            return TmfJSONResponse(items, headers={"X-Total-Count": str(total), "X-Result-Count": str(len(items))})

        @router.get("/customer360/{id}", summary="A customer with its party, accounts, products, balances, bills...",
                    response_class=TmfJSONResponse)
        async def view_360(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
            principal.require("customer", READ)
            if principal.is_customer and not principal.can("account", READ):
                raise Forbidden("the customer 360 view needs account:read", code="FORBIDDEN")
            async with unit_of_work(request, principal) as ctx:
                out = await service.view_360(ctx, id)
            return TmfJSONResponse(out)

    return add


def routers(svc: CustomerServices) -> list[tuple[str, APIRouter]]:
    return [(svc.api.title, api_router(svc.api, svc.resources, extra=_search_and_360(svc.service)))]
