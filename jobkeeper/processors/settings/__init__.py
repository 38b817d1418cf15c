"""The settings of the built-in processors, one module per processor beside it (`settings/payments.py`
for `payments.py`), composed into `jobkeeper.config.Settings`.

These modules import only `jobkeeper.environment`: every command reads its settings, and the CLI must
not load the processors' SDKs to do so (tests/cli/test_import.py; docs/decisions.md, "Settings").
"""
