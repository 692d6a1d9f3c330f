"""HTTP of the self-care portal: the single-page application at /selfcare/, the sign-in flow under
/selfcare/auth/ and the JSON API under /selfcare/api/ (contract: docs/selfcare.md)."""
# No ``from __future__ import annotations``: FastAPI reads the handler's annotations at runtime.

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from openbss.platform.errors import DomainError, UnsupportedMediaType
from openbss.selfcare import bills, service, signin, usage
from openbss.selfcare.errors import NotSignedIn, SignInFailed
from openbss.selfcare.portal import Cached, Portal, portal
from openbss.selfcare.security import (
    CSRF_COOKIE,
    CSRF_HEADER,
    LOGIN_COOKIE,
    SAFE_METHODS,
    SESSION_COOKIE,
    check_csrf,
    hit,
)
from openbss.selfcare.signin import SessionInfo

STATIC = Path(__file__).parent / "static"
TAG = "Self-care portal"
COOKIE_PATH = "/selfcare"

router = APIRouter(tags=[TAG])


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _secure(p: Portal) -> bool:
    return p.public_url.startswith("https://")


async def _ip_limit(request: Request, p: Portal, *, auth: bool = False) -> None:
    await hit(p, "ip", client_ip(request), p.settings.selfcare_rate_limit_ip)
    if auth:
        await hit(p, "auth", client_ip(request), p.settings.selfcare_rate_limit_auth)


async def signed_in(request: Request, p: Portal = Depends(portal)) -> SessionInfo:
    """The request's session: the ``sc_session`` cookie (writes need the CSRF header) or ``Authorization: Bearer
    <session token>``. Rate-limited per client IP and per customer."""
    await _ip_limit(request, p)
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise NotSignedIn("the Authorization header must be 'Bearer <session token>'")
        via_cookie = False
    else:
        token, via_cookie = request.cookies.get(SESSION_COOKIE, ""), True
    info = await signin.resolve(p, token.strip())
    await hit(p, "user", info.customer_id, p.settings.selfcare_rate_limit_user)
    if via_cookie and request.method not in SAFE_METHODS:
        check_csrf(request.headers.get(CSRF_HEADER), info.csrf_digest)
    return info


@dataclass(frozen=True)
class SignedIn:
    """A signed-in customer's session and the portal serving it."""

    info: SessionInfo
    portal: Portal


async def customer_session(request: Request) -> SignedIn:
    """``signed_in`` with its portal, called by the read operations themselves rather than declared as FastAPI
    dependencies: the framework's resolution costs about 8 µs per dependency and request, a third of the work of a
    cached read."""
    p = await portal(request)
    return SignedIn(await signed_in(request, p), p)


def _json_only(request: Request) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, got '{ctype or 'none'}'")


def _set_session_cookies(response: Response, p: Portal, new: signin.NewSession) -> None:
    max_age = int(p.settings.selfcare_session_hours * 3600)
    response.set_cookie(SESSION_COOKIE, new.token, max_age=max_age, path=COOKIE_PATH, httponly=True,
                        secure=_secure(p), samesite="lax")
    response.set_cookie(CSRF_COOKIE, new.csrf, max_age=max_age, path=COOKIE_PATH, httponly=False,
                        secure=_secure(p), samesite="strict")
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)


def _json(cached: Cached) -> Response:
    """A cached answer: encoded once when it was computed."""
    return Response(cached.body, media_type="application/json")


def _session_body(info: SessionInfo, name: str | None = None) -> dict[str, Any]:
    return {"customerId": info.customer_id, "segment": info.segment, "provider": info.provider, "name": name,
            "expiresAt": info.expires_at.isoformat().replace("+00:00", "Z")}


# --- the single-page application ------------------------------------------------------------------------------
@router.get("/selfcare", include_in_schema=False)
async def spa_redirect() -> RedirectResponse:
    return RedirectResponse("/selfcare/", status_code=308)


@router.get("/selfcare/", include_in_schema=False)
async def spa() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


