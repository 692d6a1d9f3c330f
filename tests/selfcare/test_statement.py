"""The itemized usage PDF: what the customer reads in it (extracted with pypdf), exact money, determinism."""

from __future__ import annotations

import dataclasses
import io
import random
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from openbss.selfcare import statement as statement_module
from openbss.selfcare.statement import (
    NO_USAGE,
    Branding,
    Statement,
    StatementCustomer,
    UsageItem,
    render_statement,
    totals_by_currency,
    totals_by_service,
)

START = datetime(2026, 9, 30, 22, 0, tzinfo=UTC)  # 1 October 2026 00:00 in Paris
END = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
BRANDING = Branding(operator_name="Demo Telecom", primary_color="#0B5FFF", address="1 Network Way, 75001 Paris",
                    support="Support: 0800 123 456 · demo-telecom.example")
CUSTOMER = StatementCustomer(name="Amelia Smith", customer_id="CUS-000123",
                             address_lines=("12 High Street", "75001 Paris", "France"), segment="residential",
                             lines=("+33600000101", "+33600000102"))


def _items(n: int, seed: int = 7) -> tuple[UsageItem, ...]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        service = ("Voice", "Data", "SMS")[i % 3]
        destination = {"Voice": f"+3361{i:07d}", "Data": f"apn{i}.demo-telecom.example", "SMS": f"+4477{i:07d}"}
        quantity = {"Voice": f"{i % 60} min {i % 59:02d} s", "Data": f"{i / 10:.1f} MB", "SMS": "1 SMS"}
        included = rnd.random() < 0.4
        out.append(UsageItem(at=START + timedelta(minutes=rnd.randrange(0, 31 * 24 * 60)),
                             msisdn=CUSTOMER.lines[i % 2], service=service, destination=destination[service],
                             quantity=quantity[service], currency="EUR", included=included,
                             charge=Decimal(0) if included else Decimal(rnd.randrange(1, 999)) / 100))
    return tuple(out)


def _statement(items: tuple[UsageItem, ...] = (), **changes: object) -> Statement:
    st_ = Statement(month="2026-10", period_start=START, period_end=END,
                    generated_at=datetime(2026, 11, 1, 1, 0, tzinfo=UTC), time_zone="Europe/Paris", customer=CUSTOMER,
                    items=items, branding=BRANDING)
    return dataclasses.replace(st_, **changes)  # type: ignore[arg-type]


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def _text(pdf: bytes) -> str:
    return "\n".join(_pages(pdf))


def _money(amount: Decimal, currency: str) -> str:
    q = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{q if q != 0 else Decimal('0.00'):,.2f} {currency}"


def _grand_totals(text: str) -> list[tuple[str, str]]:
    """(count, amount) of each "Grand total" row, in the order printed."""
    lines = [line.strip() for line in text.splitlines()]
    return [(lines[i + 1], lines[i + 2]) for i, line in enumerate(lines) if line == "Grand total"]


def test_statement_shows_customer_items_and_totals() -> None:
    items = _items(20)
    pdf = render_statement(_statement(items))
    assert pdf.startswith(b"%PDF-")
    text = _text(pdf)
    for expected in ("Itemized usage — October 2026", "Amelia Smith", "CUS-000123", "12 High Street", "75001 Paris",
                     "+33600000101, +33600000102", "Residential", "1 October 2026 – 31 October 2026",
                     "1 November 2026, 02:00", "Europe/Paris", "Demo Telecom",
                     "Support: 0800 123 456 · demo-telecom.example", "Page 1 of 1"):
        assert expected in text, expected
    for it in items:
        assert it.destination in text
        assert it.quantity in text
    for service, count, total, currency in totals_by_service(items):
        assert f"{service}\n{count}\n{_money(total, currency)}" in text
    assert _grand_totals(text) == [("20", _money(sum((it.charge for it in items), Decimal(0)), "EUR"))]
    assert text.count("included") >= sum(it.included for it in items)


def test_times_are_shown_in_the_statement_time_zone() -> None:
    item = UsageItem(at=datetime(2026, 10, 1, 22, 30, 5, tzinfo=UTC), msisdn="+33600000101", service="Voice",
                     destination="+33612345678", quantity="1 min 00 s", charge=Decimal("0.10"), currency="EUR",
                     included=False)
    paris = _text(render_statement(_statement((item,))))
    assert "2026-10-02\n00:30:05" in paris
    utc = _text(render_statement(_statement((item,), time_zone="UTC")))
    assert "2026-10-01\n22:30:05" in utc


