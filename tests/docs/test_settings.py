"""The documentation stays true to the code: every setting is documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from jobkeeper.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_setting_is_documented() -> None:
    text = "\n".join(path.read_text(encoding="utf-8") for path in DOCS.glob("*.md"))
    missing = [
        f.metadata["env"] for f in dataclasses.fields(Settings) if f"`{f.metadata['env']}`" not in text
    ]
    assert missing == []
