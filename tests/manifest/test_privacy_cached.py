"""A source whose DICOM headers carry identifying values is reused from the cache without them.

Its cache entry keeps its problems redacted and a guard of its values
(:mod:`covid19_images.manifest.secret_guard`), never the values. A build that reuses it must give
exactly what a rebuild gives, and a problem of any source that may hold one of its values must
make the build read it again, so that the value is redacted. Real git, real DICOM headers (the
real pos-case slices with identifying values written in), real PNGs; every step is compared
byte for byte with ``sync --rebuild`` of a second root on the same upstreams.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covid19_images.manifest.build import MANIFEST_FILE, PROBLEMS_FILE
from covid19_images.manifest.source_cache import CACHE_DIR
from covid19_images.sync.run import sync
from tests.badinputs import IEEE_HEADER, Upstream, ieee_row
from tests.badinputs import make_root as make_test_root
from tests.manifest.test_privacy import IDENTITY, header_values, identified_slice, spellings

pytestmark = pytest.mark.upstream
CT, NOTES, SECOND = "ct-identified", "notes", "ct-identified-2"
PERFORMER = IDENTITY["PerformingPhysicianName"].split("^")[0]  # "Lindqvist"


def _notes_tree(tree: Path, rows: list[str], images: list[str]) -> Path:
    """An ieee8023-style source: ``images`` as real small PNGs, ``rows`` as its metadata."""
    (tree / "images").mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(images):
        pixels = np.random.default_rng(k).integers(0, 255, (32, 32), dtype=np.uint8)
        Image.fromarray(pixels).save(tree / "images" / name)
    (tree / "metadata.csv").write_text("\n".join([IEEE_HEADER, *rows]) + "\n")
    return tree


class Pair:
    """The same upstreams synced into two roots: one incrementally, one with ``rebuild=True``."""

    def __init__(self, tmp_path: Path, dicom_sources: tuple[str, ...] = (CT,)) -> None:
        self.tmp = tmp_path
        self.mirror = tmp_path / "mirror"
        self.upstreams: dict[str, Upstream] = {}
        sources = []
        for k, name in enumerate(dicom_sources):
            tree = tmp_path / f"tree-{name}"
            identified_slice("IM000118", tree / "study" / "IM000118", StationName=f"STATION-{k}")
            identified_slice("IM000164", tree / "study" / "IM000164")
            # a file named after a value: left out, and its problem names the path with the value redacted
            identified_slice("IM000420", tree / "study" / f"{PERFORMER}-IM000420")
            self._publish(name, tree)
            entry = {"parser": "dicom_study", "modalities": ["ct"], "options": {"label": "covid-19"}}
            sources.append({"name": name, "url": self.upstreams[name].url, **entry})
        self.set_notes([ieee_row("a.png")], ["a.png"])
        sources.append({"name": NOTES, "url": self.upstreams[NOTES].url})
        self.incremental = make_test_root(tmp_path / "incremental", sources)
        self.full = make_test_root(tmp_path / "full", sources)
        self.values = set().union(
            *(header_values(tmp_path / f"tree-{name}" / "study" / f) for name in dicom_sources for f in ("IM000118",))
        )

    def _publish(self, name: str, tree: Path) -> None:
        if name not in self.upstreams:
            self.upstreams[name] = Upstream(self.mirror, "example", name)
        self.upstreams[name].publish(tree)

    def set_notes(self, rows: list[str], images: list[str]) -> None:
        tree = self.tmp / f"tree-{NOTES}-{len(rows)}-{len(images)}"
        self._publish(NOTES, _notes_tree(tree, rows, images))

    def sync_both(self) -> list[str]:
        """Sync both roots, check their outputs are the same bytes; the sources the incremental one reused."""
        a = sync(self.incremental, mirror=self.mirror, progress=False)
        b = sync(self.full, mirror=self.mirror, progress=False, rebuild=True)
        assert not a.failed and not b.failed, a.summary()
        for name in (MANIFEST_FILE, PROBLEMS_FILE):
            assert (self.incremental / name).read_bytes() == (self.full / name).read_bytes(), name
        return list(a.build.reused)

    def cache(self) -> Path:
        return self.incremental / ".git" / CACHE_DIR


def _leaked(folder: Path, values: set[str]) -> list[str]:
    """Spellings of ``values`` found in any file under ``folder`` (case-insensitive)."""
    found = set()
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace").lower()
            found |= {v for v in spellings(values) if v.lower() in text}
    return sorted(found)


def test_an_identified_source_is_reused_with_a_guard_and_its_values_are_written_nowhere(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    assert pair.sync_both() == []
    assert set(IDENTITY.values()) - {IDENTITY["StationName"]} <= pair.values
    entry = json.loads((pair.cache() / "sources.json").read_text())["sources"][CT]
    assert set(entry["guard"]) == {"base", "digests"} and entry["guard"]["digests"]
    assert [p["path"] for p in entry["problems"]] == ["study/[removed]-IM000420"]  # stored redacted
    assert not _leaked(pair.cache(), pair.values)
    assert not _leaked(pair.incremental / "manifests", pair.values)
    pair.set_notes([ieee_row("a.png"), ieee_row("b.png")], ["a.png", "b.png"])  # another source changes
    reused = pair.sync_both()
    assert CT in reused, "the identified source was read again although nothing may hold its values"
    assert not _leaked(pair.cache(), pair.values)


def test_a_problem_that_may_hold_a_value_makes_the_build_read_the_source_again(tmp_path: Path) -> None:
    """Another source's problem names a file after the referring physician: only reading the DICOM
    headers again tells the build what to redact, so the guard must send it there."""
    pair = Pair(tmp_path)
    pair.sync_both()
    physician = IDENTITY["ReferringPhysicianName"].split("^")[0]  # "Okonkwo"
    missing = f"{physician.upper()}-film.png"
    pair.set_notes([ieee_row("a.png"), ieee_row(missing)], ["a.png"])
    reused = pair.sync_both()
    assert CT not in reused
    problems = (pair.incremental / PROBLEMS_FILE).read_text()
    assert "-film.png" in problems and physician.lower() not in problems.lower()
    # the identified source's entry holds no value (the notes source's own entry keeps its problems
    # as its metadata spells them, a file name its checkout holds anyway, as before)
    entry = json.dumps(json.loads((pair.cache() / "sources.json").read_text())["sources"][CT]).lower()
    assert "-im000420" in entry and not [v for v in spellings(pair.values) if v.lower() in entry]
    pair.set_notes([ieee_row("a.png")], ["a.png"])  # the name gone: reused again
    assert CT in pair.sync_both()


@pytest.mark.parametrize(
    "damaged",
    [{"base": 2, "digests": {"7": [1]}}, {"base": 3, "digests": {"7": [2**64]}}, "guard"],
    ids=["even-base", "digest-beyond-64-bits", "not-a-guard"],
)
def test_a_damaged_guard_is_never_believed(tmp_path: Path, damaged: object) -> None:
    pair = Pair(tmp_path)
    pair.sync_both()
    index = pair.cache() / "sources.json"
    data = json.loads(index.read_text())
    data["sources"][CT]["guard"] = damaged
    index.write_text(json.dumps(data))
    pair.set_notes([ieee_row("a.png"), ieee_row("b.png")], ["a.png", "b.png"])
    assert CT not in pair.sync_both()  # read again, and the same bytes as a rebuild


def test_when_one_identified_source_is_read_every_other_one_is_read_too(tmp_path: Path) -> None:
    """Two identified sources: one changes, so its values are read; the other's stored problems were
    redacted with the values of the first as they were, so it is read as well (rebuild's one pass)."""
    pair = Pair(tmp_path, (CT, SECOND))
    pair.sync_both()
    pair.set_notes([ieee_row("a.png"), ieee_row("b.png")], ["a.png", "b.png"])
    assert {CT, SECOND} <= set(pair.sync_both())
    tree = tmp_path / "tree-second-changed"
    identified_slice("IM000118", tree / "study" / "IM000118", StationName="STATION-CHANGED")
    pair._publish(SECOND, tree)
    reused = pair.sync_both()
    assert CT not in reused and SECOND not in reused