def test_items_are_listed_in_time_order() -> None:
    items = _items(30)
    text = _text(render_statement(_statement(tuple(reversed(items)))))
    positions = [text.index(it.destination + "\n") for it in sorted(items, key=lambda it: it.at)]
    assert positions == sorted(positions)


def test_multi_page_statement_numbers_pages_and_repeats_the_header() -> None:
    items = _items(300)
    pages = _pages(render_statement(_statement(items)))
    n = len(pages)
    assert n >= 5
    assert f"Page 1 of {n}" in pages[0]
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {n}" in page
        assert "Destination / APN" in page  # the table header on every page
        assert "Demo Telecom" in page and "Customer CUS-000123" in page  # the band
    text = "\n".join(pages)
    assert all(it.destination in text for it in items)
    assert _grand_totals(text) == [("300", _money(sum((it.charge for it in items), Decimal(0)), "EUR"))]


def test_empty_statement() -> None:
    text = _text(render_statement(_statement(())))
    assert NO_USAGE == "No usage in this period."
    assert NO_USAGE in text
    assert "Usage details" not in text and "Grand total" not in text
    assert "Amelia Smith" in text and "Page 1 of 1" in text


def test_user_text_is_rendered_literally() -> None:
    customer = dataclasses.replace(CUSTOMER, name="O'Brien & <Sons>", address_lines=("1 <b>Bold</b> Road & Co",))
    long_apn = "corp.<i>vpn</i>&amp;" + "x" * 60 + ".example"  # too long for its column: becomes a paragraph
    items = (
        UsageItem(at=START + timedelta(hours=1), msisdn="+33600000101", service="Data", destination=long_apn,
                  quantity="1.0 MB", charge=Decimal("0.50"), currency="EUR", included=False),
        UsageItem(at=START + timedelta(hours=2), msisdn="+33600000101", service="<SMS>", destination="<b>&",
                  quantity="1 SMS", charge=Decimal("0.10"), currency="EUR", included=False),
    )
    text = _text(render_statement(_statement(items, customer=customer,
                                             branding=dataclasses.replace(BRANDING, operator_name="A&B <Mobile>"))))
    assert "O'Brien & <Sons>" in text
    assert "1 <b>Bold</b> Road & Co" in text
    assert "<b>&" in text and "<SMS>" in text and "A&B <Mobile>" in text
    assert long_apn in text.replace("\n", "")


def test_money_is_rounded_half_up_and_totalled_per_currency() -> None:
    items = (
        UsageItem(at=START + timedelta(hours=1), msisdn="+33600000101", service="Voice", destination="+331",
                  quantity="1 min 00 s", charge=Decimal("0.005"), currency="EUR", included=False),
        UsageItem(at=START + timedelta(hours=2), msisdn="+33600000101", service="Voice", destination="+332",
                  quantity="1 min 00 s", charge=Decimal("0.0049"), currency="EUR", included=False),
        UsageItem(at=START + timedelta(hours=3), msisdn="+33600000101", service="Roaming data", destination="apn",
                  quantity="1.0 MB", charge=Decimal("1234.565"), currency="USD", included=False),
        UsageItem(at=START + timedelta(hours=4), msisdn="+33600000101", service="Voice", destination="+333",
                  quantity="0 min 10 s", charge=Decimal("-0.001"), currency="EUR", included=False),
    )
    assert totals_by_service(items) == [("Roaming data", 1, Decimal("1234.565"), "USD"),
                                        ("Voice", 3, Decimal("0.0089"), "EUR")]
    assert totals_by_currency(items) == [("EUR", 3, Decimal("0.0089")), ("USD", 1, Decimal("1234.565"))]
    text = _text(render_statement(_statement(items)))
    assert "0.01 EUR" in text  # 0.005 half up, not to even
    assert "0.00 EUR" in text and "-0.00" not in text
    assert "1,234.57 USD" in text
    assert _grand_totals(text) == [("3", "0.01 EUR"), ("1", "1,234.57 USD")]


