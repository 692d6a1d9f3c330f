"""What a process checks before it serves: outside demo mode, no built-in secret and no key generated on the fly.

The built-in hub and messaging secrets are public (they are in the source), so notifications signed with them can
be forged by anyone; a token signing key or a master key generated under ``data_dir/keys`` lives on one machine's
disk, is not backed up with the operator's secrets and differs between the processes of a scaled installation. In
demo mode (``openbss demo``, the test suite: ``OPENBSS_DEMO_MODE=true``) they are accepted; otherwise the API and the
worker refuse to start with a message naming each setting to provide.
"""

from __future__ import annotations

from openbss.settings import DEV_HUB_SECRET, DEV_MESSAGING_SECRET, DEV_SANDBOX_SECRET, MIN_SECRET_LENGTH, Settings


class InsecureConfiguration(RuntimeError):
    """The process would run with a built-in secret or a generated key outside demo mode."""


def _weak(value: str, builtin: str) -> str | None:
    if value == builtin:
        return "is the built-in development value"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def secret_problems(settings: Settings) -> list[str]:
    """Each setting that must be given before the process may run outside demo mode, with the reason."""
    if settings.demo_mode:
        return []
    problems: list[str] = []
    if reason := _weak(settings.hub_secret, DEV_HUB_SECRET):
        problems.append(f"OPENBSS_HUB_SECRET {reason} (it signs the notifications hub subscribers verify)")
    if reason := _weak(settings.messaging_webhook_secret, DEV_MESSAGING_SECRET):
        problems.append(f"OPENBSS_MESSAGING_WEBHOOK_SECRET {reason} (it signs the messages sent to the SMS/email "
                        "gateway)")
    if settings.payments_gateway == "sandbox" and (
            reason := _weak(settings.payments_sandbox_secret, DEV_SANDBOX_SECRET)):
        problems.append(f"OPENBSS_PAYMENTS_SANDBOX_SECRET {reason} (it signs the sandbox gateway's webhooks: a "
                        "forged one would mark payments paid)")
    if settings.payments_gateway == "stripe" and not settings.payments_stripe_webhook_secret:
        problems.append("OPENBSS_PAYMENTS_STRIPE_WEBHOOK_SECRET is not set (Stripe's webhooks could not be verified)")
    if not settings.jwt_private_key:
        problems.append("OPENBSS_JWT_PRIVATE_KEY is not set: the token signing key would be generated under "
                        f"{settings.keys_dir} (give a PEM private key, the same in every process)")
    if not (settings.master_keys or settings.master_key):
        problems.append("OPENBSS_MASTER_KEYS (or OPENBSS_MASTER_KEY) is not set: the master key of personal data "
                        f"would be generated under {settings.keys_dir} (give 'id:base64' of 32 random bytes)")
    return problems


def check_secrets(settings: Settings) -> None:
    """Raise ``InsecureConfiguration`` naming every missing or built-in secret, unless in demo mode."""
    problems = secret_problems(settings)
    if problems:
        raise InsecureConfiguration(
            "refusing to start outside demo mode (OPENBSS_DEMO_MODE is not true) with built-in or generated "
            "secrets:\n  - " + "\n  - ".join(problems)
            + "\nSet these in the environment (see docs/security.md), or run `openbss demo` to try OpenBSS.")


__all__ = ["InsecureConfiguration", "check_secrets", "secret_problems"]
