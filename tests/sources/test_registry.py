"""The registry, .gitmodules and the gitlinks of this repository agree with each other and with upstream."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

import covid19_images.sources.catalog as catalog_module
from covid19_images.sources.catalog import catalog, get_parser, sample_folders
from covid19_images.sources.registry import RegistryError, load_registry

PROJECT = Path(__file__).resolve().parents[2]


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
    pinned = {name: spec for name, spec in registry.items() if not spec.pending and not spec.is_portal}
    assert set(modules) == set(pinned), "every pinned git source is a submodule and nothing else is"
    for name, spec in pinned.items():
        assert modules[name]["path"] == spec.path
        assert modules[name]["url"] == spec.url
        assert modules[name]["url"].startswith("https://"), "ssh URLs fail for anyone without a GitHub key"
        assert modules[name]["branch"] == spec.branch


def test_every_pinned_source_has_a_gitlink_and_pending_ones_do_not() -> None:
    registry = load_registry(PROJECT)
    links = _gitlinks()
    assert set(links) == {spec.path for spec in registry.values() if not spec.pending and not spec.is_portal}


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
        if spec.pending or spec.is_portal:
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
    entry = {"name": "demo", "url": "https://github.com/a/b.git", "parser": "ieee8023-covid-chestxray"}
    entry[field] = value

    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": [entry]}))
    with pytest.raises(RegistryError):
        load_registry(tmp_path)


# ---------------------------------------------------------------- the catalog and the short form


def _root_listing(tmp_path: Path, *items) -> Path:

    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": list(items)}, sort_keys=False))
    return tmp_path


def test_every_catalog_folder_is_a_complete_home() -> None:
    """Parser, registry entry and miniature live together; the project root lists every catalog source."""
    package = Path(catalog_module.__file__).parent
    for name, entry in catalog().items():
        folder = package / name.replace("-", "_")
        assert callable(get_parser(name)), name
        assert (folder / "source.yaml").is_file() and entry["name"] == name
        if entry.get("kind") == "portal":
            assert entry["portal"] and entry["dataset"] and entry["terms_url"].startswith("https://"), name
            assert entry["terms_url"].startswith("https://") and entry["homepage"].startswith("https://"), name
        else:
            assert entry.get("url", "").startswith("https://"), name
    assert list(load_registry(PROJECT)) == [
        line.strip()[2:] for line in (PROJECT / "sources.yaml").read_text().splitlines() if line.startswith("  - ")
    ]
    # portal sources too: a clone that has not fetched (or pinned) them builds, keeping their committed rows
    assert set(load_registry(PROJECT)) == set(catalog())


def test_a_catalog_name_takes_every_fact_from_its_source_yaml(tmp_path: Path) -> None:

    spec = load_registry(_root_listing(tmp_path, "ahp-ct"))["ahp-ct"]
    written = yaml.safe_load((Path(catalog_module.__file__).parent / "ahp_ct" / "source.yaml").read_text())
    assert (spec.url, spec.branch, spec.license, spec.options) == (
        written["url"],
        written["branch"],
        written["license"],
        written["options"],
    )
    assert spec.parser == "ahp-ct" and spec.path == "datasets/ahp-ct"


def test_a_mapping_overrides_a_catalog_source_and_is_checked_like_any_entry(tmp_path: Path) -> None:
    root = _root_listing(tmp_path, {"name": "darshan-xray", "options": {"include_augmented": False}})
    spec = load_registry(root)["darshan-xray"]
    assert spec.options == {"include_augmented": False}
    assert spec.url == catalog()["darshan-xray"]["url"]
    with pytest.raises(RegistryError, match="refused URL"):
        load_registry(_root_listing(tmp_path, {"name": "darshan-xray", "url": "ext::sh -c id"}))


def test_a_local_source_names_a_catalog_parser_or_a_layout(tmp_path: Path) -> None:
    local = {"name": "hospital-y", "url": "https://example.org/y.git", "modalities": ["ct"], "license": "CC0-1.0"}
    root = _root_listing(tmp_path, {**local, "parser": "dicom_study"}, {**local, "name": "z", "parser": "figure1-xray"})
    registry = load_registry(root)
    assert get_parser(registry["hospital-y"].parser) is get_parser("ahp-ct")
    assert registry["z"].parser == "figure1-xray"
    for unknown in ("ieee8023", "covidnet"):  # an old module name; a layout helper without parse()
        with pytest.raises(RegistryError, match=f"invalid parser name '{unknown}'"):
            load_registry(_root_listing(tmp_path, {**local, "parser": unknown}))


def test_an_unknown_plain_name_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"'hospital-z' is not a catalog source \(known: .*ahp-ct"):
        load_registry(_root_listing(tmp_path, "hospital-z"))


@pytest.mark.upstream
def test_every_sample_folder_a_source_yaml_names_exists(shared: Path) -> None:
    from covid19_images.testing.miniature import SNAPSHOT_FOLDERS, miniature_dir

    # a snapshot only the miniature holds (MedSeg with its LFS volumes resolved) is in the miniature
    miniature_only = {
        folder: miniature_dir(name) / sub for name, snapshots in SNAPSHOT_FOLDERS.items() for sub, folder in snapshots
    }
    for name, folders in sample_folders().items():
        for folder in folders:
            where = shared / folder
            if not where.is_dir() and folder in miniature_only:
                where = miniature_only[folder]
            assert where.is_dir(), f"{name}: samples names {folder}, in neither {shared} nor the miniature"


def test_parsers_report_problems_only_through_the_context() -> None:
    """No catalog or layout module builds a Problem itself: one it built could be dropped unreported."""
    import ast

    sources = Path(catalog_module.__file__).parent.parent
    modules = [*sources.joinpath("catalog").rglob("*.py"), *sources.joinpath("layouts").rglob("*.py")]
    assert len(modules) > len(catalog())
    for module in modules:
        nodes = list(ast.walk(ast.parse(module.read_text())))
        names = {node.id for node in nodes if isinstance(node, ast.Name)}
        names |= {alias.name for node in nodes if isinstance(node, ast.ImportFrom) for alias in node.names}
        assert "Problem" not in names, module


# ---------------------------------------------------------------- portal sources


def test_every_portal_catalog_source_loads_with_its_pin_and_no_git_fields(tmp_path: Path) -> None:
    portal = [name for name, entry in catalog().items() if entry.get("kind") == "portal"]
    assert portal
    registry = load_registry(_root_listing(tmp_path, *portal))
    for name in portal:
        spec, written = registry[name], catalog()[name]
        assert spec.is_portal and (spec.portal, spec.dataset) == (written["portal"], str(written["dataset"]))
        assert spec.version == str(written.get("version", "")) and spec.url == ""
        assert all(item["name"] and set(item) <= {"name", "into", "extract", "url", "size"} for item in spec.files)
        assert [str(i["name"] if isinstance(i, dict) else i) for i in written.get("files", ())] == [
            i["name"] for i in spec.files
        ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("portal", "dropbox", "portal 'dropbox' must be one of"),
        ("dataset", "", "needs its stable id in 'dataset:'"),
        ("version", "", "needs 'version'"),
        ("terms_url", "http://example.org/terms", "refused URL"),
        ("files", [{"name": "../escape.zip"}], "must be a plain relative path"),
        ("files", [{"name": "/etc/passwd"}], "must be a plain relative path"),
        ("files", [{"name": "a.zip", "into": "../outside"}], "must be a plain relative path"),
        ("files", [{"name": "a.zip", "url": "ext::sh -c id"}], "refused URL"),
        ("files", [{"name": "a.zip", "url": "http://example.org/a.zip"}], "refused URL"),
        ("files", [{"path": "a.zip"}], "each of 'files' is a name or a mapping of"),
        ("kind", "svn", "kind 'svn' must be one of"),
    ],
)
def test_a_portal_entry_is_refused_when_unsafe_or_unpinned(tmp_path: Path, field: str, value, message: str) -> None:
    entry = {
        "name": "portal-x",
        "kind": "portal",
        "portal": "kaggle",
        "dataset": "owner/slug",
        "version": "3",
        "terms_url": "https://example.org/terms",
        "parser": "rsna-pneumonia",
    }
    assert load_registry(_root_listing(tmp_path, entry))["portal-x"].is_portal
    with pytest.raises(RegistryError, match=re.escape(message)):
        load_registry(_root_listing(tmp_path, {**entry, field: value}))


def test_a_manual_portal_source_needs_no_version_and_a_git_source_still_needs_its_url(tmp_path: Path) -> None:
    manual = {"name": "m", "kind": "portal", "portal": "manual", "dataset": "share", "parser": "rsna-pneumonia"}
    assert load_registry(_root_listing(tmp_path, manual))["m"].version == ""
    with pytest.raises(RegistryError, match="invalid URL"):
        load_registry(_root_listing(tmp_path, {"name": "g", "parser": "rsna-pneumonia"}))
