"""Settings of the Stripe processors (payment-, refund- and payout-process)."""

from __future__ import annotations

from jobkeeper.environment import choice, http_url, positive_seconds, section, setting
from jobkeeper.errors import ConfigError

STRIPE_PAYOUT_MODES = ("transfer", "payout")


def stripe_key(name: str, raw: str) -> str:
    if raw.startswith("pk_"):
        raise ConfigError(
            f"{name} must be a secret key (sk_…) or a restricted key (rk_…), not a publishable key"
        )
    if not raw.startswith(("sk_", "rk_")):
        raise ConfigError(f"{name} must be a Stripe secret key (sk_…) or restricted key (rk_…)")
    return raw


@section
class StripeSettings:
    stripe_api_key: str | None = setting("JOBKEEPER_STRIPE_API_KEY", stripe_key, default=None, secret=True)
    """Secret (sk_…) or restricted (rk_…) Stripe key; never printed."""
    stripe_api_base: str = setting("JOBKEEPER_STRIPE_API_BASE", http_url, default="https://api.stripe.com")
    stripe_timeout: float = setting("JOBKEEPER_STRIPE_TIMEOUT", positive_seconds, default=30.0)
    """Seconds a Stripe call may take to connect, and to answer, before it counts as a network error."""
    stripe_payout_mode: str = setting(
        "JOBKEEPER_STRIPE_PAYOUT_MODE", choice(STRIPE_PAYOUT_MODES), default="transfer"
    )
    """payout-process: `transfer` (platform balance to the venue's connected account) or `payout` (the
    connected account's balance to its bank account)."""
