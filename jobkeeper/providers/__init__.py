"""Thin clients for the outside services jobkeeper talks to, each speaking the provider's real protocol.

Every call has a timeout and raises `ProviderError` saying whether a retry may succeed.
"""

from jobkeeper.providers.errors import ProviderError

__all__ = ["ProviderError"]
