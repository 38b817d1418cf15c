"""Every relative link of the README and docs/ points at a file that exists, and at a heading in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    found = set()
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_relative_links_resolve() -> None:
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = FENCE.sub("", page.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target) or target.startswith("<"):
                continue  # http(s), mailto
            path_part, _, anchor = target.partition("#")
            resolved = (page.parent / path_part).resolve() if path_part else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


CODE_LINK = re.compile(r"\bdocs/([\w/-]+\.md)(?:#([\w-]+))?")


def test_links_from_the_code_resolve() -> None:
    """The package's comments link to the docs for figures and history (`docs/benchmarks.md#claim-query`)."""
    sources = [*(ROOT / "jobkeeper").rglob("*.py"), *(ROOT / "jobkeeper").rglob("*.sql")]
    broken = []
    for source in sorted(sources):
        for page, anchor in CODE_LINK.findall(source.read_text(encoding="utf-8")):
            target = ROOT / "docs" / page
            if not target.exists():
                broken.append(f"{source.relative_to(ROOT)}: docs/{page}")
            elif anchor and anchor not in _anchors(target):
                broken.append(f"{source.relative_to(ROOT)}: docs/{page}#{anchor} (no such heading)")
    assert broken == []
