"""nft-mint against a local Solana JSON-RPC server that verifies every transaction it is sent."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address
from solders.token.state import TokenAccount
from solders.transaction import Transaction

from jobkeeper import Client, ConfigError, PermanentError, Retry, Settings
from jobkeeper.processors import configuration_problems
from jobkeeper.processors.nft import processor as nft
from jobkeeper.processors.nft.processor import (
    NftProcessor,
    SolanaRejected,
    load_keypair,
    mint_address,
    ticket_seed,
)
from jobkeeper.processors.support import InvalidPayloadError, NotConfiguredError
from jobkeeper.providers.errors import ProviderError
from jobkeeper.worker.registry import Registry
from tests.processors.money import Conn, context, make_job, rescue, wait_for_status, worker_process
from tests.processors.solana_server import SolanaServer, preflight, solana_server
from tests.receivers import free_port

SOL = 1_000_000_000
AUTHORITY = Keypair()
BUYER = Keypair().pubkey()
TICKET = {"wallet": str(BUYER), "eventId": "event-42", "ticketId": "ticket-9"}
NO_WALLET = {"eventId": "event-42", "ticketId": "ticket-9"}


@pytest.fixture
def solana() -> Iterator[SolanaServer]:
    with solana_server() as server:
        server.fund(AUTHORITY.pubkey(), 10 * SOL)
        yield server


def solana_settings(server: SolanaServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "solana_rpc_url": server.url,
        "solana_keypair": str(AUTHORITY),
        "solana_commitment": "confirmed",
        "solana_timeout": 5.0,
        **overrides,
    }
    return Settings.from_env({}, **values)


@pytest.fixture
def processor(solana: SolanaServer) -> NftProcessor:
    return NftProcessor(solana_settings(solana), poll_interval=0.0)


async def mint(processor: NftProcessor, payload: Any = TICKET, **job: Any) -> dict[str, Any]:
    return await processor.nft_mint(payload, context(make_job("nft-mint", payload, **job)))


def methods(server: SolanaServer) -> list[str]:
    return [name for name, _ in server.calls]


async def test_a_ticket_is_minted_to_the_buyers_wallet_with_a_supply_of_one(
    solana: SolanaServer, processor: NftProcessor
) -> None:
    job = make_job("nft-mint", TICKET, key="nft:event-42:ticket-9")
    result = await processor.nft_mint(TICKET, context(job))

    assert solana.rejected == []
    (record,) = solana.mints
    expected_mint = mint_address(AUTHORITY.pubkey(), ticket_seed(job))
    token_account = get_associated_token_address(BUYER, expected_mint)
    assert result == {
        "signature": record.signature,
        "mint": str(expected_mint),
        "token_account": str(token_account),
        "owner": str(BUYER),
        "slot": solana.transactions[record.signature].slot,
        "commitment": "confirmed",
        "already_minted": False,
        "eventId": "event-42",
        "ticketId": "ticket-9",
    }
    assert (record.mint, record.owner, record.authority) == (
        str(expected_mint),
        str(BUYER),
        str(AUTHORITY.pubkey()),
    )
    held = TokenAccount.from_bytes(solana.accounts[str(token_account)].data)
    assert (held.owner, held.mint, held.amount) == (BUYER, expected_mint, 1)

    assert methods(solana) == [
        "getAccountInfo",
        "getMinimumBalanceForRentExemption",
        "getLatestBlockhash",
        "sendTransaction",
        "getSignatureStatuses",
    ]
    (sent,) = solana.method_calls("sendTransaction")
    assert sent[1] == {"encoding": "base64", "preflightCommitment": "confirmed", "maxRetries": 0}
    transaction = Transaction.from_bytes(base64.b64decode(sent[0]))
    assert transaction.message.account_keys[0] == AUTHORITY.pubkey()  # the authority pays and signs
    assert str(transaction.signatures[0]) == record.signature
    (checked,) = solana.method_calls("getAccountInfo")
    assert checked == [str(expected_mint), {"encoding": "base64", "commitment": "confirmed"}]


async def test_running_the_job_again_finds_the_mint_on_chain_and_mints_nothing(
    solana: SolanaServer, processor: NftProcessor
) -> None:
    job = make_job("nft-mint", TICKET)
    first = await processor.nft_mint(TICKET, context(job))
    again = await processor.nft_mint(TICKET, context(dataclasses.replace(job, attempts=2)))
    # A dead letter's replay is a new job with the same key: the same mint, for ever (no key expiry).
    replay = await processor.nft_mint(TICKET, context(dataclasses.replace(job, id=uuid.uuid4())))

    assert len(solana.mints) == 1
    assert again == replay == {**first, "already_minted": True}
    assert len(solana.method_calls("sendTransaction")) == 1


async def test_each_tenant_and_key_gets_its_own_mint(solana: SolanaServer, processor: NftProcessor) -> None:
    await mint(processor, key="nft:event-42:seat-1")
    await mint(processor, key="nft:event-42:seat-2")
    await mint(processor, key="nft:event-42:seat-1", tenant=uuid.uuid4())
    assert len({record.mint for record in solana.mints}) == 3
    assert solana.rejected == []


async def test_a_mint_racing_an_unconfirmed_earlier_attempt_is_settled_without_a_second_mint(
    solana: SolanaServer, processor: NftProcessor
) -> None:
    solana.auto_confirm = False  # nothing reaches `confirmed` until confirm_all()
    job = make_job("nft-mint", TICKET)

    # Attempt 1 sends the mint; it stays unconfirmed until its blockhash expires.
    with pytest.raises(ProviderError) as expired:
        await processor.nft_mint(TICKET, context(job))
    assert expired.value.retryable
    assert expired.value.code == "BlockhashExpired"
    # Attempt 2 does not see it at `confirmed`, sends again, and the System program refuses: in use.
    with pytest.raises(Retry, match="earlier attempt"):
        await processor.nft_mint(TICKET, context(dataclasses.replace(job, attempts=2)))
    # Once the first transaction is confirmed, attempt 3 completes with it.
    solana.confirm_all()
    result = await processor.nft_mint(TICKET, context(dataclasses.replace(job, attempts=3)))

    (record,) = solana.mints
    assert result["already_minted"] is True
    assert result["signature"] == record.signature
    assert len(solana.method_calls("sendTransaction")) == 2


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"http_status": 429}, "429"),
        ({"http_status": 502}, "502"),
        ({"http_status": 503}, "503"),
        (
            {"rpc_error": {"code": -32005, "message": "Node is unhealthy", "data": {"numSlotsBehind": 40}}},
            "-32005",
        ),
        ({"rpc_error": {"code": -32603, "message": "Internal error"}}, "-32603"),
        (
            {
                "method": "sendTransaction",
                "rpc_error": preflight("BlockhashNotFound", "Blockhash not found").error,
            },
            "BlockhashNotFound",
        ),
    ],
)
async def test_transient_rpc_failures_are_retried(
    solana: SolanaServer, processor: NftProcessor, fault: dict[str, Any], code: str
) -> None:
    solana.fail_next(**fault)
    with pytest.raises(ProviderError) as caught:
        await mint(processor)
    assert caught.value.retryable
    assert caught.value.code == code
    assert (await mint(processor))["already_minted"] is False  # the next run mints, once
    assert len(solana.mints) == 1


async def test_retry_after_is_honoured(solana: SolanaServer, processor: NftProcessor) -> None:
    solana.fail_next(http_status=429, headers={"Retry-After": "3"})
    with pytest.raises(Retry) as caught:
        await mint(processor)
    assert caught.value.after == 3.0


async def test_invalid_params_fail_permanently(solana: SolanaServer, processor: NftProcessor) -> None:
    solana.fail_next("getAccountInfo", rpc_error={"code": -32602, "message": "Invalid params: invalid type"})
    with pytest.raises(SolanaRejected, match="-32602") as caught:
        await mint(processor)
    assert isinstance(caught.value, PermanentError)
    assert caught.value.code == "-32602"


async def test_an_authority_without_funds_fails_permanently(solana: SolanaServer) -> None:
    poor = Keypair()
    solana.fund(poor.pubkey(), 1000)
    for keypair, code in ((Keypair(), "AccountNotFound"), (poor, "InsufficientFundsForFee")):
        processor = NftProcessor(solana_settings(solana, solana_keypair=str(keypair)), poll_interval=0.0)
        with pytest.raises(SolanaRejected, match=code) as caught:
            await mint(processor)
        assert caught.value.code == code
    assert solana.mints == []


async def test_a_refused_connection_is_a_retryable_network_error() -> None:
    settings = Settings.from_env(
        {}, solana_rpc_url=f"http://127.0.0.1:{free_port()}", solana_keypair=str(AUTHORITY)
    )
    with pytest.raises(ProviderError) as caught:
        await mint(NftProcessor(settings))
    assert caught.value.retryable
    assert caught.value.code == "network"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (NO_WALLET, "wallet"),
        (NO_WALLET | {"wallet": "not-an-address"}, "wallet"),
        (NO_WALLET | {"wallet": 7}, "wallet"),
        ("x", ""),
    ],
)
async def test_a_payload_without_a_usable_wallet_fails_permanently(
    solana: SolanaServer, processor: NftProcessor, payload: Any, field: str
) -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        await mint(processor, payload)
    assert caught.value.field == field
    assert solana.calls == []


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"solana_keypair": str(AUTHORITY)}, "JOBKEEPER_SOLANA_RPC_URL"),
        ({"solana_rpc_url": "http://127.0.0.1:9"}, "JOBKEEPER_SOLANA_KEYPAIR"),
        (
            {"solana_rpc_url": "http://127.0.0.1:9", "solana_keypair": "notakey"},
            "JOBKEEPER_SOLANA_KEYPAIR is unusable",
        ),
    ],
)
async def test_an_unconfigured_solana_fails_the_job_permanently_naming_the_setting(
    overrides: dict[str, Any], setting: str
) -> None:
    processor = NftProcessor(Settings.from_env({}, **overrides))
    with pytest.raises(NotConfiguredError, match=setting) as caught:
        await mint(processor)
    assert isinstance(caught.value, PermanentError)
    assert str(AUTHORITY) not in str(caught.value)


def test_the_keypair_is_read_from_a_solana_keygen_file_or_base58(tmp_path: Path) -> None:
    path = tmp_path / "authority.json"
    path.write_text(json.dumps(list(bytes(AUTHORITY))))
    assert load_keypair(str(path)) == AUTHORITY
    assert load_keypair(str(AUTHORITY)) == AUTHORITY
    assert load_keypair(path.read_text()) == AUTHORITY
    with pytest.raises(ValueError, match="cannot read"):
        load_keypair(str(tmp_path / "missing.json"))
    settings = Settings.from_env({"JOBKEEPER_SOLANA_KEYPAIR": str(path)})
    assert settings.solana_keypair == str(path)
    assert str(AUTHORITY) not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("JOBKEEPER_SOLANA_COMMITMENT", "confirm", "did you mean 'confirmed'"),
        ("JOBKEEPER_SOLANA_RPC_URL", "localhost:8899", "http"),
        ("JOBKEEPER_SOLANA_KEYPAIR", "/nowhere/id.json", "no file"),
    ],
)
def test_solana_settings_are_validated(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({variable: value})


def test_configuration_problems_name_the_missing_settings() -> None:
    registry = Registry()
    nft.register(registry)
    problems = configuration_problems(registry, Settings.from_env({}))
    assert problems == {
        "nft-mint": [
            "JOBKEEPER_SOLANA_RPC_URL is not set",
            "JOBKEEPER_SOLANA_KEYPAIR is not set (the mint authority's keypair)",
        ]
    }
    configured = Settings.from_env({}, solana_rpc_url="http://127.0.0.1:9", solana_keypair=str(AUTHORITY))
    assert configuration_problems(registry, configured) == {}


# -- through a worker ---------------------------------------------------------------------------------------


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Conn]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        yield conn


async def test_a_worker_killed_after_the_mint_was_sent_does_not_mint_again(
    client: Client, db: Conn, db_url: str, settings: Settings, solana: SolanaServer
) -> None:
    job = await client.enqueue("nft-mint", TICKET, queue="money")
    env = {
        "JOBKEEPER_SOLANA_RPC_URL": solana.url,
        "JOBKEEPER_SOLANA_KEYPAIR": str(AUTHORITY),
        "JOBKEEPER_SOLANA_COMMITMENT": "confirmed",
    }
    solana.hold_effects()  # the ledger records the mint, then the RPC does not answer until released

    with worker_process(db_url, env) as first:
        sent = await asyncio.to_thread(solana.effect_recorded.wait, 30)
        assert sent, "the worker never sent the mint"
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, 10)
    solana.release.set()
    assert len(solana.mints) == 1
    assert (await wait_for_status(db, job.id, "processing"))["result"] is None

    await rescue(db, db_url, settings)

    with worker_process(db_url, env) as second:
        row = await wait_for_status(db, job.id, "completed", timeout=30)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 20) == 0

    (record,) = solana.mints
    assert row["result"]["signature"] == record.signature
    assert row["result"]["already_minted"] is True
    assert row["result"]["mint"] == record.mint
    assert row["result"]["owner"] == str(BUYER)
    assert len(solana.method_calls("sendTransaction")) == 1
    assert solana.rejected == []
    assert Pubkey.from_string(record.mint) == mint_address(AUTHORITY.pubkey(), row_seed(row))


def row_seed(row: dict[str, Any]) -> str:
    return ticket_seed(
        make_job("nft-mint", row["payload"], key=row["idempotency_key"], tenant=row["tenant_id"])
    )