def test_rendering_is_deterministic_and_carries_metadata() -> None:
    items = _items(120)
    first, second = render_statement(_statement(items)), render_statement(_statement(items))
    assert first == second
    changed = dataclasses.replace(items[5], charge=items[5].charge + Decimal("0.01"))
    assert render_statement(_statement((*items[:5], changed, *items[6:]))) != first
    assert render_statement(_statement(items, generated_at=datetime(2026, 11, 2, tzinfo=UTC))) != first
    meta = PdfReader(io.BytesIO(first)).metadata
    assert meta is not None
    assert meta.title == "Itemized usage — October 2026"
    assert meta.author == "Demo Telecom"
    assert meta.subject == "Itemized usage 2026-10 of customer CUS-000123"
    assert meta.creation_date == datetime(2026, 11, 1, 1, 0, tzinfo=UTC)


def test_corporate_customer_with_many_lines_and_odd_branding() -> None:
    customer = dataclasses.replace(CUSTOMER, name="Acme Logistics SAS", segment="corporate",
                                   lines=tuple(f"+336{i:08d}" for i in range(500)))
    pdf = render_statement(_statement(_items(10), customer=customer,
                                      branding=dataclasses.replace(BRANDING, primary_color="not-a-colour")))
    text = " ".join(_text(pdf).split())
    assert "+33600000000, +33600000001," in text and "+33600000011 and 488 more" in text
    assert "+33600000012" not in text and "Corporate" in text


def test_non_latin_text_uses_a_wider_font_when_the_machine_has_one() -> None:
    if statement_module._font("dejavu") is None:
        pytest.skip("no DejaVu Sans on this machine: characters outside Bitstream Vera render as blanks")
    customer = dataclasses.replace(CUSTOMER, name="Ірина Коваленко-Őrsi")
    text = _text(render_statement(_statement(_items(3), customer=customer)))
    assert "Ірина Коваленко-Őrsi" in text


@pytest.mark.parametrize(("change", "message"), [
    ({"time_zone": "Mars/Olympus"}, "time zone"),
    ({"month": "October"}, "YYYY-MM"),
    ({"month": "2026-00"}, "YYYY-MM"),
    ({"month": "2026-13"}, "YYYY-MM"),
    ({"generated_at": datetime(2026, 11, 1)}, "timezone-aware"),
])
def test_invalid_input_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_statement(_statement(_items(2), **change))


def test_naive_usage_time_is_refused() -> None:
    naive = dataclasses.replace(_items(1)[0], at=datetime(2026, 10, 3, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        render_statement(_statement((naive,)))


# --- property: the totals are exact and the printed grand total is their half-up rounding ---------------------
SERVICES = ("Voice", "Data", "SMS", "Roaming voice")


@st.composite
def usage_lists(draw: st.DrawFn) -> tuple[UsageItem, ...]:
    currencies = draw(st.sampled_from([("EUR",), ("USD",), ("EUR", "GBP")]))
    n = draw(st.integers(min_value=0, max_value=50))
    items = []
    for i in range(n):
        places = draw(st.integers(min_value=2, max_value=4))
        charge = draw(st.decimals(min_value=Decimal("-5"), max_value=Decimal("2500"), places=places,
                                  allow_nan=False, allow_infinity=False))
        items.append(UsageItem(at=START + timedelta(seconds=draw(st.integers(0, 31 * 86400 - 1))),
                               msisdn="+33600000101", service=draw(st.sampled_from(SERVICES)),
                               destination=f"+3361{i:07d}", quantity="1 min 00 s", charge=charge,
                               currency=draw(st.sampled_from(currencies)), included=draw(st.booleans())))
    return tuple(items)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=usage_lists())
def test_totals_property(items: tuple[UsageItem, ...]) -> None:
    expected: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for it in items:
        count, total = expected.get((it.service, it.currency), (0, Decimal(0)))
        expected[(it.service, it.currency)] = (count + 1, total + it.charge)
    got = totals_by_service(items)
    assert {(s, c): (n, t) for s, n, t, c in got} == expected
    assert [(s, c) for s, _, _, c in got] == sorted(expected)
    assert sum(n for _, n, _, _ in got) == len(items)

    text = _text(render_statement(_statement(items)))
    if not items:
        assert NO_USAGE in text
        return
    per_currency: dict[str, list[Decimal]] = {}
    for it in items:
        per_currency.setdefault(it.currency, []).append(it.charge)
    assert _grand_totals(text) == [(str(len(charges)), _money(sum(charges, Decimal(0)), currency))
                                   for currency, charges in sorted(per_currency.items())]
