"""The rating commands: ingest files (a progress bar, each file once), the watched directory, the suspense queue
(correct and re-process) and the reconciliation report."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from openbss.cli import app as cli
from tests.charging.helpers import open_account
from tests.rating.helpers import at, call, csv_file, jsonl_file, rec, usage_of


class Out:
    def __init__(self, result: Any) -> None:
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())  # the console wraps long lines


async def invoke(*args: str) -> Out:
    return Out(await asyncio.to_thread(CliRunner().invoke, cli, list(args)))


async def test_ingest_suspense_and_report(rt: Any, tenant: str, tmp_path: Path) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    a, b = tmp_path / "msc-1.csv", tmp_path / "msc-2.jsonl"
    a.write_bytes(csv_file([rec("1", acc["msisdn"], at(2), "voice", 120), rec("2", "+33600000077", at(2))]))
    b.write_bytes(jsonl_file([rec("3", acc["msisdn"], at(3), "sms", 1), rec("1", acc["msisdn"], at(2), "voice", 120,
                                                                           origin="files")]))
    out = await invoke("rating", "ingest", str(a), str(b), "--tenant", tenant)
    assert out.exit_code == 0, out.output
    assert "msc-1.csv: rated received 2 = rated 1 + duplicate 0 + rejected 0 + suspended 1; 1.20 EUR" in out.output
    assert "msc-2.jsonl: rated received 2 = rated 1 + duplicate 1 + rejected 0 + suspended 0; 0.10 EUR" in out.output
    out = await invoke("rating", "ingest", str(a), "--tenant", tenant)
    assert "msc-1.csv: duplicate file, nothing changed" in out.output

    out = await invoke("rating", "suspense", "--tenant", tenant)
    assert out.exit_code == 0 and "unknown number" in out.output and "msisdn=33600000077" in out.output, out.output
    [held] = await call(rt, tenant, "suspense")
    out = await invoke("rating", "suspense", "--tenant", tenant, "--reprocess", "--record", str(held["id"]),
                       "--fix", f"msisdn={acc['msisdn']}")
    assert "rated 1, duplicate 0, still pending 0" in out.output, out.output
    assert len(await usage_of(rt, tenant, acc["id"])) == 3

    # guiding: the number's owner from a moment on
    out = await invoke("rating", "assign-number", "+33600000077", "--tenant", tenant, "--account", acc["id"],
                       "--from", "2026-11-01T00:00:00+00:00")
    assert out.exit_code == 0 and "is used by charging account" in out.output, out.output
    out = await invoke("rating", "assign-number", "+33600000077", "--tenant", tenant, "--account", "nope",
                       "--from", "2026-11-02T00:00:00Z")
    assert out.exit_code == 1 and "charging account 'nope' not found" in out.output
    out = await invoke("rating", "report", "--tenant", tenant)
    assert out.exit_code == 0, out.output
    assert out.output.count("yes") == 2 and "NO" not in out.output


async def test_watched_directory(rt: Any, tenant: str, tmp_path: Path) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    (tmp_path / "pgw-7.csv").write_bytes(csv_file([rec("p1", acc["msisdn"], at(4))]))
    (tmp_path / "pgw-8.csv.part").write_bytes(b"still being written")
    (tmp_path / "garbage.csv").write_bytes(b"\xff\xfe not text")
    out = await invoke("rating", "collect", str(tmp_path), "--tenant", tenant, "--source", "pgw")
    assert out.exit_code == 0, out.output
    assert "pgw-7.csv: rated received 1 = rated 1" in out.output and "not UTF-8" in out.output
    assert (tmp_path / "processed" / "pgw-7.csv").exists() and (tmp_path / "pgw-8.csv.part").exists()
    assert "not UTF-8" in (tmp_path / "failed" / "garbage.csv.reason").read_text()
    # the same file dropped again: a duplicate, nothing changes
    (tmp_path / "pgw-7.csv").write_bytes((tmp_path / "processed" / "pgw-7.csv").read_bytes())
    out = await invoke("rating", "collect", str(tmp_path), "--tenant", tenant, "--source", "pgw")
    assert "pgw-7.csv: duplicate file, nothing changed" in out.output
    assert len(await usage_of(rt, tenant, acc["id"])) == 1


async def test_rerate_and_assign_imsi(rt: Any, tenant: str, tmp_path: Path) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    out = await invoke("rating", "assign-imsi", "208010000000042", "--tenant", tenant, "--account", acc["id"],
                       "--from", "2026-11-01T00:00:00Z")
    assert out.exit_code == 0 and "IMSI 208010000000042 is used by charging account" in out.output, out.output
    out = await invoke("rating", "assign-imsi", "12", "--tenant", tenant, "--account", acc["id"],
                       "--from", "2026-11-02T00:00:00Z")
    assert out.exit_code == 1 and "not 6 to 15 digits" in out.output, out.output
    f = tmp_path / "pgw.jsonl"
    f.write_bytes(jsonl_file([rec("1", "+33600000078", at(2), imsi="208010000000042")]))  # guided by the SIM
    out = await invoke("rating", "ingest", str(f), "--tenant", tenant)
    assert "rated 1" in out.output, out.output
    args = ("rating", "rerate", "--tenant", tenant, "--period", "2026-11", "--job", "j-1", "--account", acc["id"])
    out = await invoke(*args)
    assert out.exit_code == 0 and "re-rate job j-1 (2026-11): 1 records of 1 accounts, 0 changed" in out.output, \
        out.output
    assert "difference 0.00" in out.output
    out = await invoke(*args)
    assert "already run: nothing written" in out.output, out.output
    out = await invoke("rating", "rerate", "--tenant", tenant, "--period", "2026-11", "--job", "j-2")
    assert out.exit_code == 1 and "either 'accountId' or 'tariffId'" in out.output, out.output
