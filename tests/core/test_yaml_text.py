"""The registry and catalog reader (libyaml where PyYAML has it) gives what PyYAML's reference loader gives."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

import covid19_images.sources.catalog as catalog_module
from covid19_images.core.yaml_text import safe_load
from covid19_images.sources.registry import RegistryError, load_registry

PROJECT = Path(__file__).resolve().parents[2]
#: what YAML 1.1 resolves by the safe constructor: where a parser that hands it other events would show
TRICKY = """\
sources:
  - name: a-source         # comment
    branch: "main"
    yes_word: yes
    off_word: off
    octal: 0755
    sexagesimal: 1:30
    date: 2020-03-01
    when: 2020-03-01T10:00:00Z
    float: 6.02e+23
    nothing: ~
    folded: >-
      two lines
      become one
    literal: |
      kept
        as written
    unicode: "Hôpital \\u00e9 ✓"
    anchor: &shared {x: 1, y: [1, 2]}
    alias: *shared
    merged:
      <<: *shared
      y: 3
    binary: !!binary aGVsbG8=
    set: !!set {a, b}
"""


def _documents() -> list[tuple[str, str]]:
    found = [("sources.yaml", (PROJECT / "sources.yaml").read_text(encoding="utf-8")), ("tricky", TRICKY)]
    for entry in sorted(Path(catalog_module.__file__).parent.glob("*/source.yaml")):
        found.append((entry.parent.name, entry.read_text(encoding="utf-8")))
    return found


@pytest.mark.parametrize(("name", "text"), _documents(), ids=[name for name, _ in _documents()])
def test_documents_read_as_the_reference_loader_reads_them(name: str, text: str) -> None:
    assert safe_load(text) == yaml.safe_load(text)  # yaml.safe_load: PyYAML's pure-Python loader


def test_the_tricky_values_keep_their_yaml_types() -> None:
    item = safe_load(TRICKY)["sources"][0]
    assert item["yes_word"] is True and item["off_word"] is False and item["nothing"] is None
    assert item["octal"] == 0o755 and item["sexagesimal"] == 90 and item["float"] == 6.02e23
    assert item["date"] == datetime.date(2020, 3, 1) and item["when"].year == 2020
    assert item["folded"] == "two lines become one" and item["literal"] == "kept\n  as written\n"
    assert item["alias"] is item["anchor"] and item["merged"] == {"x": 1, "y": 3}
    assert item["binary"] == b"hello" and item["set"] == {"a", "b"}


def test_objects_are_refused_as_by_the_safe_loader() -> None:
    with pytest.raises(yaml.YAMLError):
        safe_load("x: !!python/object/apply:os.system ['true']")
    with pytest.raises(yaml.YAMLError):  # what even PyYAML's "full" loader builds
        safe_load("x: !!python/tuple [1, 2]")


def test_a_malformed_registry_is_refused_with_its_file_and_place(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text("sources:\n  - name: a\n   bad: [unclosed\n", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"(?s)sources\.yaml: not valid YAML: .*line 3, column 4"):
        load_registry(tmp_path)
