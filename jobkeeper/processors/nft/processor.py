"""`nft-mint`: mints a ticket as a Solana NFT to the buyer's wallet, with `solders` and the SPL Token
instruction builders of the `solana` package, over JSON-RPC.

Design: one SPL Token mint per ticket, with 0 decimals and a supply of exactly 1. One transaction, signed
by the configured authority (fee payer and mint authority), does everything or nothing:

1. System `CreateAccountWithSeed`: the mint account, at an address derived from the authority, a seed
   made of the job's tenant and idempotency key, and the Token program;
2. Token `InitializeMint2` (0 decimals, the authority as mint authority, no freeze authority);
3. Associated Token Account `CreateIdempotent`: the buyer's token account for this mint;
4. Token `MintTo`: 1 token to that account;
5. Token `SetAuthority` (MintTokens → none): nobody can ever mint more; the supply stays 1.

Exactly once (docs/concepts.md#exactly-once-effects): the mint's address is a function of (authority, tenant,
idempotency key), so the same ticket always maps to the same account, and the System program refuses to create
an account that exists. Before minting, the processor reads that account at the configured commitment: if the
ticket's mint is there, the job completes with it (and the signature that created it) without sending
anything. A transaction that raced a still-unconfirmed earlier one fails with "account already in use" and is
settled the same way. A re-run after a crash, a timeout or a replayed dead letter therefore never mints twice,
with no time limit.

RPC errors are classified like Stripe's: network errors, timeouts, 429, 5xx, unhealthy nodes and an
expired or unknown blockhash retry (the queue's backoff applies; `Retry-After` is honoured); invalid
parameters, a bad signature, an unusable wallet address and insufficient funds fail the job permanently
(`SolanaRejected`, a `PermanentError` keeping the RPC error code).

Payload (`payload.py`): `wallet`, the buyer's wallet address, base58. eventId, ticketId and seatId are kept
in the result.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import itertools
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import create_account_with_seed
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    initialize_mint2,
    mint_to,
    set_authority,
)
from spl.token.models import AuthorityType, InitializeMint2Params, MintToParams, SetAuthorityParams

from jobkeeper.config import Settings
from jobkeeper.errors import Retry
from jobkeeper.processors.nft.payload import JOB_TYPE, NftMint
from jobkeeper.processors.support import (
    InvalidPayloadError,
    NotConfiguredError,
    ProviderRejectedError,
    SettingsSource,
    check,
    parse,
)
from jobkeeper.providers.errors import ProviderError, transport_error
from jobkeeper.types import Job
from jobkeeper.worker.context import JobContext
from jobkeeper.worker.registry import Registry

QUEUE = "money"
MINT_SIZE = 82
"""Bytes of an SPL Token mint account."""
SEED_BYTES = 24
"""A seed is at most 32 characters: 24 bytes of a SHA-256, base64url, are exactly 32."""
POLL_INTERVAL = 0.5
"""Seconds between signature status checks while a transaction confirms."""
COMMITMENT_ORDER = {"processed": 0, "confirmed": 1, "finalized": 2}
ACCOUNT_ALREADY_IN_USE = 0
"""System program error 0: the account to create exists already."""
PERMANENT_RPC_CODES = frozenset({-32700, -32600, -32601, -32602, -32003})
"""Parse error, invalid request, unknown method, invalid params, signature verification failure. Every
other RPC error describes the node's state and is retried: -32004 block not available, -32005 node
unhealthy or behind, -32007/-32009 slot skipped, -32014 block status not yet available, -32016 minimum
context slot not reached, -32603 internal error, and codes this module does not know."""
RETRYABLE_TX_ERRORS = frozenset(
    {
        "BlockhashNotFound",
        "AccountInUse",
        "ClusterMaintenance",
        "WouldExceedMaxBlockCostLimit",
        "WouldExceedMaxAccountCostLimit",
        "WouldExceedAccountDataBlockLimit",
        "TooManyAccountLocks",
    }
)


class SolanaRejected(ProviderRejectedError):
    """The cluster refused the mint for good (a `PermanentError`); `code` is the RPC error code or the
    transaction error's name."""

    def __init__(self, message: str, *, code: str | None) -> None:
        super().__init__("solana", code, message)


