"""The incremental sync's cache rules, one by one, without a sync: what a source's cache key is
made of, when the stored cache index is believed, and where the shrink guard draws its line.

``test_cache_inputs.py``, ``test_incremental.py`` and ``tests/sync/test_sync_shrink.py`` prove the
same promises end to end; these are the fast tests ``make mutation`` runs for
``manifest.source_cache`` and ``sync.shrink``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from covid19_images.core.pseudonyms import PSEUDONYM_KEY_ENV
from covid19_images.core.schema import Problem
from covid19_images.imaging.budget import FRAME_PIXELS_ENV, FRAMES_ENV, InvalidSetting
from covid19_images.manifest.build import BuildResult
from covid19_images.manifest.source_cache import (
    CACHE_VERSION,
    SourceCache,
    SourceEntry,
    cache_dir_of,
    checkout_is_clean,
    settings_fingerprint,
    source_key,
)
from covid19_images.sources.spec import SourceSpec
from covid19_images.sync.shrink import MIN_ROWS, Shrink, find_shrinks

SPEC = SourceSpec(
    name="site-x", url="https://example.org/x.git", branch="main", parser="site_x", modalities=("xray",), license="MIT"
)


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (PSEUDONYM_KEY_ENV, FRAME_PIXELS_ENV, FRAMES_ENV):
        monkeypatch.delenv(name, raising=False)


# --- the cache key ---------------------------------------------------------------------------


def test_the_key_is_stable_for_the_same_inputs() -> None:
    assert source_key(SPEC, "abc") == source_key(dataclasses.replace(SPEC), "abc")
    assert len(source_key(SPEC, "abc")) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"url": "https://example.org/y.git"},
        {"branch": "dev"},
        {"parser": "site_y"},
        {"modalities": ("xray", "ct")},
        {"license": "CC-BY-4.0"},
        {"lfs": True},
        {"pending": True},
        {"options": {"include_augmented": False}},
        {"files": ({"name": "a.zip"},)},
        {"version": "2"},
    ],
)
def test_every_registry_field_is_part_of_the_key(change: dict) -> None:
    """A registry entry edited between two syncs of an unchanged source re-reads it (options and
    files too, although they take no part in the spec's equality)."""
    assert source_key(dataclasses.replace(SPEC, **change), "abc") != source_key(SPEC, "abc")


def test_options_of_any_yaml_type_are_part_of_the_key() -> None:
    """YAML gives dates (and the like) in options: they are keyed by their text, not refused."""
    import datetime

    dated = dataclasses.replace(SPEC, options={"since": datetime.date(2020, 3, 1)})
    assert source_key(dated, "abc") != source_key(SPEC, "abc")
    later = dataclasses.replace(SPEC, options={"since": datetime.date(2020, 3, 2)})
    assert source_key(dated, "abc") != source_key(later, "abc")


def test_the_cache_version_and_the_manifest_columns_are_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import covid19_images.manifest.source_cache as source_cache

    before = source_key(SPEC, "abc")
    monkeypatch.setattr(source_cache, "CACHE_VERSION", source_cache.CACHE_VERSION + 1)
    assert source_key(SPEC, "abc") != before
    monkeypatch.undo()
    assert source_key(SPEC, "abc") == before
    monkeypatch.setattr(source_cache, "MANIFEST_COLUMNS", (*source_cache.MANIFEST_COLUMNS, "new_column"))
    assert source_key(SPEC, "abc") != before


def test_the_commit_is_part_of_the_key() -> None:
    assert source_key(SPEC, "abc") != source_key(SPEC, "abd")
    assert source_key(SPEC, "") != source_key(SPEC, "abc")


@pytest.mark.parametrize(("env", "value"), [(FRAME_PIXELS_ENV, "1000"), (FRAMES_ENV, "3"), (PSEUDONYM_KEY_ENV, "k")])
def test_every_setting_that_decides_rows_is_part_of_the_key(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    before, settings = source_key(SPEC, "abc"), settings_fingerprint()
    monkeypatch.setenv(env, value)
    assert source_key(SPEC, "abc") != before and settings_fingerprint() != settings


def test_the_pseudonym_key_is_in_the_settings_only_as_a_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, "a site's secret")
    settings = json.loads(settings_fingerprint())
    assert "a site's secret" not in settings_fingerprint()
    assert settings["pseudonym_key_sha256"] == hashlib.sha256(b"a site's secret").hexdigest()
    assert settings["max_frame_pixels"] > 0 and settings["max_frames"] > 0


def test_a_bad_budget_setting_is_refused_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FRAME_PIXELS_ENV, "abc")
    with pytest.raises(InvalidSetting, match=FRAME_PIXELS_ENV):
        source_key(SPEC, "abc")


# --- the stored index ------------------------------------------------------------------------


