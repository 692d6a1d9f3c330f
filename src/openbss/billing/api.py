"""HTTP APIs of billing.

* TMF678 Customer Bill Management at ``/tmf-api/customerBillManagement/v4/``: customerBill (list, get, PATCH of
  the state: ``validated`` finalizes a draft), appliedCustomerBillingRate (the lines: list, get),
  customerBillOnDemand (create: the account's next bill computed as a run would, nothing written; list, get), hub.
* ``/billing/v1`` (what TMF678 lacks): ``POST /billRun`` (bill every account, or some, as of a date; with
  ``partitionSize``: a job of partitions the workers claim, 202, progress at ``GET /billRun/{id}``),
  ``GET /customerBill/{id}/document.pdf`` (the PDF of an issued bill, kept write-once), ``POST /creditNote`` (a
  numbered credit note correcting an issued bill), ``GET|PATCH /settings`` (the tenant's proration conventions,
  numbering, grace period, taxes), ``GET /revenueAssurance`` (a period's rated usage against billed usage,
  unbilled usage, products never charged), ``GET|POST /productChange`` (product changes with their effective
  dates, which billing prorates), ``POST /charge`` (a manual one-off charge or adjustment with a reason code, on
  the next bill; idempotent per ``reference``), ``GET|POST /taxRate`` (the built-in tax engine's rates),
  ``GET /schema/{type}.json`` (the JSON schemas of the extension types the bills use), ``GET|POST|DELETE
  /testClock`` and ``POST /testClock/advance`` (a sandbox tenant's test clock). Permission ``billing``.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from datetime import date
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from openbss.billing import clock
from openbss.billing.errors import InvalidBilling
from openbss.billing.runs import run_status, start_run
from openbss.billing.service import BillingService, bill_pdf
from openbss.billing.wiring import BillingServices
from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.errors import NotFound
from openbss.platform.runtime import authenticate
from openbss.platform.storage import ObjectStore
from openbss.platform.tmf.resource import TmfJSONResponse, base_url, unit_of_work
from openbss.platform.tmf.router import api_router
from openbss.pricing.money import to_decimal

MONEY = {"$ref": "#/definitions/Money"}
SCHEMAS: dict[str, dict[str, Any]] = {
    "OpenBSSCustomerBill": {
        "$schema": "http://json-schema.org/draft-07/schema#", "title": "OpenBSSCustomerBill",
        "description": "A TMF678 CustomerBill with the balance it was issued against",
        "allOf": [{"$ref": "TMF678-CustomerBill-v4.0.0.swagger.json#/definitions/CustomerBill"}],
        "properties": {
            "previousBalance": {**MONEY, "description": "The account's balance before this bill (negative: a "
                                                        "credit)"},
            "creditApplied": {**MONEY, "description": "The part of a credit balance used by this bill"},
            "correctedBill": {"type": "object", "description": "A credit note's bill (id, href, billNo)"},
            "reason": {"type": "string", "description": "Why a credit note was issued"},
        },
    },
    "OpenBSSCustomerBillOnDemand": {
        "$schema": "http://json-schema.org/draft-07/schema#", "title": "OpenBSSCustomerBillOnDemand",
        "description": "A TMF678 CustomerBillOnDemand answered with the bill it would make (nothing written)",
        "allOf": [{"$ref": "TMF678-CustomerBill-v4.0.0.swagger.json#/definitions/CustomerBillOnDemand"}],
        "properties": {"billPreview": {"description": "The OpenBSSCustomerBill the account would get now, with "
                                                      "its lines (appliedCustomerBillingRate)"}},
    },
}


def _as_of(value: Any) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidBilling(f"'asOf': '{value}' is not a date (YYYY-MM-DD)") from exc


def billing_router(billing: BillingService, documents: ObjectStore) -> APIRouter:
    router = APIRouter(prefix="/billing/v1", tags=["Billing"])

    async def bill_run(request: Request, body: dict[str, Any] = Body(...),
                       principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", WRITE)
        known = {"asOf", "finalize", "billingAccount", "partitionSize"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise InvalidBilling(f"unknown attributes {unknown} (known: {', '.join(sorted(known))})")
        finalize = body.get("finalize")
        if finalize is not None and not isinstance(finalize, bool):
            raise InvalidBilling("'finalize' must be true or false")
        accounts = body.get("billingAccount")
        ids = None
        if accounts is not None:
            if not isinstance(accounts, list) or not all(isinstance(a, dict) and isinstance(a.get("id"), str)
                                                         for a in accounts):
                raise InvalidBilling("'billingAccount' must be a list of references ({\"id\": ...})")
            ids = [a["id"] for a in accounts]
        as_of = _as_of(body.get("asOf"))
        size = body.get("partitionSize")
        if size is not None:
            if ids is not None:
                raise InvalidBilling("a partitioned run bills every account: 'billingAccount' is not allowed")
            if not isinstance(size, int) or isinstance(size, bool):
                raise InvalidBilling("'partitionSize' must be a whole number of accounts")
            async with unit_of_work(request, principal) as ctx:
                job = await start_run(ctx, billing, as_of or (await billing.now(ctx)).date(), finalize=finalize,
                                      size=size)
            return TmfJSONResponse(job, status_code=202,
                                   headers={"Location": f"{base_url(request)}/billing/v1/billRun/{job['id']}"})
        async with unit_of_work(request, principal) as ctx:
            report = await billing.run(ctx, as_of, finalize=finalize, account_ids=ids)
        return TmfJSONResponse(report.as_dict(), status_code=201)

    async def get_run(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await run_status(ctx, id))

    async def get_settings(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(billing.render_settings(await billing.tenant_settings(ctx)))

    async def patch_settings(request: Request, body: dict[str, Any] = Body(...),
                             principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", WRITE)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await billing.set_tenant_settings(ctx, body))

    async def credit_note(request: Request, body: dict[str, Any] = Body(...),
                          principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", WRITE)
        unknown = sorted(set(body) - {"bill", "amount", "reason"})
        if unknown:
            raise InvalidBilling(f"unknown attributes {unknown} (known: amount, bill, reason)")
        bill = body.get("bill")
        if not isinstance(bill, dict) or not isinstance(bill.get("id"), str):
            raise InvalidBilling("'bill.id' is mandatory: the issued bill the credit note corrects")
        if not isinstance(body.get("reason"), str):
            raise InvalidBilling("'reason' is mandatory")
        amount = None
        if body.get("amount") is not None:
            try:
                amount = to_decimal(body["amount"])
            except ValueError as exc:
                raise InvalidBilling(f"'amount': {exc}") from exc
        async with unit_of_work(request, principal) as ctx:
            note = await billing.credit_note(ctx, bill["id"], amount=amount, reason=body["reason"])
        return TmfJSONResponse(note, status_code=201, headers={"Location": note["href"]})

    async def charge(request: Request, body: dict[str, Any] = Body(...),
                     principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", WRITE)
        known = {"billingAccount", "amount", "reasonCode", "description", "reference"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise InvalidBilling(f"unknown attributes {unknown} (known: {', '.join(sorted(known))})")
        account, money = body.get("billingAccount"), body.get("amount")
        if not isinstance(account, dict) or not isinstance(account.get("id"), str):
            raise InvalidBilling("'billingAccount.id' is mandatory: the account charged")
        if not isinstance(money, dict):
            raise InvalidBilling("'amount' is mandatory: {\"unit\": <currency>, \"value\": <amount>}")
        try:
            amount = to_decimal(money.get("value"))
        except ValueError as exc:
            raise InvalidBilling(f"'amount.value': {exc}") from exc
        for name in ("reasonCode", "description", "reference"):
            if not isinstance(body.get(name), str):
                raise InvalidBilling(f"'{name}' is mandatory (a string)")
        async with unit_of_work(request, principal) as ctx:
            out = await billing.add_charge(ctx, billing_account_id=account["id"], amount=amount,
                                           currency=str(money.get("unit")), reason_code=body["reasonCode"],
                                           description=body["description"], reference=body["reference"])
        return TmfJSONResponse(out, status_code=201)

    async def bill_document(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", READ)
        async with unit_of_work(request, principal) as ctx:
            data, stored = await bill_pdf(ctx, billing.bills, documents, id, billing.accounts, billing.usage)
        headers = {"Content-Disposition": f'inline; filename="{id}.pdf"'}
        if stored.sha256:
            headers["ETag"] = f'"{stored.sha256}"'
        return Response(data, media_type="application/pdf", headers=headers)

    async def list_tax_rates(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await billing.tax_rates(ctx))

    async def add_tax_rate(request: Request, body: dict[str, Any] = Body(...),
                           principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", WRITE)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await billing.add_tax_rate(ctx, body), status_code=201)

    async def record_change(request: Request, body: dict[str, Any] = Body(...),
                            principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", WRITE)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await billing.record_change(ctx, body), status_code=201)

    async def list_changes(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await billing.list_changes(ctx, request.query_params.get("product.id")))

    async def revenue_assurance(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", READ)
        q = request.query_params
        try:
            start, end = date.fromisoformat(q.get("from", "")), date.fromisoformat(q.get("to", ""))
        except ValueError as exc:
            raise InvalidBilling("'from' and 'to' are dates (YYYY-MM-DD): the period [from, to)") from exc
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await billing.revenue_assurance(ctx, start, end))

    async def get_clock(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await clock.get(ctx))

    def frozen_time(body: dict[str, Any]) -> Any:
        unknown = sorted(set(body) - {"frozenTime"})
        if unknown:
            raise InvalidBilling(f"unknown attributes {unknown} (known: frozenTime)")
        return clock.parse_time(body.get("frozenTime"))

    async def create_clock(request: Request, body: dict[str, Any] = Body(...),
                           principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", WRITE)
        frozen = frozen_time(body)
        async with unit_of_work(request, principal) as ctx:
            out = await clock.create(ctx, frozen)
        return TmfJSONResponse(out, status_code=201,
                               headers={"Location": f"{base_url(request)}/billing/v1/testClock"})

    async def advance_clock(request: Request, body: dict[str, Any] = Body(...),
                            principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", WRITE)
        frozen = frozen_time(body)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await clock.advance(ctx, billing, frozen))

    async def delete_clock(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("billing", WRITE)
        async with unit_of_work(request, principal) as ctx:
            await clock.remove(ctx)
        return Response(status_code=204)

    async def schema(name: str) -> Response:
        found = SCHEMAS.get(name.removesuffix(".json"))
        if found is None:
            raise NotFound(f"no schema '{name}'")
        return TmfJSONResponse(found)

    router.add_api_route("/billRun", bill_run, methods=["POST"], status_code=201, summary="Run billing")
    router.add_api_route("/billRun/{id}", get_run, methods=["GET"], summary="A partitioned bill run's progress")
    router.add_api_route("/settings", get_settings, methods=["GET"], summary="The tenant's billing settings")
    router.add_api_route("/settings", patch_settings, methods=["PATCH"], summary="Change billing settings")
    router.add_api_route("/customerBill/{id}/document.pdf", bill_document, methods=["GET"],
                         summary="The PDF of an issued bill or credit note (the bill's billDocument)")
    router.add_api_route("/creditNote", credit_note, methods=["POST"], status_code=201,
                         summary="Issue a credit note correcting an issued bill")
    router.add_api_route("/charge", charge, methods=["POST"], status_code=201,
                         summary="A manual one-off charge or adjustment (negative) on the account's next bill")
    router.add_api_route("/taxRate", list_tax_rates, methods=["GET"], summary="The built-in tax engine's rates")
    router.add_api_route("/taxRate", add_tax_rate, methods=["POST"], status_code=201, summary="Add a tax rate")
    router.add_api_route("/productChange", record_change, methods=["POST"], status_code=201,
                         summary="Record an upgrade, downgrade, cancellation, suspension, resumption or transfer "
                                 "of a product, effective immediately, at the end of its term or on a date")
    router.add_api_route("/productChange", list_changes, methods=["GET"],
                         summary="The product changes billing prorates (filter: product.id)")
    router.add_api_route("/revenueAssurance", revenue_assurance, methods=["GET"],
                         summary="Rated usage against billed usage, unbilled usage and products never charged, "
                                 "for a period ?from=YYYY-MM-DD&to=YYYY-MM-DD")
    router.add_api_route("/testClock", get_clock, methods=["GET"], summary="The sandbox tenant's test clock")
    router.add_api_route("/testClock", create_clock, methods=["POST"], status_code=201,
                         summary="Freeze billing's time of a sandbox tenant (production tenants refuse it)")
    router.add_api_route("/testClock/advance", advance_clock, methods=["POST"],
                         summary="Move the test clock forward, billing every cycle date passed, once")
    router.add_api_route("/testClock", delete_clock, methods=["DELETE"], status_code=204,
                         summary="Delete the test clock: billing's time is real time again")
    router.add_api_route("/schema/{name}", schema, methods=["GET"], summary="Extension schemas of billing")
    return router


def routers(svc: BillingServices) -> list[tuple[str, APIRouter]]:
    return [(svc.api.title, api_router(svc.api, svc.resources)),
            ("Billing", billing_router(svc.service, svc.documents))]
