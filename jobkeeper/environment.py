"""How a setting is declared: once, as a field of a settings section, with its variable and its parser.

`setting("JOBKEEPER_POOL_MAX", whole(1), default=10)` is the whole declaration: `Settings.from_env`
finds the variable and the parser in the field, so no list is kept in step with the fields by hand. A
parser turns the variable's text into the value, or raises `ConfigError` naming the variable and what it
expects (the CLI passes an option's name instead, `--port`). Sections are frozen dataclasses; this
module imports nothing heavy, because every CLI command reads its settings (docs/decisions.md,
"Settings").
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, dataclass_transform

from jobkeeper.errors import ConfigError, did_you_mean
from jobkeeper.types import DEV_TENANT_ID

Parser = Callable[[str, str], Any]
"""`parse(name, raw)`: the value of the stripped, non-empty text `raw` of the variable (or option) `name`."""

_T = TypeVar("_T")


def setting(
    env: str,
    parse: Parser,
    *,
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
    secret: bool = False,
) -> Any:
    """A settings field read from `env` by `parse`; a `secret` one never appears in `repr`.

    Pass `default=` even when it is None: type checkers only know a field has a default from it.
    """
    metadata = {"env": env, "parse": parse}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, repr=not secret, metadata=metadata)
    return dataclasses.field(default=default, repr=not secret, metadata=metadata)


@dataclass_transform(frozen_default=True, field_specifiers=(setting, dataclasses.field))
def section(cls: type[_T]) -> type[_T]:
    """A group of settings: a frozen dataclass that `Settings` inherits, so `settings.stripe_api_key`
    keeps working wherever the field is declared. Only `Settings` is built, so a section gets no
    `__init__` or `__repr__` of its own (each costs the CLI's start-up a millisecond)."""
    return dataclasses.dataclass(frozen=True, init=False, repr=False, eq=False)(cls)


def whole(minimum: int) -> Parser:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise ConfigError(f"{name} must be a whole number ≥ {minimum}, got {raw!r}")
        return value

    return parse


def seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a number of seconds ≥ 0, got {raw!r}")
    return value


def positive_seconds(name: str, raw: str) -> float:
    value = seconds(name, raw)
    if value == 0:
        raise ConfigError(f"{name} must be a number of seconds > 0, got {raw!r}")
    return value


def choice(options: tuple[str, ...], *, upper: bool = False) -> Parser:
    def parse(name: str, raw: str) -> str:
        value = raw.upper() if upper else raw
        if value not in options:
            extra = did_you_mean(value, options)
            raise ConfigError(f"{name} must be one of {', '.join(options)}, got {raw!r}{extra}")
        return value

    return parse


def boolean(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def text(name: str, raw: str) -> str:
    return raw


def names(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated values, blanks dropped."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def host(name: str, raw: str) -> str:
    if any(ch.isspace() for ch in raw) or "/" in raw:
        raise ConfigError(f"{name} must be a host name or IP address such as 127.0.0.1, got {raw!r}")
    return raw


def port(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise ConfigError(f"{name} must be a TCP port from 1 to 65535, got {raw!r}")
    return value


def http_url(name: str, raw: str) -> str:
    # The value is not repeated: providers put API keys in their URLs.
    scheme, _, rest = raw.partition("://")
    if scheme not in ("http", "https") or not rest.strip("/"):
        raise ConfigError(f"{name} must be an http:// or https:// URL")
    return raw.rstrip("/")


def existing_file(name: str, raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"{name} must name a readable file, but {raw!r} does not exist")
    return path


def writable_file(name: str, raw: str) -> Path:
    path = Path(raw).expanduser()
    if path.is_dir() or not path.parent.is_dir():
        raise ConfigError(f"{name} must name a file in an existing directory; got {raw!r}")
    return path


def directory(name: str, raw: str) -> Path:
    path = Path(raw).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name} must be a directory, but {raw!r} is a file")
    return path.resolve()


def tenant_id(name: str, raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a UUID such as {DEV_TENANT_ID}, got {raw!r}") from None


def key_text_or_file(name: str, raw: str) -> str:
    """Key material as given (PEM, JSON or base64), or the content of the file the value names. The key
    itself is checked by its processor (`jobkeeper.processors.configuration_problems`)."""
    if raw.startswith(("-----BEGIN", "{")):
        return raw.replace("\\n", "\n") if raw.startswith("-----BEGIN") else raw
    looks_like_path = raw.startswith(("/", "~", ".")) or raw.endswith((".pem", ".json", ".key"))
    if not looks_like_path:
        return raw
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"{name} must be key material or the path of a readable file; {raw!r} is no file")
    return path.read_text(encoding="utf-8")