# --- sign-in ----------------------------------------------------------------------------------------------------
@router.get("/selfcare/api/config", summary="Portal configuration: operator branding and identity providers")
async def config(request: Request, p: Portal = Depends(portal)) -> dict[str, Any]:
    await _ip_limit(request, p)
    s = p.settings
    return {"operator": {"name": s.selfcare_brand_name, "primaryColor": s.selfcare_brand_color},
            "providers": [{"id": c.id, "label": c.label} for c in p.providers.configs.values()]}


@router.get("/selfcare/auth/login/{provider}", summary="Start signing in with an identity provider (browser)")
async def login(provider: str, request: Request, p: Portal = Depends(portal)) -> RedirectResponse:
    await _ip_limit(request, p, auth=True)
    try:
        url, browser = await signin.start(p, provider)
    except DomainError as exc:
        return RedirectResponse(f"/selfcare/#/signin?error={quote(exc.code)}", status_code=303)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(LOGIN_COOKIE, browser, max_age=int(signin.LOGIN_TTL.total_seconds()), path=COOKIE_PATH,
                        httponly=True, secure=_secure(p), samesite="lax")
    return response


@router.get("/selfcare/auth/callback", summary="Where the identity provider returns (browser)")
async def callback(request: Request, p: Portal = Depends(portal)) -> RedirectResponse:
    await _ip_limit(request, p, auth=True)
    q = request.query_params
    browser = request.cookies.get(LOGIN_COOKIE)
    try:
        if q.get("error"):
            raise SignInFailed(f"the identity provider answered {q.get('error')}", code="PROVIDER_ERROR")
        if not q.get("code") or not q.get("state"):
            raise SignInFailed("the identity provider's answer has no code or state", code="NO_CODE")
        outcome = await signin.callback(p, browser, state=q["state"], code=q["code"])
    except DomainError as exc:
        response = RedirectResponse(f"/selfcare/#/signin?error={quote(exc.code)}", status_code=303)
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        return response
    if outcome.session is None:
        return RedirectResponse("/selfcare/#/link", status_code=303)
    response = RedirectResponse("/selfcare/#/profile", status_code=303)
    _set_session_cookies(response, p, outcome.session)
    return response


@router.get("/selfcare/api/link", summary="The identity waiting to be linked to a customer (first sign-in)")
async def pending_link(request: Request, p: Portal = Depends(portal)) -> dict[str, Any]:
    await _ip_limit(request, p)
    return await signin.pending_link(p, request.cookies.get(LOGIN_COOKIE))


@router.post("/selfcare/api/link/msisdn", status_code=202, summary="Send a one-time code to a customer's line")
async def link_msisdn(request: Request, body: dict[str, Any] = Body(...), p: Portal = Depends(portal),
                      _ct: None = Depends(_json_only)) -> dict[str, Any]:
    await _ip_limit(request, p, auth=True)
    return await signin.send_code(p, request.cookies.get(LOGIN_COOKIE), str(body.get("msisdn") or ""))


@router.post("/selfcare/api/link/verify", summary="Link the identity with the one-time code; signs in")
async def link_verify(request: Request, body: dict[str, Any] = Body(...), p: Portal = Depends(portal),
                      _ct: None = Depends(_json_only)) -> JSONResponse:
    await _ip_limit(request, p, auth=True)
    new = await signin.verify_code(p, request.cookies.get(LOGIN_COOKIE), str(body.get("code") or ""))
    response = JSONResponse(_session_body(new.info))
    _set_session_cookies(response, p, new)
    return response


@router.get("/selfcare/api/session", summary="The signed-in customer's session")
async def current_session(request: Request) -> dict[str, Any]:
    c = await customer_session(request)
    profile = (await service.customer_information(c.portal, c.info)).value
    name = profile["name"].get("organization") or profile["name"].get("fullName")
    return _session_body(c.info, name)


@router.post("/selfcare/auth/logout", status_code=204, summary="Sign out (the session is revoked)")
async def logout(request: Request, p: Portal = Depends(portal)) -> Response:
    response = Response(status_code=204)
    try:
        info = await signed_in(request, p)
    except NotSignedIn:
        info = None
    if info is not None:
        await signin.sign_out(p, info)
    for name in (SESSION_COOKIE, CSRF_COOKIE, LOGIN_COOKIE):
        response.delete_cookie(name, path=COOKIE_PATH)
    return response


