"""URL query values are masked in every log record (the names stay, for the operator)."""

from __future__ import annotations

import logging

import httpx
import pytest

from openbss.platform.observability import RedactingFilter, mask_query_values


@pytest.mark.parametrize(("raw", "masked"), [
    ("GET /tmf-api/prepayBalanceManagement/v4/bucket?logicalResource.id=33612345678&limit=1",
     "GET /tmf-api/prepayBalanceManagement/v4/bucket?logicalResource.id=***&limit=***"),
    ('HTTP Request: GET http://h/x?email=ada%40example.com "HTTP/1.1 200 OK"',
     'HTTP Request: GET http://h/x?email=*** "HTTP/1.1 200 OK"'),
    ("/search?name=&phone=+33 6", "/search?name=***&phone=*** 6"),
    ("no query here: a=b", "no query here: a=b"),
    ("/x?flag", "/x?flag"),
])
def test_query_values_are_masked(raw: str, masked: str) -> None:
    assert mask_query_values(raw) == masked


def test_records_are_masked_in_their_arguments_and_keep_their_placeholders() -> None:
    url = httpx.URL("http://testserver/tmf-api/usageManagement/v4/usage?relatedParty.id=p1&calledParty=33699")
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s"', ("GET", url, "200"),
                               None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == ('HTTP Request: GET http://testserver/tmf-api/usageManagement/v4/usage'
                                   '?relatedParty.id=***&calledParty=*** "200"')
    # a value a format string places into a query is masked too
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "/bucket?offset=%d&id=%s", (3, "33612345678"), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "/bucket?offset=***&id=***"


def test_the_http_libraries_loggers_carry_the_filter(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("httpx").info("HTTP Request: %s %s", "GET", "http://h/bucket?logicalResource.id=33612345678")
    assert caplog.records[-1].getMessage() == "HTTP Request: GET http://h/bucket?logicalResource.id=***"
