"""Prometheus metrics and JSON logs carrying the request id (fed by the platform's request middleware).

No personal data in logs: the platform's own messages name records by id, never by a personal value; URLs are
logged with their query values masked (``?logicalResource.id=***&limit=***``) by ``RedactingFilter``, which sits on
the handler ``configure_logging`` installs (every record of the process) and on the loggers of the HTTP libraries
(``httpx``, ``httpcore``, ``uvicorn``), so that any other handler an operator or a test adds sees masked URLs too.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

from prometheus_client import Counter, Histogram
from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

HTTP_REQUESTS = Counter("openbss_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "openbss_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_LAG = Histogram(
    "openbss_outbox_lag_seconds", "Time from an event's commit to its publication",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120),
)
OUTBOX_PUBLISHED = Counter("openbss_outbox_published_total", "Outbox events published")
OUTBOX_DEAD = Counter("openbss_outbox_dead_letters_total",
                      "Outbox events the relay gave up: publishing them cannot succeed by retrying (alarm on any)")
HUB_DELIVERIES = Counter("openbss_hub_deliveries_total", "Hub notification attempts", ["outcome"])


#: a query parameter's value in a URL (``?name=value`` or ``&name=value``): the name stays, the value is masked
_QUERY_VALUE = re.compile(r"(?P<key>[?&][^=&#\s\"'<>]*=)[^&#\s\"'<>]*")
MASKED = "***"
#: loggers of the HTTP libraries, which log request URLs (httpx at INFO: "HTTP Request: GET <url> ...")
URL_LOGGERS = ("httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access")


def mask_query_values(text: str) -> str:
    """``text`` with the value of every URL query parameter replaced by ``***``."""
    if "=" not in text or ("?" not in text and "&" not in text):
        return text
    return _QUERY_VALUE.sub(lambda m: m.group("key") + MASKED, text)


class RedactingFilter(logging.Filter):
    """Masks URL query values in a record's message: the message is rendered with its arguments, masked, and kept
    as the record's message (so a value placed into a query by a format string is masked too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_openbss_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: logging reports it; leave the record as it is
            return True
        masked = mask_query_values(message)
        if masked != message:
            record.msg, record.args = masked, ()
        record._openbss_redacted = True
        return True


_REDACTING = RedactingFilter()


def install_redaction() -> None:
    """Put the redacting filter on the HTTP libraries' loggers (idempotent; done when this module is imported)."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTING not in logger.filters:
            logger.addFilter(_REDACTING)


install_redaction()


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(_REDACTING)  # every record of the process, whatever its logger
    if json_logs:
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"levelname": "level", "asctime": "time"},
        ))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "procrastinate"):  # every job start/end at INFO drowns the useful lines
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count and time one HTTP request under its route template (the labelled series are looked up once)."""
    key = (method, route, status)
    series = _children.get(key)
    if series is None:
        if len(_children) > 10_000:  # routes are templates, methods and statuses few: this bounds odd traffic
            _children.clear()
        series = _children[key] = (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_LATENCY.labels(method, route))
    series[0].inc()
    series[1].observe(seconds)
