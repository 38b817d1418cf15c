"""A local Solana JSON-RPC server: the methods nft-mint calls, over an in-memory ledger (loopback only).

`sendTransaction` does what a validator's preflight and execution would do with a ticket mint, and checks
what the processor must get right:
- the transaction is deserialised with solders, every signature is verified, and its blockhash must be
  one this server handed out (else `BlockhashNotFound`);
- the fee payer must exist and afford the fee and the rent (else `AccountNotFound` /
  `InsufficientFundsForFee`);
- the instructions must be exactly: System CreateAccountWithSeed (the address derived from base, seed
  and the Token program; 82 bytes; rent-exempt), Token InitializeMint2 (0 decimals, the signer as
  authority, no freeze authority), Associated Token Account CreateIdempotent (the owner's ATA of the
  mint), Token MintTo (1 token to that ATA), Token SetAuthority (MintTokens to none). They are decoded
  by hand from the raw bytes and by the `solana` package's decoders; anything else is rejected and kept
  in `rejected`, so a test can assert there was none;
- an existing mint account makes the first instruction fail with `{"Custom": 0}` (account in use), as
  the System program does; a resent transaction is `AlreadyProcessed`.

Effects are recorded once in `mints`. Faults on demand: `fail_next(...)` answers a method with an HTTP
status or a JSON-RPC error; `hold_effects()` makes `sendTransaction` wait after recording a mint and
before answering, until `release` is set. With `auto_confirm` off, new transactions and accounts stay
at the `processed` commitment (invisible to `confirmed` reads) until `confirm_all()`; each
`getBlockHeight` then advances the height, so blockhashes expire.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rent import Rent
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import decode_create_account_with_seed
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint, TokenAccount, TokenAccountState
from solders.transaction import Transaction
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import decode_initialize_mint2, decode_mint_to, decode_set_authority

HOLD_LIMIT = 30.0
FEE_PER_SIGNATURE = 5000
MINT_SIZE = 82
TOKEN_ACCOUNT_SIZE = 165
COMMITMENTS = ("processed", "confirmed", "finalized")
Json = dict[str, Any]


@dataclass
class Account:
    owner: Pubkey
    lamports: int
    data: bytes
    confirmed: bool


@dataclass
class Landed:
    signature: str
    slot: int
    accounts: list[str]
    confirmed: bool


@dataclass
class MintRecord:
    signature: str
    mint: str
    owner: str
    token_account: str
    authority: str


@dataclass
class Fault:
    method: str | None
    http_status: int | None = None
    rpc_error: Json | None = None
    headers: dict[str, str] = field(default_factory=dict)


class NotATicketMint(Exception):
    """The transaction is not the ticket mint the processor must send."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise NotATicketMint(message)


