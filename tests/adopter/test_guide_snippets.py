"""Every code snippet of the adoption guide is quoted from the example charm, word for word.

A Python or YAML block in docs/how-to/adopt-the-provider-library.md starts with a comment
naming its source file (`# examples/adopter-charm/...`); the rest of the block must be a run
of consecutive lines of that file (at any indentation). The example charm itself is run by
test_example_charm.py, so the guide shows code that runs.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "how-to" / "adopt-the-provider-library.md"
BLOCK = re.compile(r"^```(python|yaml)\n(.*?)^```", re.M | re.S)
SOURCE = re.compile(r"^# (examples/adopter-charm/\S+)\n")


def snippets() -> list[tuple[str, str, str]]:
    """(language, source path or "", body) of every Python/YAML block of the guide."""
    found = []
    for language, text in BLOCK.findall(GUIDE.read_text()):
        source = SOURCE.match(text)
        body = text[source.end() :] if source else text
        found.append((language, source.group(1) if source else "", body))
    return found


def quoted_in(body: str, source: str) -> bool:
    """Whether `body`'s lines are consecutive lines of `source`, all at one indentation."""
    wanted = textwrap.dedent(body).rstrip("\n").splitlines()
    lines = source.splitlines()
    for start, first in enumerate(lines):
        indent = first[: len(first) - len(first.lstrip())]
        window = lines[start : start + len(wanted)]
        if len(window) == len(wanted) and all(
            line == (indent + want if want else "") or (not want and not line.strip())
            for line, want in zip(window, wanted, strict=True)
        ):
            return True
    return False


def test_the_guide_has_snippets_from_every_example_file() -> None:
    sources = {source for _, source, _ in snippets()}
    assert {
        "examples/adopter-charm/charmcraft.yaml",
        "examples/adopter-charm/src/charm.py",
        "examples/adopter-charm/tests/conftest.py",
    } <= sources


@pytest.mark.parametrize(
    ("language", "source", "body"), snippets(), ids=lambda value: str(value)[:40]
)
def test_each_snippet_is_quoted_from_the_example(language: str, source: str, body: str) -> None:
    assert source, f"a {language} block names no source file (# examples/adopter-charm/...)"
    assert quoted_in(body, (REPO / source).read_text()), f"not found in {source}:\n{body}"


def test_the_check_sees_a_changed_line() -> None:
    source = "def f():\n    x = 1\n    return x\n"
    assert quoted_in("x = 1\nreturn x\n", source)
    assert not quoted_in("x = 2\nreturn x\n", source)
    assert not quoted_in("x = 1\n\nreturn x\n", source)
