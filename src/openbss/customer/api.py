"""TMF629 Customer Management at /tmf-api/customerManagement/v4/: customer (kit endpoints, hub, events), plus

* ``GET .../customerSearch?name=&email=&phone=&identification=&accountId=&segment=&status=&offset=&limit=``:
  customers by name prefix (every word), e-mail, phone/MSISDN or identification number (of the customer or its
  party), account id; criteria combine with AND; paged (``X-Total-Count``), in a stable id order.
* ``GET .../customer360/{id}``: the customer, its party and every section other domains register
  (``platform.personal_data.register_customer_view``: accounts, products, balances, bills, payments, tickets).
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.


from fastapi import APIRouter, Depends, Query, Request, Response

from openbss.customer.codecs import customer_codec, customer_search
from openbss.customer.models import Customer
from openbss.customer.schemas import SPEC_FILE
from openbss.customer.service import CustomerRules, CustomerService
from openbss.party.service import get_party_service
from openbss.platform import personal_data
from openbss.platform.auth import READ, Principal
from openbss.platform.errors import Forbidden
from openbss.platform.runtime import authenticate
from openbss.platform.tmf.resource import (
    ResourceService,
    TmfApi,
    TmfJSONResponse,
    TmfResource,
    build_router,
    unit_of_work,
)

customer_api = TmfApi(
    name="customerManagement",
    title="TMF629 Customer Management",
    spec_file=SPEC_FILE,
    permission="customer",
    resources=[
        TmfResource(path="customer", type="Customer", table=Customer, hooks=CustomerRules(get_party_service()),
                    state_field="status", initial_state="initialized", owner_paths=("engagedParty.id",),
                    codec=customer_codec, searchable=customer_search,
                    customer_operations=frozenset({"list", "get"}),
                    update_definition="OpenBSSCustomer_Update"),
    ],
)

_holder: dict[str, CustomerService] = {}


def _extra(router: APIRouter, services: dict[str, ResourceService]) -> None:
    service = CustomerService(services["customer"], get_party_service())
    _holder["service"] = service

    @router.get("/customerSearch", summary="Search customers by name prefix, e-mail, phone, identification, account",
                response_class=TmfJSONResponse)
    async def search(request: Request, name: str | None = Query(None, max_length=200),
                     email: str | None = Query(None, max_length=320), phone: str | None = Query(None, max_length=40),
                     identification: str | None = Query(None, max_length=100),
                     accountId: str | None = Query(None, max_length=64),
                     segment: str | None = Query(None, max_length=100), status: str | None = Query(None),
                     offset: int = Query(0, ge=0), limit: int = Query(20, ge=1, le=1000),
                     principal: Principal = Depends(authenticate)) -> Response:
        principal.require("customer", READ)
        params = {k: v for k, v in {"name": name, "email": email, "phone": phone, "identification": identification,
                                    "accountId": accountId, "segment": segment, "status": status}.items() if v}
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


router, services = build_router(customer_api, extra=_extra)
customer_service: CustomerService = _holder["service"]

personal_data.register_exporter("customers", customer_service.export_customers)
personal_data.register_eraser("customers", customer_service.erase_customers, order=500)


