"""The example of docs/processors.md runs, and `jobkeeper.processors.builtin` fills the default registry."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobkeeper import PermanentError
from jobkeeper.worker import Registry
from tests.processors.helpers import make_ctx

ROOT = Path(__file__).resolve().parents[2]


def example() -> str:
    text = (ROOT / "docs" / "processors.md").read_text(encoding="utf-8")
    section = text.split("## Writing your own processor", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


async def test_the_writing_your_own_processor_example_runs() -> None:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(example(), "docs/processors.md", "exec"), namespace)  # noqa: S102 - our own docs
    registry: Registry = namespace["registry"]
    assert registry["send-sms"].handler is namespace["send_sms"]
    assert registry["send-sms"].max_attempts == 5
    assert {"send-email", "send-push", "analytics-track", "generate-report", "loyalty-points"} <= set(
        registry.names
    )
    payload = {"to": "+14155550100", "body": "hi", "dry_run": True}
    assert await registry["send-sms"].handler(payload, make_ctx("send-sms", payload)) == {
        "sent": False,
        "to": "+14155550100",
    }
    with pytest.raises(PermanentError):
        await registry["send-sms"].handler({"to": "0044"}, make_ctx("send-sms", {}))
    assert registry["loyalty-points"].handler({"amount_cents": 1250}, make_ctx("send-sms", {})) == 12


def test_importing_the_builtin_module_registers_the_built_ins_in_the_default_registry() -> None:
    code = (
        "from jobkeeper.worker import default_registry, task\n"
        "@task('send-email', queue='communication')\n"
        "def mine(payload, ctx): return 'mine'\n"
        "import jobkeeper.processors.builtin\n"
        "print(default_registry['send-email'].handler is mine, ','.join(default_registry.names))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    mine, names = output.stdout.split()
    assert mine == "True"
    assert {"send-sms", "send-push", "analytics-track", "cleanup-old-data", "generate-report"} <= set(
        names.split(",")
    )