def _saved(tmp_path: Path) -> tuple[Path, Path, SourceCache]:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("image_id\na\n")
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    problem = Problem("site-x", "row 3: unknown label 'ü 肺'", path="meta.csv", row=3)
    cache = SourceCache(entries={"site-x": SourceEntry("k1", 5, [problem])}, reviews_sha256="r1")
    cache.save(tmp_path / "git" / "cache", digest)  # the folder is made with its parents
    return tmp_path / "git" / "cache", manifest, cache


def test_a_saved_index_loads_back_for_its_own_manifest(tmp_path: Path) -> None:
    directory, manifest, cache = _saved(tmp_path)
    loaded = SourceCache.load(directory, manifest)
    assert loaded.entries == cache.entries and loaded.reviews_sha256 == "r1"
    assert loaded.manifest_sha256 == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert sorted(p.name for p in directory.iterdir()) == ["sources.json"]  # no temporary file left


def test_an_index_of_another_manifest_version_or_shape_is_not_believed(tmp_path: Path) -> None:
    directory, manifest, _ = _saved(tmp_path)
    manifest.write_text("image_id\nb\n")  # the manifest was replaced since
    assert SourceCache.load(directory, manifest).entries == {}
    directory, manifest, _ = _saved(tmp_path)
    index = directory / "sources.json"
    data = json.loads(index.read_text())
    for broken in (
        {**data, "version": CACHE_VERSION + 1},
        {k: v for k, v in data.items() if k != "version"},
        {k: v for k, v in data.items() if k != "sources"},
        {**data, "sources": {"site-x": {"key": "k1", "rows": "five", "problems": []}}},
        {**data, "sources": {"site-x": {"key": "k1", "rows": 5, "problems": [{"nope": 1}]}}},
        {**data, "sources": {"site-x": {"key": "k1", "problems": []}}},
        {**data, "sources": ["site-x"]},
        [data],
    ):
        index.write_text(json.dumps(broken))
        assert SourceCache.load(directory, manifest).entries == {}, broken
        assert SourceCache.load(directory, manifest).manifest_sha256 == ""
    index.write_text('{"version": 1, "manifest_sha256": ')
    assert SourceCache.load(directory, manifest).entries == {}
    index.write_bytes(b"\xff\xfe")
    assert SourceCache.load(directory, manifest).entries == {}
    assert SourceCache.load(tmp_path / "absent", manifest).entries == {}
    assert SourceCache.load(directory, tmp_path / "absent.csv").entries == {}


def test_an_index_without_reviews_means_none(tmp_path: Path) -> None:
    directory, manifest, _ = _saved(tmp_path)
    index = directory / "sources.json"
    data = json.loads(index.read_text())
    del data["reviews_sha256"]
    index.write_text(json.dumps(data))
    loaded = SourceCache.load(directory, manifest)
    assert loaded.reviews_sha256 == "" and set(loaded.entries) == {"site-x"}


def test_a_cache_lives_only_in_a_git_root_and_a_clean_checkout_is_exactly_its_commit(tmp_path: Path) -> None:
    import git

    assert cache_dir_of(tmp_path) is None
    assert not checkout_is_clean(tmp_path)
    repo = git.Repo.init(tmp_path / "r")
    assert cache_dir_of(tmp_path / "r") == Path(repo.git_dir) / "covid19-images-cache"
    with repo.config_writer() as config:
        config.set_value("status", "showUntrackedFiles", "no")  # a user's setting must not hide them
    (tmp_path / "r" / "a.txt").write_text("a")
    assert not checkout_is_clean(tmp_path / "r")  # untracked
    repo.index.add(["a.txt"])
    repo.index.commit("a", author=git.Actor("t", "t@example.invalid"), committer=git.Actor("t", "t@example.invalid"))
    assert checkout_is_clean(tmp_path / "r")
    (tmp_path / "r" / ".gitignore").write_text("*.log\n")
    repo.index.add([".gitignore"])
    repo.index.commit("i", author=git.Actor("t", "t@example.invalid"), committer=git.Actor("t", "t@example.invalid"))
    (tmp_path / "r" / "x.log").write_text("ignored, but a file the parser may read")
    assert not checkout_is_clean(tmp_path / "r")
    (tmp_path / "r" / "x.log").unlink()
    (tmp_path / "r" / "new" / "deeper").mkdir(parents=True)
    (tmp_path / "r" / "new" / "deeper" / "f.png").write_text("an untracked file in a new folder")
    assert not checkout_is_clean(tmp_path / "r")
    import shutil

    shutil.rmtree(tmp_path / "r" / "new")
    assert checkout_is_clean(tmp_path / "r")
    (tmp_path / "r" / "a.txt").write_text("b")
    assert not checkout_is_clean(tmp_path / "r")


# --- the shrink guard ------------------------------------------------------------------------