# --- the four operations ---------------------------------------------------------------------------------------
@router.get("/selfcare/api/customer", summary="RetrieveCustomerInformation", response_class=Response,
            responses={200: {"content": {"application/json": {}}}})
async def retrieve_customer(request: Request) -> Response:
    c = await customer_session(request)
    return _json(await service.customer_information(c.portal, c.info))


@router.patch("/selfcare/api/customer", summary="UpdateCustomerInformation (email re-verified)")
async def update_customer(body: Any = Body(...), info: SessionInfo = Depends(signed_in),
                          p: Portal = Depends(portal), _ct: None = Depends(_json_only)) -> Response:
    return _json(await service.update_customer_information(p, info, body))


@router.post("/selfcare/api/customer/email-verification", summary="Confirm a new email address with its code")
async def verify_email(request: Request, body: dict[str, Any] = Body(...), info: SessionInfo = Depends(signed_in),
                       p: Portal = Depends(portal), _ct: None = Depends(_json_only)) -> Response:
    await hit(p, "auth", client_ip(request), p.settings.selfcare_rate_limit_auth)
    return _json(await service.confirm_email(p, info, str(body.get("code") or "")))


@router.get("/selfcare/api/balance", summary="RetrieveCurrentBalance (money and every allowance)",
            response_class=Response, responses={200: {"content": {"application/json": {}}}})
async def retrieve_balance(request: Request) -> Response:
    c = await customer_session(request)
    return _json(await service.current_balance(c.portal, c.info))


@router.get("/selfcare/api/usage/months", summary="Months with an itemized usage statement")
async def usage_months(request: Request) -> dict[str, Any]:
    c = await customer_session(request)
    return {"months": usage.months(c.portal), "current": usage.current_month(c.portal)}


@router.get("/selfcare/api/usage", summary="A month's usage events and totals (JSON)", response_class=Response,
            responses={200: {"content": {"application/json": {}}}})
async def usage_of_month(month: str, c: SignedIn = Depends(customer_session)) -> Response:
    # a dependency here: a request without a session is answered 401 before its query is validated
    return _json(await service.usage_page(c.portal, c.info, month))


@router.get("/selfcare/api/usage/{month}.pdf", summary="RetrieveItemizedUsage: the month's PDF (archived)",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def usage_document(month: str, request: Request) -> Response:
    c = await customer_session(request)
    doc = await service.itemized_usage_pdf(c.portal, c.info, month)
    return Response(doc.content, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="usage-{doc.month}.pdf"',
        "ETag": f'"{doc.sha256}"', "X-Checksum-SHA256": doc.sha256,
        "X-Statement-Status": "final" if doc.final else "provisional"})


@router.get("/selfcare/api/bills", summary="My bills: issued bills and credit notes, and the amount due")
async def my_bills(request: Request) -> dict[str, Any]:
    c = await customer_session(request)
    return await bills.my_bills(c.portal, c.info)


@router.post("/selfcare/api/bills/pay", summary="Pay the amount due on one of my accounts (its default method)")
async def pay_due(body: Any = Body(...), info: SessionInfo = Depends(signed_in), p: Portal = Depends(portal),
                  _ct: None = Depends(_json_only)) -> dict[str, Any]:
    return await bills.pay_due(p, info, body)


@router.post("/selfcare/api/bills/promise", status_code=201,
             summary="Promise to pay the amount due on one of my accounts by a date (collections pauses)")
async def promise_to_pay(body: Any = Body(...), info: SessionInfo = Depends(signed_in), p: Portal = Depends(portal),
                         _ct: None = Depends(_json_only)) -> dict[str, Any]:
    return await bills.promise_to_pay(p, info, body)


@router.get("/selfcare/api/bills/{bill_id}.pdf", summary="The PDF of one of my bills", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
async def my_bill_document(bill_id: str, request: Request) -> Response:
    c = await customer_session(request)
    data = await bills.bill_pdf(c.portal, c.info, bill_id)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="bill-{bill_id}.pdf"'})
