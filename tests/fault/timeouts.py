"""The timeout of the misbehaving handlers, shared by `tests.fault.misbehaving` (imported only by the worker
processes: importing it registers its handlers in the process-wide registry) and the tests that check it."""

TIMEOUT = 1.5
"""Seconds: the timeout of every hanging handler of `tests.fault.misbehaving`."""