class RpcError(Exception):
    """A JSON-RPC error object, before classification."""

    def __init__(self, method: str, code: int, message: str, data: Any) -> None:
        super().__init__(f"{method}: RPC error {code}: {message}")
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data

    @property
    def transaction_error(self) -> Any:
        """The transaction error of a failed preflight simulation (-32002), if any."""
        return self.data.get("err") if isinstance(self.data, Mapping) else None


@dataclass(frozen=True, slots=True)
class SolanaConfig:
    rpc_url: str
    authority: Keypair
    commitment: str
    timeout: float

    @classmethod
    def of(cls, settings: Settings) -> SolanaConfig:
        """The settings nft-mint needs; `NotConfiguredError` (permanent) naming what is missing or bad."""
        found = problems(settings)[JOB_TYPE]
        if found or not settings.solana_rpc_url or not settings.solana_keypair:
            raise NotConfiguredError(JOB_TYPE, found)
        authority = load_keypair(settings.solana_keypair)
        return cls(settings.solana_rpc_url, authority, settings.solana_commitment, settings.solana_timeout)


def load_keypair(value: str) -> Keypair:
    """A keypair from a solana-keygen JSON file (an array of 64 numbers), that JSON itself, or base58."""
    text = value.strip()
    if not text.startswith("[") and any(ch in text for ch in "/.~\\"):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read keypair file {str(path)!r}: {exc.strerror}") from None
    try:
        if text.startswith("["):
            numbers = json.loads(text)
            if not isinstance(numbers, list) or len(numbers) != 64:
                raise ValueError("a keypair file holds a JSON array of 64 numbers")
            return Keypair.from_bytes(bytes(numbers))
        return Keypair.from_base58_string(text)
    except ValueError:
        raise
    except Exception as exc:  # solders raises its own error types for malformed keys
        raise ValueError(f"not a keypair ({type(exc).__name__}); the secret is not shown") from None


def problems(settings: Settings) -> dict[str, list[str]]:
    """What keeps nft-mint from running, for the check at worker start."""
    found: list[str] = []
    if not settings.solana_rpc_url:
        found.append("JOBKEEPER_SOLANA_RPC_URL is not set")
    if not settings.solana_keypair:
        found.append("JOBKEEPER_SOLANA_KEYPAIR is not set (the mint authority's keypair)")
    else:
        try:
            load_keypair(settings.solana_keypair)
        except ValueError as exc:
            found.append(f"JOBKEEPER_SOLANA_KEYPAIR is unusable: {exc}")
    return {JOB_TYPE: found}


def register(
    registry: Registry, settings: Settings | None = None, *, poll_interval: float = POLL_INTERVAL
) -> None:
    """Register nft-mint unless `registry` has a handler for it already.

    Without `settings`, they are read from the environment when the first job runs.
    """
    if JOB_TYPE not in registry:
        registry.task(JOB_TYPE, queue=QUEUE)(NftProcessor(settings, poll_interval=poll_interval).nft_mint)


