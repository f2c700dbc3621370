"""The repository's citations of docs/protocol.md point at sections that exist there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "docs" / "protocol.md"
CITING = ["README.md", "bench", "examples", "qqproto", "qqproto_cli", "tests", "transports"]
# "docs/protocol.md §5.1", then further sections in the same parenthesis: "§5.1, §5.2 and §5.3".
CITATION = re.compile(r"docs/protocol\.md((?:[ ,/]*(?:and )?§[0-9]+(?:\.[0-9]+)*)+)")


def sections() -> set[str]:
    """Every heading number, and §4.N / §14.N for the numbered steps of §4 and items of §14."""
    text = PROTOCOL.read_text()
    found = set(re.findall(r"^#{2,3} ([0-9]+(?:\.[0-9]+)?)[. ]", text, re.M))
    for part in ("4", "14"):
        body = text.split(f"\n## {part}. ", 1)[1].split("\n## ", 1)[0]
        found |= {f"{part}.{n}" for n in re.findall(r"^([0-9]+)\. ", body, re.M)}
    return found


def citations() -> list[tuple[str, str]]:
    cited = []
    for name in CITING:
        base = ROOT / name
        for path in [base] if base.is_file() else sorted(base.rglob("*.py")) + sorted(base.rglob("*.md")):
            text = path.read_text()
            # A module may say once that all its sections are the protocol file's, then cite bare "§N".
            if "are those of ``docs/protocol.md``" in text:
                quoted = [text]
            else:
                quoted = [match.group(1) for match in CITATION.finditer(text)]
            for part in quoted:
                cited += [(str(path.relative_to(ROOT)), n) for n in re.findall(r"§([0-9.]*[0-9])", part)]
    return cited


def test_the_numbering_matches_the_sections_code_cites() -> None:
    found = sections()
    assert {"0", "1", "3.1", "4.8", "5.3", "7.2", "8.4", "9.4", "11.3", "13.4", "14.9", "15"} <= found


@pytest.mark.parametrize("where, section", citations())
def test_every_citation_names_a_section(where: str, section: str) -> None:
    assert section in sections(), f"{where} cites docs/protocol.md §{section}, which does not exist"
