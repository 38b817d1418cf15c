"""Provider errors, classified once: may a retry succeed (network, timeout, 429, 5xx) or not."""

from __future__ import annotations

import httpx

from jobkeeper.errors import JobkeeperError


class ProviderError(JobkeeperError):
    def __init__(self, provider: str, message: str, *, retryable: bool, code: str | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retryable = retryable
        self.code = code


def check_response(provider: str, response: httpx.Response, *, code: str | None = None) -> None:
    """Raise `ProviderError` for a non-2xx answer: 408, 409, 425, 429 and 5xx may succeed on retry."""
    if response.is_success:
        return
    status = response.status_code
    retryable = status in (408, 409, 425, 429) or status >= 500
    body = response.text[:500]
    raise ProviderError(provider, f"HTTP {status}: {body}", retryable=retryable, code=code or str(status))


def transport_error(provider: str, exc: httpx.HTTPError) -> ProviderError:
    """Network failures and timeouts: the request may not have arrived, so a retry may succeed."""
    return ProviderError(provider, f"{type(exc).__name__}: {exc}", retryable=True, code="network")