def ticket_seed(job: Job) -> str:
    """The seed of the ticket's mint address: the same for every run of the job and for a replay of its
    dead letter, different per tenant and per idempotency key."""
    effect = job.idempotency_key or f"job:{job.id}"
    digest = hashlib.sha256(f"jobkeeper-nft\n{job.tenant_id}\n{effect}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:SEED_BYTES]).decode("ascii")


def mint_address(authority: Pubkey, seed: str) -> Pubkey:
    return Pubkey.create_with_seed(authority, seed, TOKEN_PROGRAM_ID)


def mint_instructions(authority: Pubkey, owner: Pubkey, seed: str, rent_lamports: int) -> list[Instruction]:
    """The five instructions of a ticket's mint (see the module's docstring)."""
    mint = mint_address(authority, seed)
    token_account = get_associated_token_address(owner, mint)
    return [
        create_account_with_seed(
            {
                "from_pubkey": authority,
                "to_pubkey": mint,
                "base": authority,
                "seed": seed,
                "lamports": rent_lamports,
                "space": MINT_SIZE,
                "owner": TOKEN_PROGRAM_ID,
            }
        ),
        initialize_mint2(
            InitializeMint2Params(
                decimals=0,
                program_id=TOKEN_PROGRAM_ID,
                mint=mint,
                mint_authority=authority,
                freeze_authority=None,
            )
        ),
        create_idempotent_associated_token_account(payer=authority, owner=owner, mint=mint),
        mint_to(
            MintToParams(
                program_id=TOKEN_PROGRAM_ID, mint=mint, dest=token_account, mint_authority=authority, amount=1
            )
        ),
        set_authority(
            SetAuthorityParams(
                program_id=TOKEN_PROGRAM_ID,
                account=mint,
                authority=AuthorityType.MINT_TOKENS,
                current_authority=authority,
                new_authority=None,
            )
        ),
    ]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Loading the CA certificates takes tens of milliseconds: once per process, not per job."""
    return ssl.create_default_context()


class SolanaRpc:
    """A JSON-RPC client with a timeout per call; transport and HTTP errors are classified here."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self._http = httpx.AsyncClient(timeout=timeout, verify=_tls_context())
        self._ids = itertools.count(1)

    async def __aenter__(self) -> SolanaRpc:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def call(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = await self._http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise transport_error("solana", exc) from exc
        # 429/503 with Retry-After: Retry; 408/409/425/429/5xx: retryable; any other non-2xx: permanent.
        check("solana", response)
        try:
            answer = response.json()
        except ValueError as exc:
            # A proxy's error page answered with 200: the node may be fine in a moment.
            raise ProviderError(
                "solana", f"{method}: the answer is not JSON", retryable=True, code="bad_response"
            ) from exc
        if not isinstance(answer, Mapping):
            raise ProviderError("solana", f"{method}: unexpected answer", retryable=True, code="bad_response")
        error = answer.get("error")
        if error is not None:
            if not isinstance(error, Mapping):
                raise ProviderError(
                    "solana", f"{method}: malformed error {error!r}", retryable=True, code="bad_response"
                )
            raise RpcError(
                method, int(error.get("code", 0)), str(error.get("message", "")), error.get("data")
            )
        return answer.get("result")


def classify(exc: RpcError) -> Exception:
    """The job outcome of an RPC error (other than "account already in use", settled by the caller)."""
    tx_error = exc.transaction_error
    if tx_error is not None:
        name = _error_name(tx_error)
        message = f"{exc.method}: transaction rejected: {json.dumps(tx_error)} ({exc.rpc_message})"
        if name in RETRYABLE_TX_ERRORS:
            return ProviderError("solana", message, retryable=True, code=name)
        return SolanaRejected(f"solana: {message}", code=name)
    message = str(exc)
    if exc.code in PERMANENT_RPC_CODES:
        return SolanaRejected(f"solana: {message}", code=str(exc.code))
    if "blockhash not found" in exc.rpc_message.lower():
        return ProviderError("solana", message, retryable=True, code="BlockhashNotFound")
    if "insufficient funds" in exc.rpc_message.lower():
        return SolanaRejected(f"solana: {message}", code="InsufficientFunds")
    return ProviderError("solana", message, retryable=True, code=str(exc.code))


def _error_name(tx_error: Any) -> str:
    if isinstance(tx_error, str):
        return tx_error
    if isinstance(tx_error, Mapping) and tx_error:
        return str(next(iter(tx_error)))
    return "TransactionError"


def _account_in_use(tx_error: Any) -> bool:
    """`{"InstructionError": [0, {"Custom": 0}]}`: the first instruction found the mint account existing."""
    if not isinstance(tx_error, Mapping):
        return False
    detail = tx_error.get("InstructionError")
    return (
        isinstance(detail, list)
        and len(detail) == 2
        and detail[0] == 0
        and isinstance(detail[1], Mapping)
        and detail[1].get("Custom") == ACCOUNT_ALREADY_IN_USE
    )


@dataclass(frozen=True, slots=True)
class Minted:
    mint: Pubkey
    token_account: Pubkey
    signature: str | None
    slot: int | None


class NftProcessor:
    def __init__(self, settings: Settings | None = None, *, poll_interval: float = POLL_INTERVAL) -> None:
        self._settings = SettingsSource(settings)
        self._config: SolanaConfig | None = None
        self.poll_interval = poll_interval

    def config(self) -> SolanaConfig:
        # Handlers of one worker share its event loop: no lock is needed.
        if self._config is None:
            self._config = SolanaConfig.of(self._settings.get(JOB_TYPE))
        return self._config

    async def nft_mint(self, payload: Any, ctx: JobContext) -> dict[str, Any]:
        config = self.config()
        data = parse(NftMint, payload)
        owner = _wallet(data.wallet)
        authority = config.authority.pubkey()
        seed = ticket_seed(ctx.job)
        mint = mint_address(authority, seed)
        token_account = get_associated_token_address(owner, mint)
        async with SolanaRpc(config.rpc_url, config.timeout) as rpc:
            try:
                existing = await self._find(rpc, config, mint, token_account)
                if existing is not None:
                    ctx.logger.info("ticket mint %s exists already; not minting again", mint)
                    return _result(existing, owner, config, data, already_minted=True)
                minted = await self._mint(rpc, config, owner, seed, mint, token_account, ctx)
            except RpcError as exc:
                raise classify(exc) from exc
        ctx.logger.info("minted ticket %s to %s: %s", mint, owner, minted.signature)
        return _result(minted, owner, config, data, already_minted=False)

    async def _find(
        self, rpc: SolanaRpc, config: SolanaConfig, mint: Pubkey, token_account: Pubkey
    ) -> Minted | None:
        """The ticket's mint, when it exists at the configured commitment, with the signature that made it."""
        info = await rpc.call(
            "getAccountInfo", [str(mint), {"encoding": "base64", "commitment": config.commitment}]
        )
        value = info.get("value") if isinstance(info, Mapping) else None
        if value is None:
            return None
        if value.get("owner") != str(TOKEN_PROGRAM_ID):
            raise SolanaRejected(
                f"solana: account {mint} exists but is not a token mint (owner {value.get('owner')})",
                code="UnexpectedAccount",
            )
        state = Mint.from_bytes(base64.b64decode(value["data"][0]))
        if not state.is_initialized or state.supply != 1 or state.decimals != 0:
            raise SolanaRejected(
                f"solana: mint {mint} exists with supply {state.supply} and {state.decimals} decimals, "
                "not as one ticket",
                code="UnexpectedAccount",
            )
        # getSignaturesForAddress serves `confirmed` at the lowest.
        history = "finalized" if config.commitment == "finalized" else "confirmed"
        signatures = await rpc.call(
            "getSignaturesForAddress", [str(mint), {"limit": 1000, "commitment": history}]
        )
        created = [s for s in signatures or [] if isinstance(s, Mapping) and s.get("err") is None]
        first = created[-1] if created else None  # newest first: the last one created the mint
        return Minted(
            mint,
            token_account,
            str(first["signature"]) if first else None,
            int(first["slot"]) if first and first.get("slot") is not None else None,
        )

    async def _mint(
        self,
        rpc: SolanaRpc,
        config: SolanaConfig,
        owner: Pubkey,
        seed: str,
        mint: Pubkey,
        token_account: Pubkey,
        ctx: JobContext,
    ) -> Minted:
        authority = config.authority
        rent = int(
            await rpc.call(
                "getMinimumBalanceForRentExemption", [MINT_SIZE, {"commitment": config.commitment}]
            )
        )
        latest = await rpc.call("getLatestBlockhash", [{"commitment": config.commitment}])
        blockhash = Hash.from_string(latest["value"]["blockhash"])
        last_valid = int(latest["value"]["lastValidBlockHeight"])
        instructions = mint_instructions(authority.pubkey(), owner, seed, rent)
        message = Message.new_with_blockhash(instructions, authority.pubkey(), blockhash)
        transaction = Transaction([authority], message, blockhash)
        signature = str(transaction.signatures[0])
        ctx.logger.info("sending ticket mint %s (transaction %s)", mint, signature)
        try:
            await rpc.call(
                "sendTransaction",
                [
                    base64.b64encode(bytes(transaction)).decode("ascii"),
                    {"encoding": "base64", "preflightCommitment": config.commitment, "maxRetries": 0},
                ],
            )
        except RpcError as exc:
            if exc.transaction_error == "AlreadyProcessed":
                pass  # this very transaction landed already: confirm it below
            elif _account_in_use(exc.transaction_error):
                return await self._settle_race(rpc, config, mint, token_account)
            else:
                raise
        slot = await self._confirm(rpc, config, signature, last_valid, mint, token_account)
        if isinstance(slot, Minted):
            return slot
        return Minted(mint, token_account, signature, slot)

    async def _settle_race(
        self, rpc: SolanaRpc, config: SolanaConfig, mint: Pubkey, token_account: Pubkey
    ) -> Minted:
        """Our mint account exists, made by an earlier run's transaction: use it once it is visible."""
        existing = await self._find(rpc, config, mint, token_account)
        if existing is not None:
            return existing
        raise Retry(
            after=2.0,
            reason=f"solana: mint {mint} is being created by an earlier attempt; checking again once it is "
            f"{config.commitment}",
        )

    async def _confirm(
        self,
        rpc: SolanaRpc,
        config: SolanaConfig,
        signature: str,
        last_valid: int,
        mint: Pubkey,
        token_account: Pubkey,
    ) -> int | Minted:
        """Wait until the transaction reaches the commitment (its slot), fails, or its blockhash expires."""
        wanted = COMMITMENT_ORDER[config.commitment]
        while True:
            statuses = await rpc.call(
                "getSignatureStatuses", [[signature], {"searchTransactionHistory": False}]
            )
            status = (statuses.get("value") or [None])[0] if isinstance(statuses, Mapping) else None
            if status is not None:
                if status.get("err") is not None:
                    error = status["err"]
                    if _account_in_use(error):
                        return await self._settle_race(rpc, config, mint, token_account)
                    raise classify(
                        RpcError("getSignatureStatuses", -32002, "transaction failed", {"err": error})
                    )
                reached = COMMITMENT_ORDER.get(str(status.get("confirmationStatus")), -1)
                if reached >= wanted:
                    return int(status.get("slot") or 0)
            height = int(await rpc.call("getBlockHeight", [{"commitment": config.commitment}]))
            if height > last_valid:
                # The transaction can no longer land; it may have, just before. Look, then retry if not.
                existing = await self._find(rpc, config, mint, token_account)
                if existing is not None:
                    return existing
                raise ProviderError(
                    "solana",
                    f"transaction {signature} expired (block height {height} > {last_valid}) unconfirmed",
                    retryable=True,
                    code="BlockhashExpired",
                )
            await asyncio.sleep(self.poll_interval)


def _wallet(address: str) -> Pubkey:
    try:
        return Pubkey.from_string(address)
    except ValueError:
        # The model checked for 32 bytes of base58; solders is the final judge of a public key.
        raise InvalidPayloadError("wallet", f"is not a Solana address: {address!r}") from None


def _result(
    minted: Minted, owner: Pubkey, config: SolanaConfig, data: NftMint, *, already_minted: bool
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "signature": minted.signature,
        "mint": str(minted.mint),
        "token_account": str(minted.token_account),
        "owner": str(owner),
        "slot": minted.slot,
        "commitment": config.commitment,
        "already_minted": already_minted,
    }
    for key, value in (("eventId", data.eventId), ("ticketId", data.ticketId), ("seatId", data.seatId)):
        if value is not None:
            result[key] = value
    return result
