"""HTTP APIs of payments.

* TMF670 at ``/tmf-api/paymentMethod/v4/``: paymentMethod (create by subtype — tokenizedCard, directDebit,
  bankAccountTransfer, cash, voucher, digitalWallet —, list, get, PATCH), hub.
* TMF676 at ``/tmf-api/paymentManagement/v4/``: payment and refund (create with an optional ``Idempotency-Key``
  header, list, get), hub.
* ``/payments/v1`` (what TMF676 lacks): ``GET /payment/{id}/transition`` (the recorded state transitions),
  ``GET /bill/{id}`` (what was paid of a bill), ``GET /trialBalance`` (the ledger), ``POST /webhook/{gateway}``
  (the gateway's signed reports; no bearer token: the signature authenticates), ``POST /sepaBatch`` (a pain.008
  file), ``POST /statement`` (a camt.053 or MT940 file), ``GET /statementException``, ``GET /report/{name}``
  (trialBalance, arAging, cashReceipts, deferredRevenue, revenue; ``?format=csv``), ``GET /chart/arAging.svg``,
  ``GET|POST /ledgerPeriod`` (closed periods, close one), ``GET /ledgerReplay`` (the journal rebuilt from its
  sources, the differences), ``POST /writeOff``, ``GET /writeOff/{reference}``, ``GET /schema/{type}.json``.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at runtime.

from datetime import date
from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response

from openbss.payments import bank, ledger, replay, reports
from openbss.payments.errors import InvalidPayment
from openbss.payments.gateway import GatewayTimeout
from openbss.payments.service import PaymentService
from openbss.payments.wiring import PaymentServices
from openbss.platform.auth import READ, WRITE, Principal
from openbss.platform.errors import DomainError, NotFound
from openbss.platform.runtime import authenticate, permitted
from openbss.platform.tmf.resource import TmfJSONResponse, base_url, json_content, unit_of_work
from openbss.platform.tmf.router import api_router
from openbss.pricing.money import to_decimal

SCHEMAS: dict[str, dict[str, Any]] = {
    "OpenBSSPayment": {
        "$schema": "http://json-schema.org/draft-07/schema#", "title": "OpenBSSPayment",
        "description": "A TMF676 Payment with why it is in its state and what it settled",
        "allOf": [{"$ref": "TMF676-Payment-v4.0.0.swagger.json#/definitions/Payment"}],
        "properties": {
            "statusReason": {"type": "string", "description": "Why the payment failed or is unknown (the "
                                                              "gateway's decline code, a timeout)"},
            "allocation": {"type": "array", "description": "The bills this payment settled and how much of each",
                           "items": {"type": "object", "properties": {
                               "bill": {"$ref": "TMF676-Payment-v4.0.0.swagger.json#/definitions/EntityRef"},
                               "amount": {"type": "number"}}}},
            "prepaidTopUp": {"type": "object", "description": "The prepaid line this payment tops up: its charging "
                                                             "account's balance is credited once when the payment "
                                                             "succeeds (no bills are paid)",
                             "properties": {"id": {"type": "string"}, "@referredType": {"type": "string"}},
                             "required": ["id"]},
            "dispute": {"type": "array", "description": "Chargebacks of this payment as the gateway reported them: "
                                                        "open (the amount taken back from what it settled), won "
                                                        "(given back) or lost",
                        "items": {"type": "object", "properties": {
                            "id": {"type": "string", "description": "The gateway's dispute id"},
                            "amount": {"$ref": "TMF676-Payment-v4.0.0.swagger.json#/definitions/Money"},
                            "fee": {"$ref": "TMF676-Payment-v4.0.0.swagger.json#/definitions/Money"},
                            "status": {"type": "string", "enum": ["open", "won", "lost"]},
                            "reason": {"type": "string"},
                            "bill": {"type": "array", "items": {
                                "$ref": "TMF676-Payment-v4.0.0.swagger.json#/definitions/EntityRef"}}}}},
        },
    },
    "OpenBSSRefund": {
        "$schema": "http://json-schema.org/draft-07/schema#", "title": "OpenBSSRefund",
        "description": "A TMF676 Refund paying out what a credit note left as account credit",
        "allOf": [{"$ref": "TMF676-Payment-v4.0.0.swagger.json#/definitions/Refund"}],
        "properties": {
            "creditNote": {"type": "object", "description": "The credit note (a TMF678 CustomerBill of category "
                                                           "creditNote) whose unused credit this refund pays out",
                           "properties": {"id": {"type": "string"}, "href": {"type": "string"},
                                          "@referredType": {"type": "string"}},
                           "required": ["id"]},
        },
    },
}


#: attributes of the OpenBSSPayment extension a create may carry
CREATE_EXTENSION = frozenset({"prepaidTopUp"})


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidPayment("the request body must be a JSON object")
    return body


def _created(outcome: Any) -> Response:
    headers = {"Location": outcome.resource["href"]}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return TmfJSONResponse(outcome.resource, status_code=201, headers=headers)


def payment_routes(svc: PaymentServices) -> Any:
    payments: PaymentService = svc.service

    def extra(router: APIRouter) -> None:
        async def create_payment(request: Request, body: Any = Body(...),
                                 idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
                                 principal: Principal = Depends(authenticate),
                                 _ct: None = Depends(json_content)) -> Response:
            principal.require("payments", WRITE)
            payload = _body(body)
            # the OpenBSSPayment extension's attribute a create may carry (checked by the service)
            payments.payments.validate_create({k: v for k, v in payload.items() if k not in CREATE_EXTENSION})
            return _created(await payments.pay(principal, payload, idempotency_key, base_url=base_url(request)))

        async def create_refund(request: Request, body: Any = Body(...),
                                idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
                                principal: Principal = Depends(authenticate),
                                _ct: None = Depends(json_content)) -> Response:
            principal.require("payments", WRITE)
            payload = _body(body)
            # the OpenBSSRefund extension's attribute a create may carry (checked by the service)
            payments.refunds.validate_create({k: v for k, v in payload.items() if k != "creditNote"})
            return _created(await payments.refund(principal, payload, idempotency_key, base_url=base_url(request)))

        router.add_api_route("/payment", create_payment, methods=["POST"], status_code=201, name="createPayment",
                             summary="Creates a Payment (Idempotency-Key honoured)")
        router.add_api_route("/refund", create_refund, methods=["POST"], status_code=201, name="createRefund",
                             summary="Creates a Refund (Idempotency-Key honoured)")

    return extra


def method_routes(svc: PaymentServices) -> Any:
    service = svc.methods["paymentMethod"]

    def extra(router: APIRouter) -> None:
        async def create_method(request: Request, body: Any = Body(...),
                                principal: Principal = Depends(authenticate),
                                _ct: None = Depends(json_content)) -> Response:
            principal.require("payments", WRITE)
            async with unit_of_work(request, principal) as ctx:
                out = await service.create(ctx, _body(body))
            return TmfJSONResponse(out, status_code=201, headers={"Location": out["href"]})

        router.add_api_route("/paymentMethod", create_method, methods=["POST"], status_code=201,
                             name="createPaymentMethod", summary="Creates a PaymentMethod (by @type)")

    return extra


async def service_report(payments: PaymentService, principal: Principal, request: Request, name: str, as_of: date,
                         first: date | None) -> list[dict[str, Any]]:
    """A report's rows; the gateway's settlements asked first, outside the transaction."""
    settlements = []
    if name == "gatewayReconciliation":
        try:
            settlements = await payments.settlements(principal.tenant_id, first or as_of.replace(day=1), as_of)
        except GatewayTimeout as exc:
            raise DomainError(f"the gateway did not answer about its settlements: {exc}", code="GATEWAY_TIMEOUT",
                              status=504) from exc
    async with unit_of_work(request, principal) as ctx:
        async def segment_of(account_id: str) -> str:
            return await payments.account_segment(ctx, account_id)

        return await reports.report(ctx.session, name, as_of, first, segment_of=segment_of,
                                    gateway=payments.gateway.name, settlements=settlements)


def payments_router(svc: PaymentServices) -> APIRouter:
    router = APIRouter(prefix="/payments/v1", tags=["Payments"])
    payments = svc.service

    async def transitions(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("payments", READ)
        async with unit_of_work(request, principal) as ctx:
            await payments.payments.get(ctx, id)
            return TmfJSONResponse(await payments.transitions(ctx, id))

    async def bill(request: Request, id: str, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("payments", READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await payments.bill_position(ctx, id))

    async def trial_balance(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("payments", READ)
        async with unit_of_work(request, principal) as ctx:
            rows = await ledger.trial_balance(ctx.session)
        return TmfJSONResponse({"accounts": rows, "totals": [{"unit": k, "value": v}
                                                             for k, v in sorted(ledger.totals(rows).items())]})

    async def webhook(request: Request, gateway: str) -> Response:
        if gateway != payments.gateway.name:
            raise NotFound(f"no gateway '{gateway}'")
        signature = request.headers.get("Stripe-Signature") or request.headers.get("X-Gateway-Signature")
        changed = await payments.handle_webhook(await request.body(), signature)
        return TmfJSONResponse({"received": True, "changed": changed})

    async def sepa_batch(request: Request, body: dict[str, Any] = Body(...),
                         principal: Principal = Depends(authenticate)) -> Response:
        principal.require("payments", WRITE)
        try:
            when = date.fromisoformat(str(body.get("collectionDate")))
        except ValueError as exc:
            raise InvalidPayment("'collectionDate' must be a date (YYYY-MM-DD)") from exc
        creditor = bank.sepa_creditor(svc.settings)
        async with unit_of_work(request, principal) as ctx:
            xml, made = await bank.direct_debit_batch(payments, ctx, creditor, when)
        if not made:
            return Response(status_code=204)
        return Response(xml, status_code=201, media_type="application/xml",
                        headers={"X-Payment-Count": str(len(made))})

    async def statement(request: Request, source: str = Query(..., min_length=1, max_length=200),
                        principal: Principal = Depends(permitted("payments", WRITE))) -> Response:
        xml = await request.body()
        if not xml:
            raise InvalidPayment("the body must be the bank statement: camt.053 (XML) or MT940")
        async with unit_of_work(request, principal) as ctx:
            report = await bank.import_statement(payments, ctx, xml, source)
        return TmfJSONResponse(report, status_code=201)

    async def statement_exceptions(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("payments", READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await bank.exceptions(ctx))

    async def finance_report(request: Request, name: str, asOf: str | None = None, start: str | None = None,
                             format: str = Query("json", pattern="^(json|csv)$"),
                             principal: Principal = Depends(authenticate)) -> Response:
        principal.require("payments", READ)
        if name not in reports.REPORTS:
            raise NotFound(f"no report '{name}' (reports: {', '.join(reports.REPORTS)})")
        try:
            as_of = date.fromisoformat(asOf) if asOf else date.today()
            first = date.fromisoformat(start) if start else None
        except ValueError as exc:
            raise InvalidPayment("'asOf' and 'start' are dates (YYYY-MM-DD)") from exc
        rows = await service_report(payments, principal, request, name, as_of, first)
        if format == "csv":
            return Response(reports.to_csv(rows), media_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{name}-{as_of}.csv"'})
        return TmfJSONResponse(rows)

    async def aging_chart(request: Request, asOf: str | None = None,
                          principal: Principal = Depends(permitted("payments", READ))) -> Response:
        try:
            as_of = date.fromisoformat(asOf) if asOf else date.today()
        except ValueError as exc:
            raise InvalidPayment("'asOf' is a date (YYYY-MM-DD)") from exc
        async with unit_of_work(request, principal) as ctx:
            rows = await reports.ar_aging(ctx.session, as_of)
        return Response(reports.aging_svg(rows, as_of), media_type="image/svg+xml",
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})

    async def revenue_chart(request: Request, asOf: str | None = None, start: str | None = None,
                            principal: Principal = Depends(authenticate)) -> Response:
        principal.require("payments", READ)
        try:
            as_of = date.fromisoformat(asOf) if asOf else date.today()
            first = date.fromisoformat(start) if start else as_of.replace(month=1, day=1)
        except ValueError as exc:
            raise InvalidPayment("'asOf' and 'start' are dates (YYYY-MM-DD)") from exc
        async with unit_of_work(request, principal) as ctx:
            rows = await reports.revenue(ctx.session, first, as_of)
        return Response(reports.revenue_svg(rows, first, as_of), media_type="image/svg+xml",
                        headers={"Cache-Control": "no-store"})

    async def list_periods(request: Request, principal: Principal = Depends(authenticate)) -> Response:
        principal.require("payments", READ)
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await ledger.periods(ctx.session))

    async def close_period(request: Request, body: dict[str, Any] = Body(...),
                           principal: Principal = Depends(authenticate)) -> Response:
        principal.require("payments", WRITE)
        try:
            month = date.fromisoformat(f"{body.get('period')}-01")
        except ValueError as exc:
            raise InvalidPayment("'period' is a month: YYYY-MM") from exc
        async with unit_of_work(request, principal) as ctx:
            closed = await ledger.close_period(ctx.session, month, principal.subject)
        return TmfJSONResponse(closed, status_code=201)

    async def write_off(request: Request, body: Any = Body(...),
                        principal: Principal = Depends(permitted("payments", WRITE))) -> Response:
        payload = _body(body)
        account_id = (payload.get("billingAccount") or {}).get("id") if isinstance(
            payload.get("billingAccount"), dict) else None
        money = payload.get("amount")
        if not isinstance(money, dict):
            raise InvalidPayment("'amount' is mandatory: {\"unit\": <currency>, \"value\": <amount>}")
        try:
            value = to_decimal(money.get("value"))
        except ValueError as exc:
            raise InvalidPayment(f"'amount.value': {exc}") from exc
        unknown = sorted(set(payload) - {"billingAccount", "amount", "reason", "reference"})
        if unknown:
            raise InvalidPayment(f"unknown attributes: {', '.join(unknown)}")
        async with unit_of_work(request, principal) as ctx:
            reason: Any = payload.get("reason")
            reference: Any = payload.get("reference")
            out = await payments.write_off(ctx, billing_account_id=str(account_id or ""), amount=value,
                                           currency=str(money.get("unit")), reason=reason, reference=reference)
        replayed = out.pop("replayed")
        headers = {"Location": out["href"], **({"Idempotent-Replayed": "true"} if replayed else {})}
        return TmfJSONResponse(out, status_code=201, headers=headers)

    async def get_write_off(request: Request, reference: str,
                            principal: Principal = Depends(permitted("payments", READ))) -> Response:
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await payments.get_write_off(ctx, reference))

    async def ledger_replay(request: Request, principal: Principal = Depends(permitted("payments", READ))
                            ) -> Response:
        async with unit_of_work(request, principal) as ctx:
            return TmfJSONResponse(await replay.replay(payments, ctx))

    async def schema(name: str) -> Response:
        found = SCHEMAS.get(name.removesuffix(".json"))
        if found is None:
            raise NotFound(f"no schema '{name}'")
        return TmfJSONResponse(found)

    router.add_api_route("/payment/{id}/transition", transitions, methods=["GET"],
                         summary="The recorded state transitions of a payment")
    router.add_api_route("/bill/{id}", bill, methods=["GET"], summary="What was paid of a bill")
    router.add_api_route("/trialBalance", trial_balance, methods=["GET"], summary="The ledger's trial balance")
    router.add_api_route("/webhook/{gateway}", webhook, methods=["POST"], summary="A gateway's signed webhook")
    router.add_api_route("/sepaBatch", sepa_batch, methods=["POST"], status_code=201,
                         summary="A pain.008 direct-debit batch of the open bills payable by SEPA mandate")
    router.add_api_route("/statement", statement, methods=["POST"], status_code=201,
                         summary="Import a bank statement (body: camt.053 XML or MT940 text)")
    router.add_api_route("/statementException", statement_exceptions, methods=["GET"],
                         summary="Statement lines nothing matched")
    router.add_api_route("/report/{name}", finance_report, methods=["GET"],
                         summary="A finance report: trialBalance, arAging, cashReceipts, deferredRevenue, revenue, "
                                 "arAgingBySegment, gatewayReconciliation (JSON or CSV)")
    router.add_api_route("/chart/revenue.svg", revenue_chart, methods=["GET"],
                         summary="Billed revenue by month as a bar chart (SVG; default: the year to date)")
    router.add_api_route("/chart/arAging.svg", aging_chart, methods=["GET"],
                         summary="The receivables aging as a bar chart (SVG)")
    router.add_api_route("/ledgerPeriod", list_periods, methods=["GET"], summary="The closed ledger periods")
    router.add_api_route("/ledgerPeriod", close_period, methods=["POST"], status_code=201,
                         summary="Close a ledger period (a month): nothing posts into it any more")
    router.add_api_route("/writeOff", write_off, methods=["POST"], status_code=201,
                         summary="Write off part of what a billing account owes (idempotent per 'reference')")
    router.add_api_route("/writeOff/{reference}", get_write_off, methods=["GET"], summary="A write-off")
    router.add_api_route("/ledgerReplay", ledger_replay, methods=["GET"],
                         summary="Rebuild the journal from the source documents and list the differences")
    router.add_api_route("/schema/{name}", schema, methods=["GET"], summary="Extension schemas of payments")
    return router


def routers(svc: PaymentServices) -> list[tuple[str, APIRouter]]:
    return [(svc.method_api.title, api_router(svc.method_api, svc.methods, method_routes(svc))),
            (svc.payment_api.title, api_router(svc.payment_api, svc.resources, payment_routes(svc))),
            ("Payments", payments_router(svc))]