class Rejected(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.error: Json = {"code": code, "message": message}
        if data is not None:
            self.error["data"] = data


def preflight(err: Any, message: str, logs: list[str] | None = None) -> Rejected:
    return Rejected(-32002, f"Transaction simulation failed: {message}", {"err": err, "logs": logs or []})


class SolanaServer:
    def __init__(self) -> None:
        self.url = ""
        self.accounts: dict[str, Account] = {}
        self.transactions: dict[str, Landed] = {}
        self.mints: list[MintRecord] = []
        self.rejected: list[str] = []
        self.calls: list[tuple[str, list[Any]]] = []
        self.slot = 1000
        self.block_height = 900
        self.auto_confirm = True
        self._blockhashes: dict[str, int] = {}
        self._faults: deque[Fault] = deque()
        self._lock = threading.RLock()
        self._holding = False
        self.effect_recorded = threading.Event()
        self.release = threading.Event()

    # -- set-up and faults ---------------------------------------------------------------------------------

    def fund(self, pubkey: Pubkey, lamports: int) -> None:
        self.accounts[str(pubkey)] = Account(SYSTEM_PROGRAM_ID, lamports, b"", True)

    def fail_next(
        self,
        method: str | None = None,
        *,
        http_status: int | None = None,
        rpc_error: Json | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        for _ in range(times):
            self._faults.append(Fault(method, http_status, rpc_error, dict(headers or {})))

    def hold_effects(self) -> None:
        self._holding = True

    def confirm_all(self) -> None:
        with self._lock:
            for account in self.accounts.values():
                account.confirmed = True
            for landed in self.transactions.values():
                landed.confirmed = True

    def method_calls(self, method: str) -> list[list[Any]]:
        return [params for name, params in self.calls if name == method]

    # -- JSON-RPC ------------------------------------------------------------------------------------------

    def handle(self, request: Json) -> tuple[int, Json | str, dict[str, str]]:
        method = str(request.get("method"))
        params = request.get("params") or []
        with self._lock:
            self.calls.append((method, params))
            fault = self._fault_for(method)
        if fault is not None and fault.http_status is not None:
            return fault.http_status, "upstream unavailable", fault.headers
        reply: Json = {"jsonrpc": "2.0", "id": request.get("id")}
        if fault is not None and fault.rpc_error is not None:
            return 200, {**reply, "error": fault.rpc_error}, fault.headers
        handler = getattr(self, f"_rpc_{method}", None)
        if request.get("jsonrpc") != "2.0" or handler is None:
            return 200, {**reply, "error": {"code": -32601, "message": "Method not found"}}, {}
        try:
            result, effect = handler(params)
        except Rejected as rejected:
            return 200, {**reply, "error": rejected.error}, {}
        if effect and self._holding:
            self.effect_recorded.set()
            self.release.wait(HOLD_LIMIT)
        return 200, {**reply, "result": result}, {}

    def _fault_for(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.method is None or fault.method == method:
                self._faults.remove(fault)
                return fault
        return None

    def _context(self) -> Json:
        return {"apiVersion": "2.1.0", "slot": self.slot}

    @staticmethod
    def _commitment(options: Any) -> str:
        commitment = options.get("commitment", "finalized") if isinstance(options, dict) else "finalized"
        if commitment not in COMMITMENTS:
            raise Rejected(-32602, f"Invalid params: unknown commitment {commitment!r}")
        return str(commitment)

    def _rpc_getLatestBlockhash(self, params: list[Any]) -> tuple[Any, bool]:
        self._commitment(params[0] if params else {})
        with self._lock:
            blockhash = str(Hash.new_unique())
            last_valid = self.block_height + 150
            self._blockhashes[blockhash] = last_valid
        return {
            "context": self._context(),
            "value": {"blockhash": blockhash, "lastValidBlockHeight": last_valid},
        }, False

    def _rpc_getMinimumBalanceForRentExemption(self, params: list[Any]) -> tuple[Any, bool]:
        if not params or not isinstance(params[0], int):
            raise Rejected(-32602, "Invalid params: data length expected")
        return Rent.default().minimum_balance(params[0]), False

    def _rpc_getBlockHeight(self, params: list[Any]) -> tuple[Any, bool]:
        with self._lock:
            if not self.auto_confirm:
                self.block_height += 60  # time passes while a transaction stays unconfirmed
            return self.block_height, False

    def _visible(self, confirmed: bool, commitment: str) -> bool:
        return confirmed or commitment == "processed"

    def _rpc_getAccountInfo(self, params: list[Any]) -> tuple[Any, bool]:
        address = self._pubkey(params[0] if params else None)
        options = params[1] if len(params) > 1 else {}
        if options.get("encoding") != "base64":
            raise Rejected(-32602, "Invalid params: this server answers base64 account data only")
        commitment = self._commitment(options)
        with self._lock:
            account = self.accounts.get(str(address))
            if account is None or not self._visible(account.confirmed, commitment):
                return {"context": self._context(), "value": None}, False
            value = {
                "data": [base64.b64encode(account.data).decode(), "base64"],
                "executable": False,
                "lamports": account.lamports,
                "owner": str(account.owner),
                "rentEpoch": 18446744073709551615,
                "space": len(account.data),
            }
        return {"context": self._context(), "value": value}, False

    def _rpc_getSignaturesForAddress(self, params: list[Any]) -> tuple[Any, bool]:
        address = str(self._pubkey(params[0] if params else None))
        options = params[1] if len(params) > 1 else {}
        commitment = self._commitment(options)
        if commitment == "processed":
            raise Rejected(-32602, "Invalid params: processed commitment is not supported")
        with self._lock:
            found = [
                landed
                for landed in self.transactions.values()
                if address in landed.accounts and self._visible(landed.confirmed, commitment)
            ]
        found.sort(key=lambda landed: landed.slot, reverse=True)
        return [
            {
                "signature": landed.signature,
                "slot": landed.slot,
                "err": None,
                "memo": None,
                "blockTime": 1_900_000_000,
                "confirmationStatus": "finalized" if landed.confirmed else "processed",
            }
            for landed in found[: int(options.get("limit", 1000))]
        ], False

    def _rpc_getSignatureStatuses(self, params: list[Any]) -> tuple[Any, bool]:
        if not params or not isinstance(params[0], list):
            raise Rejected(-32602, "Invalid params: an array of signatures expected")
        statuses: list[Json | None] = []
        with self._lock:
            for signature in params[0]:
                landed = self.transactions.get(signature)
                if landed is None:
                    statuses.append(None)
                    continue
                statuses.append(
                    {
                        "slot": landed.slot,
                        "confirmations": None if landed.confirmed else 0,
                        "err": None,
                        "status": {"Ok": None},
                        "confirmationStatus": "finalized" if landed.confirmed else "processed",
                    }
                )
        return {"context": self._context(), "value": statuses}, False

    def _rpc_sendTransaction(self, params: list[Any]) -> tuple[Any, bool]:
        if len(params) < 2 or params[1].get("encoding") != "base64":
            raise Rejected(-32602, "Invalid params: expected a base64 transaction and {encoding: base64}")
        self._commitment({"commitment": params[1].get("preflightCommitment", "finalized")})
        try:
            transaction = Transaction.from_bytes(base64.b64decode(params[0], validate=True))
        except Exception as exc:
            raise Rejected(-32602, f"failed to deserialize solana_transaction::Transaction: {exc}") from None
        if not all(transaction.verify_with_results()):
            raise Rejected(-32003, "Transaction signature verification failure")
        message = transaction.message
        signature = str(transaction.signatures[0])
        with self._lock:
            if signature in self.transactions:
                raise preflight("AlreadyProcessed", "This transaction has already been processed")
            blockhash = str(message.recent_blockhash)
            if blockhash not in self._blockhashes:
                raise preflight("BlockhashNotFound", "Blockhash not found")
            payer = str(message.account_keys[0])
            funded = self.accounts.get(payer)
            if funded is None:
                raise preflight(
                    "AccountNotFound", "Attempt to debit an account but found no record of a prior credit."
                )
            fee = FEE_PER_SIGNATURE * len(transaction.signatures)
            if funded.lamports < fee:
                raise preflight("InsufficientFundsForFee", "Insufficient funds for fee")
            try:
                mint = self._check_ticket_mint(message)
            except NotATicketMint as exc:
                self.rejected.append(str(exc))
                raise preflight(
                    {"InstructionError": [0, "InvalidInstructionData"]}, f"rejected: {exc}"
                ) from None
            if str(mint.mint) in self.accounts:
                raise preflight(
                    {"InstructionError": [0, {"Custom": 0}]},
                    "Error processing Instruction 0: custom program error: 0x0",
                    [f"Create Account: account Address {{ address: {mint.mint} }} already in use"],
                )
            rent = mint.lamports + Rent.default().minimum_balance(TOKEN_ACCOUNT_SIZE)
            if funded.lamports < fee + rent:
                raise preflight({"InstructionError": [0, {"Custom": 1}]}, "insufficient lamports for rent")
            funded.lamports -= fee + rent
            confirmed = self.auto_confirm
            self.accounts[str(mint.mint)] = Account(
                TOKEN_PROGRAM_ID, mint.lamports, bytes(Mint(None, 1, 0, True, None)), confirmed
            )
            self.accounts[str(mint.token_account)] = Account(
                TOKEN_PROGRAM_ID,
                Rent.default().minimum_balance(TOKEN_ACCOUNT_SIZE),
                bytes(TokenAccount(mint.mint, mint.owner, 1, None, TokenAccountState.Initialized, None, 0)),
                confirmed,
            )
            self.slot += 1
            self.transactions[signature] = Landed(
                signature, self.slot, [str(key) for key in message.account_keys], confirmed
            )
            self.mints.append(
                MintRecord(
                    signature, str(mint.mint), str(mint.owner), str(mint.token_account), str(mint.authority)
                )
            )
        return signature, True

    def _check_ticket_mint(self, message: Message) -> _TicketMint:
        """The five instructions of a ticket's mint, checked byte by byte (`NotATicketMint` says what is
        wrong)."""
        instructions = _decompile(message)
        programs = [ix.program_id for ix in instructions]
        expected = [SYSTEM_PROGRAM_ID, TOKEN_PROGRAM_ID, ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID]
        _require(programs == [*expected, TOKEN_PROGRAM_ID], f"unexpected programs {programs}")
        create, initialize, associate, mint_to, set_authority = instructions

        # System CreateAccountWithSeed: u32 index 3, base, seed (u64 length + bytes), lamports, space, owner.
        _require(struct.unpack_from("<I", create.data)[0] == 3, "instruction 0 is not CreateAccountWithSeed")
        created = decode_create_account_with_seed(create)
        authority, mint, seed = created["base"], created["to_pubkey"], created["seed"]
        _require(created["from_pubkey"] == authority, "the fee payer is not the base of the seed")
        _require(create.accounts[0].is_signer, "the funder must sign")
        _require(create.accounts[0].is_writable, "the funder must be writable")
        _require(created["owner"] == TOKEN_PROGRAM_ID, "the mint account is not owned by the Token program")
        _require(created["space"] == MINT_SIZE, f"a mint needs {MINT_SIZE} bytes, not {created['space']}")
        _require(
            created["lamports"] >= Rent.default().minimum_balance(MINT_SIZE), "the mint is not rent-exempt"
        )
        _require(len(seed.encode()) <= 32, "a seed is at most 32 bytes")
        _require(Pubkey.create_with_seed(authority, seed, TOKEN_PROGRAM_ID) == mint, "wrong mint address")

        # Token InitializeMint2: tag 20, decimals, mint authority, freeze authority option.
        _require(initialize.data[:2] == bytes([20, 0]), "InitializeMint2 with 0 decimals expected")
        init = decode_initialize_mint2(initialize)
        _require(init.mint == mint, "InitializeMint2 names another mint")
        _require(init.mint_authority == authority, "the mint authority is not the signer")
        _require(init.freeze_authority is None, "a ticket has no freeze authority")

        # Associated Token Account CreateIdempotent: [1]; payer, ata, owner, mint, system, token.
        _require(associate.data == b"\x01", "the ATA must be created idempotently")
        keys = [meta.pubkey for meta in associate.accounts]
        _require(keys[0] == authority, "the ATA payer is not the signer")
        _require(keys[3] == mint, "the ATA is for another mint")
        owner, token_account = keys[2], keys[1]
        _require(
            token_account == get_associated_token_address(owner, mint), "not the owner's ATA of the mint"
        )
        _require(keys[4:] == [SYSTEM_PROGRAM_ID, TOKEN_PROGRAM_ID], "wrong ATA program accounts")

        # Token MintTo: tag 7, u64 amount 1, to the ATA, signed by the mint authority.
        _require(mint_to.data[0] == 7, "instruction 3 is not MintTo")
        _require(struct.unpack_from("<Q", mint_to.data, 1)[0] == 1, "a ticket mints exactly 1 token")
        minted = decode_mint_to(mint_to)
        _require(minted.mint == mint, "MintTo names another mint")
        _require(minted.dest == token_account, "MintTo does not credit the owner's ATA")
        _require(minted.mint_authority == authority, "MintTo's authority is not the signer")
        _require(mint_to.accounts[2].is_signer, "the mint authority must sign MintTo")

        # Token SetAuthority: tag 6, MintTokens (0), no new authority: the supply stays 1 for ever.
        _require(set_authority.data[:3] == bytes([6, 0, 0]), "SetAuthority(MintTokens to none) expected")
        revoked = decode_set_authority(set_authority)
        _require(revoked.account == mint, "SetAuthority names another mint")
        _require(revoked.current_authority == authority, "SetAuthority's authority is not the signer")
        _require(revoked.new_authority is None, "the mint authority must be removed")
        return _TicketMint(authority, mint, owner, token_account, int(created["lamports"]))

    @staticmethod
    def _pubkey(value: Any) -> Pubkey:
        try:
            return Pubkey.from_string(str(value))
        except ValueError:
            raise Rejected(-32602, f"Invalid params: Invalid param: {value!r}") from None


@dataclass(frozen=True)
class _TicketMint:
    authority: Pubkey
    mint: Pubkey
    owner: Pubkey
    token_account: Pubkey
    lamports: int


def _decompile(message: Message) -> list[Instruction]:
    header = message.header
    keys = message.account_keys
    signed = header.num_required_signatures

    def writable(index: int) -> bool:
        if index < signed:
            return index < signed - header.num_readonly_signed_accounts
        return index < len(keys) - header.num_readonly_unsigned_accounts

    return [
        Instruction(
            keys[compiled.program_id_index],
            compiled.data,
            [AccountMeta(keys[i], message.is_signer(i), writable(i)) for i in compiled.accounts],
        )
        for compiled in message.instructions
    ]


@contextmanager
def solana_server() -> Iterator[SolanaServer]:
    server = SolanaServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body are two writes: without NODELAY, Nagle and delayed ACKs add 40 ms a request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            status: int = 200
            body: Json | str
            headers: dict[str, str] = {}
            try:
                request = json.loads(self.rfile.read(length))
            except ValueError:
                body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
            else:
                status, body, headers = server.handle(request)
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("content-type", "text/plain" if isinstance(body, str) else "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that went away (a killed worker) is expected here

    http = Server(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{http.server_address[1]}"
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)
