"""The registry, .gitmodules and the gitlinks of this repository agree with each other and with upstream."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from covid19_images.sources.parsers import get_parser
from covid19_images.sources.registry import RegistryError, load_registry

PROJECT = Path(__file__).resolve().parents[1]


def _gitmodules() -> dict[str, dict[str, str]]:
    out = subprocess.run(
        ["git", "config", "-f", ".gitmodules", "--get-regexp", r"^submodule\."],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    entries: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        name, _, field = key[len("submodule.") :].rpartition(".")
        entries.setdefault(name, {})[field] = value
    return entries


def _gitlinks() -> dict[str, str]:
    out = subprocess.run(["git", "ls-files", "-s"], cwd=PROJECT, capture_output=True, text=True, check=True).stdout
    links = {}
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        mode, sha = meta.split()[:2]
        if mode == "160000":
            links[path] = sha
    return links


def test_gitmodules_match_registry() -> None:
    registry = load_registry(PROJECT)
    modules = _gitmodules()
    pinned = {name: spec for name, spec in registry.items() if not spec.pending}
    assert set(modules) == set(pinned), "every pinned registry source is a submodule and nothing else is"
    for name, spec in pinned.items():
        assert modules[name]["path"] == spec.path
        assert modules[name]["url"] == spec.url
        assert modules[name]["url"].startswith("https://"), "ssh URLs fail for anyone without a GitHub key"
        assert modules[name]["branch"] == spec.branch


def test_every_pinned_source_has_a_gitlink_and_pending_ones_do_not() -> None:
    registry = load_registry(PROJECT)
    links = _gitlinks()
    assert set(links) == {spec.path for spec in registry.values() if not spec.pending}


@pytest.mark.upstream
@pytest.mark.full_sample  # PINS.md is the real samples' index, not part of the miniatures
def test_gitlinks_are_the_real_upstream_commits(shared: Path) -> None:
    """PINS.md names the commit each real upstream has; a typo here would break `git clone --recursive`."""
    known: dict[str, str] = {}
    for line in (shared / "PINS.md").read_text().splitlines():
        match = re.match(r"^\| .*? \| (https://\S+) \| ([0-9a-f]{40})", line)
        if match:
            known[match.group(1)] = match.group(2)
    links = _gitlinks()
    for spec in load_registry(PROJECT).values():
        if spec.pending:
            continue
        assert links[spec.path] == known[spec.url], spec.name


def test_every_registry_parser_exists() -> None:
    for spec in load_registry(PROJECT).values():
        assert callable(get_parser(spec.parser)), spec.name


def test_original_seven_sources_are_registered() -> None:
    urls = {spec.url for spec in load_registry(PROJECT).values()}
    for repo in (
        "ieee8023/covid-chestxray-dataset",
        "coyotespike/zhanglab-chest-xrays",
        "coyotespike/AHP-covid19-ctscans",
        "coyotespike/NIH-chestxray-dataset-sample",
        "coyotespike/covid-19-pos-case",
        "coyotespike/covid19-detection-xray-dataset",
        "coyotespike/medseg_ct_dataset",
    ):
        assert f"https://github.com/{repo}.git" in urls


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "git@github.com:ieee8023/covid-chestxray-dataset.git"),
        ("url", "ext::sh -c touch% /tmp/pwned"),
        ("url", "file:///etc"),
        ("path", "../outside"),
        ("path", "datasets/../../outside"),
        ("name", "../evil"),
        ("branch", "--upload-pack=touch /tmp/pwned"),
    ],
)
def test_registry_refuses_unsafe_entries(tmp_path: Path, field: str, value: str) -> None:
    entry = {"name": "demo", "url": "https://github.com/a/b.git", "branch": "master", "parser": "ieee8023"}
    entry[field] = value
    import yaml

    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": [entry]}))
    with pytest.raises(RegistryError):
        load_registry(tmp_path)
