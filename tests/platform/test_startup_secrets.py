"""Outside demo mode, the API and the worker refuse to start with the built-in hub and messaging secrets or with a
token signing key or master key generated on the fly; the message names each setting."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from openbss.platform.crypto import new_master_key
from openbss.platform.startup import InsecureConfiguration, check_secrets, secret_problems
from openbss.settings import Settings

PEM = "-----BEGIN PRIVATE KEY-----\nnot parsed by the check\n-----END PRIVATE KEY-----\n"


def production(**overrides: Any) -> Settings:
    kid, b64 = new_master_key()
    given: dict[str, Any] = {"demo_mode": False, "hub_secret": "h" * 32, "messaging_webhook_secret": "m" * 32,
                             "payments_sandbox_secret": "p" * 32, "jwt_private_key": PEM,
                             "master_keys": f"{kid}:{b64}"}
    return Settings(**{**given, **overrides})


def test_defaults_are_refused_outside_demo_mode(tmp_path: Path) -> None:
    settings = Settings(demo_mode=False, data_dir=tmp_path, jwt_private_key=None, master_key=None,
                        master_keys=None, hub_secret=Settings.model_fields["hub_secret"].default,
                        messaging_webhook_secret=Settings.model_fields["messaging_webhook_secret"].default,
                        payments_sandbox_secret=Settings.model_fields["payments_sandbox_secret"].default)
    problems = secret_problems(settings)
    named = [p.split(" ", 1)[0] for p in problems]
    assert named == ["OPENBSS_HUB_SECRET", "OPENBSS_MESSAGING_WEBHOOK_SECRET", "OPENBSS_PAYMENTS_SANDBOX_SECRET",
                     "OPENBSS_JWT_PRIVATE_KEY", "OPENBSS_MASTER_KEYS"], problems
    assert "built-in development value" in problems[0]
    with pytest.raises(InsecureConfiguration) as err:
        check_secrets(settings)
    for name in named:
        assert name in str(err.value)
    # demo mode (openbss demo, the test suite) accepts them
    check_secrets(settings.model_copy(update={"demo_mode": True}))


def test_each_secret_is_checked_on_its_own() -> None:
    assert secret_problems(production()) == []
    check_secrets(production())
    cases = {
        "OPENBSS_HUB_SECRET": {"hub_secret": "openbss-dev-hub-secret"},
        "OPENBSS_MESSAGING_WEBHOOK_SECRET": {"messaging_webhook_secret": "short"},
        "OPENBSS_PAYMENTS_SANDBOX_SECRET": {"payments_sandbox_secret": "openbss-dev-sandbox-secret"},
        "OPENBSS_PAYMENTS_STRIPE_WEBHOOK_SECRET": {"payments_gateway": "stripe"},
        "OPENBSS_JWT_PRIVATE_KEY": {"jwt_private_key": None},
        "OPENBSS_MASTER_KEYS": {"master_keys": None},
    }
    for name, override in cases.items():
        problems = secret_problems(production(**override))
        assert len(problems) == 1 and problems[0].startswith(name), (name, problems)
    # one master key (OPENBSS_MASTER_KEY) is as good as a keyring
    assert secret_problems(production(master_keys=None, master_key=new_master_key()[1])) == []


def test_the_app_factory_refuses_to_build() -> None:
    from openbss.app import create_app

    with pytest.raises(InsecureConfiguration, match="OPENBSS_HUB_SECRET"):
        create_app(production(hub_secret="openbss-dev-hub-secret"))


async def test_the_worker_refuses_to_run(rt: Any) -> None:
    from openbss.platform.worker import run_worker

    insecure = rt.settings.model_copy(update={"demo_mode": False})
    original, rt.settings = rt.settings, insecure
    try:
        with pytest.raises(InsecureConfiguration, match="OPENBSS_JWT_PRIVATE_KEY"):
            await run_worker(rt, asyncio.Event())
    finally:
        rt.settings = original


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_the_commands_exit_naming_the_settings(command: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBSS_")}
    env.update({"OPENBSS_DEMO_MODE": "false", "OPENBSS_DATA_DIR": str(tmp_path),
                "OPENBSS_HUB_SECRET": "a-long-enough-hub-secret"})
    proc = subprocess.run([str(Path(sys.executable).parent / "openbss"), command], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = " ".join(proc.stdout.split())
    for name in ("OPENBSS_MESSAGING_WEBHOOK_SECRET", "OPENBSS_JWT_PRIVATE_KEY", "OPENBSS_MASTER_KEYS"):
        assert name in out, out
    assert "OPENBSS_HUB_SECRET" not in out  # given
    assert not (tmp_path / "keys").exists()  # nothing generated before refusing
