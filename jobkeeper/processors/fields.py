"""The field types the built-in payload models share (identifiers, amounts, currencies, addresses, phone
numbers, times) and their base model. Each processor's `payload` module declares its models with these;
`jobkeeper.payloads` collects the models and applies them on every way in.

This module and the `payload` modules import pydantic and the validators only, never a provider's SDK:
the API, the clients and the CLI load them to validate a payload without loading the processors.
"""

from __future__ import annotations

import email.utils
import math
import re
from datetime import datetime
from typing import Annotated, Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt

MAX_AMOUNT = 1_000_000

# ISO 4217 active codes (2024), including funds codes that payment providers accept.
_ISO_4217 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY "
    "KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR "
    "MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB "
    "RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD "
    "TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG "
    "XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL "
)
CURRENCIES = frozenset(_ISO_4217.split())

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: index for index, char in enumerate(_BASE58)}
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


def _currency(value: str) -> str:
    if value.upper() not in CURRENCIES:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. USD, EUR)")
    return value


def _email(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address: {exc}") from None
    return value


def _sender(value: str) -> str:
    """`Name <address>` or a bare address."""
    address = email.utils.parseaddr(value)[1]
    if not address:
        raise ValueError(f"{value!r} is not an email address or `Name <address>`")
    _email(address)
    return value


def _phone(value: str) -> str:
    if not _E164.match(value):
        raise ValueError("must be an E.164 phone number: + then country code and number, digits only")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number for its country code")
    return value


def base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        digit = _BASE58_INDEX.get(char)
        if digit is None:
            raise ValueError(f"{char!r} is not a base58 character")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading + body


def _solana_address(value: str) -> str:
    if not 32 <= len(value) <= 44:
        raise ValueError("must be a base58 Solana address (32 to 44 characters)")
    try:
        decoded = base58_decode(value)
    except ValueError as exc:
        raise ValueError(f"must be a base58 Solana address: {exc}") from None
    if len(decoded) != 32:
        raise ValueError("must be a base58 Solana address (a 32-byte public key)")
    return value


def _date_time(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time such as 2026-11-23T10:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError("must include a time zone (e.g. Z or +01:00)")
    return value


def _timestamp(value: str | float) -> str | float:
    if isinstance(value, str):
        return _date_time(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be seconds (or milliseconds) since the epoch, or an ISO 8601 date-time")
    return value


Id = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
Amount = Annotated[
    StrictInt, Field(gt=0, le=MAX_AMOUNT, description="In minor units (cents), 1 to 1,000,000")
]
Currency = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_currency)]
Email = Annotated[str, Field(min_length=3, max_length=320), AfterValidator(_email)]
Sender = Annotated[str, Field(min_length=3, max_length=320), AfterValidator(_sender)]
Phone = Annotated[str, Field(min_length=3, max_length=16), AfterValidator(_phone)]
SolanaAddress = Annotated[str, AfterValidator(_solana_address)]
DateTime = Annotated[str, AfterValidator(_date_time)]
Timestamp = Annotated[str | StrictInt | StrictFloat, AfterValidator(_timestamp)]
Url = Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://")]
Extra = dict[str, Any]
StringMap = dict[str, Annotated[str, Field(max_length=500)]]


class Payload(BaseModel):
    """The base of the built-in payload models: strict types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
