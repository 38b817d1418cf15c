"""A local server speaking the part of Stripe's API the payment processors use (loopback only).

It behaves as Stripe documents, where the processors depend on it:
- form-encoded bodies with bracketed keys (`metadata[venue_id]=…`), decoded to nested objects;
- authentication by the secret key, as `Authorization: Bearer sk_…` or HTTP basic with the key as user
  name; anything else is answered 401;
- `Idempotency-Key`: the first answer of an endpoint that started executing (success or card error) is
  stored per account and key; the same key with the same method, path and parameters replays it (with
  `Idempotent-Replayed: true`), with different ones answers 400 `idempotency_error`, and while the first
  request is still running answers 409 `idempotency_key_in_use`. Parameter validation failures are not
  stored;
- PaymentIntents confirmed with test payment methods: `pm_card_visa` (and any other pm_…) succeeds,
  `pm_card_chargeDeclined` is declined (402 `card_error`, code `card_declined`, decline code
  `generic_decline`), `pm_card_chargeDeclinedInsufficientFunds` with decline code `insufficient_funds`,
  `pm_card_authenticationRequired` asks for 3-D Secure (`requires_action`).

Every request is recorded (`requests`), and every object created (`created`: payment intents, refunds,
transfers, payouts) once, so a test can count effects exactly: `charges` are the payment intents that
moved money. Faults on demand: `fail_next(status)` answers the next requests with 429 or 5xx before any
processing; `stall()` holds requests until released (client timeouts); `hold_effects()` makes a request
that created an object wait, after recording it and before answering, until the test releases it (a
worker can be killed in that window).
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import socket
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API_KEY = "sk_test_jobkeeper_0123456789abcdefghij"
HOLD_LIMIT = 30.0
"""Seconds a held or stalled request waits at most, so a test that forgets to release cannot hang."""

Json = dict[str, Any]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: list[tuple[str, str]]
    params: Json

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class Created:
    kind: str
    """payment_intent, refund, transfer or payout"""
    object: Json
    idempotency_key: str | None
    account: str | None


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, *, stored: bool, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: Json = {"error": {"type": type_, "message": message, **extra}}
        self.stored = stored


def decode_form(pairs: list[tuple[str, str]]) -> Json:
    """`a[b][c]=v` to {"a": {"b": {"c": "v"}}}; `a[]=v` and `a[0]=v` to lists."""
    result: Json = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = result
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            following = None if last else parts[index + 1]
            is_list = following is not None and (following == "" or following.isdigit())
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                node.append([] if is_list else {})
                node = node[-1]
                continue
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if is_list else {})
    return result


class StripeServer:
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.url = ""
        self.requests: list[Recorded] = []
        self.created: list[Created] = []
        self._stored: dict[tuple[str | None, str], tuple[tuple[Any, ...], int, Json]] = {}
        self._in_flight: set[tuple[str | None, str]] = set()
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._unstall = threading.Event()
        self._unstall.set()
        self._holding = False
        self.effect_recorded = threading.Event()
        self.release = threading.Event()

    # -- what the tests look at --------------------------------------------------------------------------

    @property
    def charges(self) -> list[Json]:
        """Payment intents that moved money."""
        return [
            c.object for c in self.created if c.kind == "payment_intent" and c.object["status"] == "succeeded"
        ]

    def of_kind(self, kind: str) -> list[Created]:
        return [c for c in self.created if c.kind == kind]

    # -- faults --------------------------------------------------------------------------------------------

    def fail_next(self, status: int, *, times: int = 1, headers: dict[str, str] | None = None) -> None:
        for _ in range(times):
            self._faults.append(Fault(status, dict(headers or {})))

    @contextmanager
    def stall(self) -> Iterator[None]:
        """Requests received inside the block wait (at most HOLD_LIMIT s) until it ends."""
        self._unstall.clear()
        try:
            yield
        finally:
            self._unstall.set()

    def hold_effects(self) -> None:
        """From now on, a request that created an object sets `effect_recorded` and then waits for
        `release` before it answers."""
        self._holding = True

    # -- the protocol -------------------------------------------------------------------------------------

    def handle(self, request: Recorded) -> tuple[int, Json, dict[str, str]]:
        headers = {"request-id": f"req_{secrets.token_hex(7)}"}
        self._unstall.wait(HOLD_LIMIT)
        if self._faults:
            fault = self._faults.popleft()
            return fault.status, _fault_body(fault.status), {**headers, **fault.headers}
        account = request.headers.get("stripe-account")
        if not self._authorised(request.headers.get("authorization", "")):
            error = StripeError(
                401,
                "invalid_request_error",
                f"Invalid API Key provided: {_mask(request.headers.get('authorization', ''))}",
                stored=False,
            )
            return error.status, error.body, headers
        key = request.idempotency_key
        fingerprint = (request.method, request.path, account, tuple(sorted(request.form)))
        if key is not None and request.method == "POST":
            scope = (account, key)
            with self._lock:
                stored = self._stored.get(scope)
                if stored is not None:
                    first, status, body = stored
                    if first != fingerprint:
                        error = StripeError(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters they "
                            f"were first used with. Try using a key other than '{key}' if you meant to "
                            "execute a different request.",
                            stored=False,
                        )
                        return error.status, error.body, headers
                    return status, body, {**headers, "idempotent-replayed": "true"}
                if scope in self._in_flight:
                    error = StripeError(
                        409,
                        "idempotency_error",
                        "There is currently another in-progress request using this Idempotent Key (that "
                        "probably means you submitted twice, and the other request is still going through): "
                        f"{key}. Please try again later.",
                        stored=False,
                        code="idempotency_key_in_use",
                    )
                    return error.status, error.body, {**headers, "stripe-should-retry": "true"}
                self._in_flight.add(scope)
            try:
                status, body, created = self._execute(request, account)
                with self._lock:
                    if created is not None or status != 400:
                        self._stored[scope] = (fingerprint, status, body)
            finally:
                with self._lock:
                    self._in_flight.discard(scope)
        else:
            status, body, created = self._execute(request, account)
        if created is not None and self._holding:
            self.effect_recorded.set()
            self.release.wait(HOLD_LIMIT)
        return status, body, headers

    def _authorised(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            return secrets.compare_digest(credentials.strip(), self.api_key)
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(credentials).decode().split(":", 1)[0]
            except ValueError:
                return False
            return secrets.compare_digest(user, self.api_key)
        return False

    def _execute(self, request: Recorded, account: str | None) -> tuple[int, Json, Created | None]:
        routes = {
            "/v1/payment_intents": self._payment_intent,
            "/v1/refunds": self._refund,
            "/v1/transfers": self._transfer,
            "/v1/payouts": self._payout,
        }
        route = routes.get(request.path)
        if request.method != "POST" or route is None:
            error = StripeError(
                404,
                "invalid_request_error",
                f"Unrecognized request URL ({request.method}: {request.path}).",
                stored=False,
            )
            return error.status, error.body, None
        try:
            created = route(request.params, account)
        except StripeError as error:
            return error.status, error.body, None
        created.idempotency_key = request.idempotency_key
        with self._lock:
            self.created.append(created)
        return 200, created.object, created

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}{secrets.token_hex(6)}"

    def _payment_intent(self, params: Json, account: str | None) -> Created:
        amount = _amount(params)
        currency = _currency(params)
        customer = params.get("customer")
        if customer is not None and not customer.startswith("cus_"):
            raise _invalid(f"No such customer: '{customer}'", "customer", code="resource_missing")
        method = params.get("payment_method")
        confirm = params.get("confirm") == "true"
        intent: Json = {
            "id": self._id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": currency,
            "customer": customer,
            "payment_method": method,
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "latest_charge": None,
            "livemode": False,
            "status": "requires_payment_method",
            "client_secret": f"pi_secret_{secrets.token_hex(8)}",
        }
        if confirm:
            if method is None:
                raise _invalid(
                    "You cannot confirm this PaymentIntent because it's missing a payment method.",
                    "payment_method",
                )
            redirects = params.get("automatic_payment_methods", {}).get("allow_redirects")
            if params.get("return_url") is None and redirects != "never":
                raise _invalid(
                    "This PaymentIntent is configured to accept payment methods enabled in your Dashboard, "
                    "some of which require a return_url.",
                    "return_url",
                )
            if method.startswith("pm_card_chargeDeclined"):
                decline = "insufficient_funds" if method.endswith("InsufficientFunds") else "generic_decline"
                intent["status"] = "requires_payment_method"
                message = (
                    "Your card has insufficient funds."
                    if decline == "insufficient_funds"
                    else "Your card was declined."
                )
                # Stripe keeps this answer for the key: a retry gets the same decline.
                raise StripeError(
                    402,
                    "card_error",
                    message,
                    stored=True,
                    code="card_declined",
                    decline_code=decline,
                    payment_intent=intent,
                )
            if method == "pm_card_authenticationRequired":
                intent["status"] = "requires_action"
            else:
                intent["status"] = "succeeded"
                intent["amount_received"] = amount
                intent["latest_charge"] = self._id("ch")
        return Created("payment_intent", intent, None, account)

    def _refund(self, params: Json, account: str | None) -> Created:
        target_intent = params.get("payment_intent")
        target_charge = params.get("charge")
        if (target_intent is None) == (target_charge is None):
            raise _invalid("You must provide exactly one of payment_intent or charge.", "payment_intent")
        paid = [
            c.object
            for c in self.created
            if c.kind == "payment_intent"
            and c.object["status"] == "succeeded"
            and (c.object["id"] == target_intent or c.object["latest_charge"] == target_charge)
        ]
        if not paid:
            name = "payment_intent" if target_intent else "charge"
            raise _invalid(
                f"No such {name}: '{target_intent or target_charge}'", name, code="resource_missing"
            )
        intent = paid[0]
        refunded = sum(
            c.object["amount"]
            for c in self.created
            if c.kind == "refund" and c.object["payment_intent"] == intent["id"]
        )
        amount = _amount(params) if "amount" in params else intent["amount"] - refunded
        if amount > intent["amount"] - refunded:
            raise _invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({intent['amount'] - refunded})",
                "amount",
                code="amount_too_large",
            )
        refund = {
            "id": self._id("re"),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "charge": intent["latest_charge"],
            "reason": params.get("reason"),
            "metadata": params.get("metadata", {}),
            "status": "succeeded",
        }
        return Created("refund", refund, None, account)

    def _transfer(self, params: Json, account: str | None) -> Created:
        amount = _amount(params)
        currency = _currency(params)
        destination = params.get("destination")
        if not destination:
            raise _invalid("Missing required param: destination.", "destination", code="parameter_missing")
        if not destination.startswith("acct_"):
            raise _invalid(f"No such destination: '{destination}'", "destination", code="resource_missing")
        transfer = {
            "id": self._id("tr"),
            "object": "transfer",
            "amount": amount,
            "currency": currency,
            "destination": destination,
            "transfer_group": params.get("transfer_group"),
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "reversed": False,
            "amount_reversed": 0,
        }
        return Created("transfer", transfer, None, account)

    def _payout(self, params: Json, account: str | None) -> Created:
        amount = _amount(params)
        currency = _currency(params)
        payout = {
            "id": self._id("po"),
            "object": "payout",
            "amount": amount,
            "currency": currency,
            "arrival_date": 1_900_000_000,
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "method": "standard",
            "status": "pending",
        }
        return Created("payout", payout, None, account)


def _invalid(message: str, param: str, *, code: str = "parameter_invalid_empty") -> StripeError:
    return StripeError(400, "invalid_request_error", message, stored=False, param=param, code=code)


def _amount(params: Json) -> int:
    raw = params.get("amount")
    if raw is None:
        raise _invalid("Missing required param: amount.", "amount", code="parameter_missing")
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(f"Invalid integer: {raw}", "amount", code="parameter_invalid_integer") from None
    if value < 1:
        raise _invalid("This value must be greater than or equal to 1.", "amount", code="amount_too_small")
    return value


def _currency(params: Json) -> str:
    currency = params.get("currency")
    if not currency:
        raise _invalid("Missing required param: currency.", "currency", code="parameter_missing")
    if len(currency) != 3 or not currency.isalpha() or currency != currency.lower():
        raise _invalid(f"Invalid currency: {currency}.", "currency", code="invalid_currency")
    return str(currency)


def _fault_body(status: int) -> Json:
    if status == 429:
        return {
            "error": {
                "type": "invalid_request_error",
                "code": "rate_limit",
                "message": "Too many requests hit the API too quickly.",
            }
        }
    return {"error": {"type": "api_error", "message": "Something went wrong on Stripe's end."}}


def _mask(header: str) -> str:
    secret = header.partition(" ")[2]
    return f"{secret[:8]}****{secret[-4:]}" if len(secret) > 12 else "****"


@contextmanager
def stripe_server(api_key: str = API_KEY) -> Iterator[StripeServer]:
    server = StripeServer(api_key)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body are two writes: without NODELAY, Nagle and delayed ACKs add 40 ms a request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode()
            form = parse_qsl(body, keep_blank_values=True)
            path = self.path.split("?", 1)[0]
            recorded = Recorded(
                self.command,
                path,
                {k.lower(): v for k, v in self.headers.items()},
                form,
                decode_form(form),
            )
            with server._lock:
                server.requests.append(recorded)
            status, payload, headers = server.handle(recorded)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_POST = _handle
        do_GET = _handle
        do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that went away (killed worker, timed-out call) is expected here

    http = Server(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{http.server_address[1]}"
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server._unstall.set()
        server.release.set()
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)
