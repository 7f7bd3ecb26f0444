"""The committed reference tables are exactly what scripts/gen_reference.py makes of the yaml."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from scripts import gen_reference

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["actions.md", "config.md"])
def test_committed_reference_matches_the_yaml(name: str):
    path = ROOT / "docs" / "reference" / name
    expected = gen_reference.generated()[path]

    committed = path.read_text() if path.is_file() else ""

    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            f"committed {name}",
            f"generated {name}",
        )
    )
    assert not diff, f"run `python scripts/gen_reference.py` and commit:\n{diff}"


@pytest.mark.parametrize("charm", gen_reference.CHARMS, ids=lambda c: c.name)
def test_every_action_parameter_and_option_is_documented(charm: gen_reference.CharmSource):
    actions = yaml.safe_load((charm.directory / "actions.yaml").read_text()) or {}
    options = (yaml.safe_load((charm.directory / "config.yaml").read_text()) or {})["options"]

    actions_doc = gen_reference.render_actions()
    config_doc = gen_reference.render_config()

    for action, spec in actions.items():
        assert f"### {charm.name}: `{action}`" in actions_doc
        section = actions_doc.split(f"### {charm.name}: `{action}`", 1)[1].split("### ", 1)[0]
        for param in spec.get("params") or {}:
            assert f"| `{param}` |" in section, (action, param)
    charm_config = config_doc.split(f"## {charm.name}", 1)[1].split("\n## ", 1)[0]
    for option in options:
        assert f"| `{option}` |" in charm_config, option


def test_a_changed_description_makes_the_docs_stale(monkeypatch: pytest.MonkeyPatch):
    original = gen_reference._load

    def edited(path: Path) -> dict:
        data = original(path)
        if path == ROOT / "config.yaml":
            data["options"]["backup-schedule"]["description"] = "something else"
        return data

    monkeypatch.setattr(gen_reference, "_load", edited)

    assert gen_reference.stale() == [ROOT / "docs" / "reference" / "config.md"]
