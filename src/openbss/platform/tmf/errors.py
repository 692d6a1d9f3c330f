"""Rendering of every error in the TMF630 error format, naming the offending field."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from openbss.platform.errors import DomainError

log = logging.getLogger(__name__)

_REASONS = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
            405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 413: "Request body too large",
            415: "Unsupported media type", 422: "Unprocessable entity", 500: "Internal error"}


def error_body(status: int, code: str, message: str, reason: str | None = None) -> dict[str, Any]:
    return {"code": code, "reason": reason or _REASONS.get(status, "Error"), "message": message,
            "status": str(status), "@type": "Error"}


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def describe_errors(errors: list[Any]) -> str:
    msgs = []
    for e in errors[:10]:
        field = _loc(tuple(e.get("loc", ())))
        kind = e.get("type", "")
        if kind == "missing":
            msgs.append(f"'{field}' is mandatory")
        elif kind == "extra_forbidden":
            msgs.append(f"'{field}' is not an attribute of this resource")
        elif kind == "json_invalid":
            msgs.append(f"malformed JSON: {e.get('ctx', {}).get('error', e.get('msg'))}")
        elif kind == "literal_error":
            msgs.append(f"'{field}': {e.get('msg')}")
        else:
            msgs.append(f"'{field}': {e.get('msg')}")
    return "; ".join(msgs)


#: PostgreSQL's answers to text it cannot store: untranslatable_character (a ``\u0000`` in JSON), and
#: character_not_in_repertoire (a NUL byte in a text value)
_UNSTORABLE_TEXT_STATES = {"22P05", "22021"}
UNSTORABLE_TEXT = ("a text value of the request cannot be stored: it contains a NUL character (U+0000) or a lone "
                   "UTF-16 surrogate; text must be valid Unicode without NUL")


def unstorable_text(exc: BaseException) -> bool:
    """Whether ``exc`` (a database statement's failure) comes from text in the request that PostgreSQL cannot
    store: a NUL character or a lone surrogate. The kit's models refuse such text up front, naming the attribute;
    this is the net under every other body and parameter (the domains' own configuration routes)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, UnicodeEncodeError):
            return True
        if getattr(cause, "sqlstate", None) in _UNSTORABLE_TEXT_STATES:
            return True
        cause = getattr(cause, "orig", None) or cause.__cause__ or cause.__context__
    return False


def validation_message(exc: ValidationError) -> str:
    return describe_errors(list(exc.errors()))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})  # e.g. Retry-After of a 429
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="openbss"'
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        code = "MALFORMED_JSON" if any(e.get("type") == "json_invalid" for e in errors) else "INVALID_REQUEST"
        if any(e.get("type") == "model_attributes_type" or e.get("type") == "dict_type"
               for e in errors if tuple(e.get("loc", ())) == ("body",)):
            return JSONResponse(error_body(400, "INVALID_BODY", "the body must be a JSON object"), status_code=400)
        return JSONResponse(error_body(400, code, describe_errors(errors)), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}
        code = codes.get(exc.status_code, "HTTP_ERROR")
        message = str(exc.detail)
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        elif exc.status_code == 404:
            message = f"no resource at {request.url.path}"
        return JSONResponse(error_body(exc.status_code, code, message), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(StatementError)
    async def _statement(request: Request, exc: StatementError) -> JSONResponse:
        if unstorable_text(exc):  # the transaction was rolled back: nothing is written
            return JSONResponse(error_body(400, "INVALID_TEXT", UNSTORABLE_TEXT), status_code=400)
        log.exception("unhandled database error")
        return JSONResponse(error_body(500, "INTERNAL_ERROR", "an unexpected error occurred"), status_code=500)

    @app.exception_handler(UnicodeEncodeError)
    async def _unicode(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        return JSONResponse(error_body(400, "INVALID_TEXT", UNSTORABLE_TEXT), status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body(500, "INTERNAL_ERROR", "an unexpected error occurred"), status_code=500)