def _rows(counts: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """``{source: (labelled rows, unknown rows)}`` as manifest rows."""
    rows = [
        {"source": source, "label": "normal" if k < labelled else "unknown"}
        for source, (labelled, unknown) in counts.items()
        for k in range(labelled + unknown)
    ]
    return pd.DataFrame(rows, columns=["source", "label"])


def _build(counts: dict[str, tuple[int, int]], problems: list[Problem] | None = None) -> BuildResult:
    return BuildResult(_rows(counts), problems or [], commits={s: "c" for s in counts} | {"a": "c", "b": "c"})


def test_losing_exactly_half_is_allowed_and_more_than_half_is_refused() -> None:
    previous = _rows({"a": (10, 0), "b": (11, 0)})
    assert find_shrinks(previous, _build({"a": (5, 0), "b": (6, 0)}), set()) == []
    found = find_shrinks(previous, _build({"a": (4, 0), "b": (5, 0)}), set())
    assert sorted((s.source, s.before, s.after, s.what) for s in found) == [
        ("a", 10, 4, "labelled images"),
        ("b", 11, 5, "labelled images"),
    ]


def test_a_small_source_may_shrink_freely() -> None:
    previous = _rows({"a": (MIN_ROWS - 1, 0), "b": (MIN_ROWS, 0)})
    found = find_shrinks(previous, _build({"a": (0, 0), "b": (1, 0)}), set())
    assert [s.source for s in found] == ["b"]


def test_rows_turned_unknown_are_a_loss_and_unlabelled_sources_are_guarded_by_their_rows() -> None:
    previous = _rows({"a": (8, 0), "b": (0, 8)})
    found = find_shrinks(previous, _build({"a": (2, 6), "b": (0, 3)}), set())
    assert sorted((s.source, s.before, s.after, s.what) for s in found) == [
        ("a", 8, 2, "labelled images"),
        ("b", 8, 3, "images"),
    ]


def test_allowed_removed_or_unchecked_sources_are_not_guarded_and_a_fresh_root_has_nothing_to_lose() -> None:
    previous = _rows({"a": (8, 0), "b": (8, 0), "gone": (8, 0)})
    build = _build({"a": (0, 0), "b": (0, 0)})
    assert [(s.source, s.before, s.after) for s in find_shrinks(previous, build, {"a"})] == [("b", 8, 0)]
    assert find_shrinks(None, build, set()) == [] and find_shrinks(previous.iloc[:0], build, set()) == []


def test_the_refusal_names_the_source_s_first_two_errors_once_each() -> None:
    previous = _rows({"a": (8, 0), "b": (8, 0)})
    problems = [
        Problem("a", "no metadata.csv in checkout", level="error"),
        Problem("a", "no metadata.csv in checkout", level="error"),
        Problem("a", "a warning, not why", level="warning"),
        Problem("b", "b's own error", level="error"),
        Problem("a", "a third error, past the first two", level="error"),
        Problem("a", "a fourth one, not shown", level="error"),
    ]
    (found,) = find_shrinks(previous, _build({"a": (1, 0), "b": (8, 0)}, problems), set())
    assert found.why == "no metadata.csv in checkout; a third error, past the first two"
    (silent,) = find_shrinks(previous, _build({"a": (1, 0), "b": (8, 0)}), set())
    assert silent.why == "its parser now yields far fewer rows"
    long = [Problem("a", "x" * 500, level="error")]
    assert len(find_shrinks(previous, _build({"a": (1, 0), "b": (8, 0)}, long), set())[0].why) == 300
    message = Shrink("a", 8, 1, "why", "images").message()
    assert message == (
        "would drop 7 of its 8 images (why); refused, kept its previous rows and checkout "
        "(use --allow-shrink to accept)"
    )


def test_a_caller_that_read_the_manifest_gives_its_hash_and_the_file_is_not_hashed_again(tmp_path: Path) -> None:
    directory, manifest, cache = _saved(tmp_path)
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    manifest.write_text("image_id\nb\n")  # the file changed after the caller read and checked its bytes
    # the caller's rows come from the bytes it read: the cache belongs to them, not to the file now
    assert SourceCache.load(directory, manifest, digest).entries == cache.entries
    assert SourceCache.load(directory, manifest).entries == {}  # hashing the file finds the change
    assert SourceCache.load(directory, manifest, hashlib.sha256(b"other").hexdigest()).entries == {}


def test_the_recorded_cache_names_its_manifest_without_reading_it(tmp_path: Path) -> None:
    directory, manifest, cache = _saved(tmp_path)
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    manifest.unlink()  # reuse_unchanged asks its cheap questions before it hashes any written file
    recorded = SourceCache.recorded(directory)
    assert recorded.manifest_sha256 == digest and recorded.entries == cache.entries
    (directory / "sources.json").write_text('{"version": 1, "manifest_sha256": 7, "sources": {}}')
    assert SourceCache.recorded(directory).manifest_sha256 == ""  # not a hash: nothing is believed
    assert SourceCache.recorded(tmp_path / "absent").entries == {}
