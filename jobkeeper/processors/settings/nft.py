"""Settings of the Solana processor (nft-mint)."""

from __future__ import annotations

from pathlib import Path

from jobkeeper.environment import choice, http_url, positive_seconds, section, setting
from jobkeeper.errors import ConfigError

SOLANA_COMMITMENTS = ("processed", "confirmed", "finalized")


def keypair(name: str, raw: str) -> str:
    """A keypair file's path (checked to exist), or key material as given (checked by the nft processor)."""
    if raw.startswith("[") or not any(ch in raw for ch in "/.~\\"):
        return raw
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"{name} must be a keypair JSON file or a base58 secret key; {raw!r} is no file")
    return str(path)


@section
class SolanaSettings:
    solana_rpc_url: str | None = setting("JOBKEEPER_SOLANA_RPC_URL", http_url, default=None, secret=True)
    """JSON-RPC endpoint; never printed (providers put API keys in it)."""
    solana_keypair: str | None = setting("JOBKEEPER_SOLANA_KEYPAIR", keypair, default=None, secret=True)
    """Mint authority and fee payer: a solana-keygen JSON file's path, or the base58 secret key itself."""
    solana_commitment: str = setting(
        "JOBKEEPER_SOLANA_COMMITMENT", choice(SOLANA_COMMITMENTS), default="confirmed"
    )
    solana_timeout: float = setting("JOBKEEPER_SOLANA_TIMEOUT", positive_seconds, default=30.0)
    """Seconds each Solana RPC call may take before it counts as a network error."""
