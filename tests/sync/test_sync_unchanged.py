"""A sync that finds nothing changed reuses the last build whole, and gives what ``--rebuild`` gives.

Every source of the project is registered (sources without a sample mirror stay "not
checked out", as for a maintainer whose upstream is unreachable), two roots follow the same
mirrors: one syncs normally, the other with ``rebuild=True``. The shortcut of
:mod:`covid19_images.manifest.unchanged` must be taken when nothing changed, must not be taken
when anything it depends on changed (a file it wrote, a checkout, an upstream commit), and
must leave the manifest, problems, annotations and splits byte for byte as the rebuild's.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from covid19_images.manifest import annotation_cache
from covid19_images.manifest.io import ANNOTATIONS_FILE, MANIFEST_FILE, PROBLEMS_FILE
from covid19_images.manifest.reviews import REVIEWS_FILE, append_review
from covid19_images.manifest.source_cache import cache_dir_of
from covid19_images.manifest.unchanged import REVIEWS_FILE as UNCHANGED_REVIEWS_FILE
from covid19_images.sources.spec import SourceSpec
from covid19_images.sync.run import sync
from covid19_images.testing.mirrors import mirror_path
from tests.conftest import PROJECT, git, new_root

pytestmark = pytest.mark.upstream
OUTPUTS = (MANIFEST_FILE, PROBLEMS_FILE, ANNOTATIONS_FILE)
NIH = "nih-chestxray14-sample"


def _every_source() -> list[str]:
    listed = yaml.safe_load((PROJECT / "sources.yaml").read_text())["sources"]
    return [s if isinstance(s, str) else s["name"] for s in listed]


def _outputs(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in OUTPUTS}


def _push_a_copied_image(local: Path, spec: SourceSpec, work_name: str, *, first: bool, listed: bool = False) -> None:
    """Push one commit to the source's mirror that adds a copy of its first (or last) sample image;
    ``listed``: with a row of the labels table for it (the original's row under the copy's name)."""
    bare = mirror_path(local, spec.url)
    work = bare.parent / work_name
    git("clone", "-q", "-b", spec.branch, str(bare), str(work), cwd=bare.parent)
    images = sorted((work / "sample" / "images").glob("*.png"))
    image = images[0] if first else images[-1]
    (work / "sample" / "images" / f"copy_{image.name}").write_bytes(image.read_bytes())
    if listed:
        table = work / "sample_labels.csv"
        text = table.read_text(encoding="utf-8")
        row = next(line for line in text.splitlines() if line.startswith(f"{image.name},"))
        table.write_text(text.rstrip("\n") + f"\ncopy_{row}\n", encoding="utf-8")
    git("add", "-A", ".", cwd=work)
    env = {"GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@x.invalid", "GIT_COMMITTER_NAME": "u"}
    git("-c", "user.email=u@x.invalid", "commit", "-q", "-m", "one image more", cwd=work, env=env)
    git("push", "-q", "origin", f"HEAD:{spec.branch}", cwd=work)


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> tuple[Path, Path, Path]:
    """(incremental root, rebuilt root, mirrors): every source registered, both synced once."""
    base = tmp_path_factory.mktemp("unchanged")
    local = base / "mirrors"
    subprocess.run(["cp", "-a", str(mirrors), str(local)], check=True)
    incremental = new_root(base / "incremental", _every_source())
    full = new_root(base / "full", _every_source())
    for root, rebuild in ((incremental, False), (full, True)):
        report = sync(root, mirror=local, progress=False, rebuild=rebuild)
        assert not report.build.files_current
    return incremental, full, local


def test_reviews_file_name_agrees() -> None:
    assert UNCHANGED_REVIEWS_FILE == REVIEWS_FILE


def test_no_change_reuses_the_whole_build_and_equals_a_rebuild(roots) -> None:
    incremental, full, local = roots
    before = _outputs(incremental)
    a = sync(incremental, mirror=local, progress=False)
    b = sync(full, mirror=local, progress=False, rebuild=True)
    assert a.build.files_current and a.build.unchanged, "nothing changed, yet the build was redone"
    assert not b.build.files_current
    assert _outputs(incremental) == before
    assert _outputs(incremental) == _outputs(full)
    assert [str(p) for p in a.build.problems] == [str(p) for p in b.build.problems]
    assert a.build.rows == len(b.build.manifest)
    assert a.summary() == b.summary()
    # the frame is still there for a caller who asks, read from disk
    assert a.build.manifest.astype(str).values.tolist() == b.build.manifest.astype(str).values.tolist()


@pytest.mark.parametrize("damaged", [MANIFEST_FILE, PROBLEMS_FILE, MANIFEST_FILE + ".integrity", ANNOTATIONS_FILE])
def test_a_file_the_build_wrote_changed_by_hand_is_written_again(roots, damaged: str) -> None:
    incremental, full, local = roots
    expected = _outputs(full)
    path = incremental / damaged
    path.write_bytes(path.read_bytes() + b"edited by hand\n")
    a = sync(incremental, mirror=local, progress=False)
    assert not a.build.files_current
    if damaged == ANNOTATIONS_FILE:
        # the join cannot keep rows of a damaged file and says so; the next build, from the file
        # this one wrote, will not: so this build is not one to reuse as it is
        assert b"previous annotations not kept" in (incremental / PROBLEMS_FILE).read_bytes()
        assert not sync(incremental, mirror=local, progress=False).build.files_current
    assert _outputs(incremental) == expected
    again = sync(incremental, mirror=local, progress=False)
    assert again.build.files_current
    assert _outputs(incremental) == expected


def test_a_review_or_a_dirty_checkout_turns_the_shortcut_off(roots) -> None:
    incremental, full, local = roots
    stray = incremental / "datasets" / NIH / "stray.png"
    stray.write_bytes(b"not upstream's")
    try:
        a = sync(incremental, mirror=local, progress=False)
        assert not a.build.files_current
        assert NIH in {u.name for u in a.failed}  # refused: local modifications
    finally:
        stray.unlink()
    a = sync(incremental, mirror=local, progress=False)
    assert not a.build.files_current  # the refusal's problem is gone again: rebuilt once
    assert _outputs(incremental) == _outputs(full)
    reviews = incremental / REVIEWS_FILE
    append_review(incremental, "a" * 64, "b" * 64, "different", reviewer="test")  # a pair no root holds
    try:
        assert not sync(incremental, mirror=local, progress=False).build.files_current
    finally:
        reviews.unlink()


def test_an_upstream_commit_is_built_and_equals_a_rebuild(roots, registry) -> None:
    incremental, full, local = roots
    _push_a_copied_image(local, registry[NIH], "nih-work", first=True)
    readers = cache_dir_of(incremental) / annotation_cache.FOLDER
    stored = {p.name: p.stat().st_mtime_ns for p in readers.glob("*.pickle")}
    assert stored, "no annotation reader's output was kept"
    a = sync(incremental, mirror=local, progress=False)
    b = sync(full, mirror=local, progress=False, rebuild=True)
    assert not a.build.files_current
    assert {u.name: u.status for u in a.updates}[NIH] == "updated" and NIH not in a.build.reused
    assert a.summary() == b.summary()
    # the annotation sources did not move: their readers' output was reused, not read and stored again
    assert {p.name: p.stat().st_mtime_ns for p in readers.glob("*.pickle")} == stored
    assert _outputs(incremental) == _outputs(full)
    assert sync(incremental, mirror=local, progress=False).build.files_current


def test_an_unchanged_sync_imports_no_pandas(roots) -> None:
    incremental, _full, local = roots
    sync(incremental, mirror=local, progress=False)  # settles whatever a test before this one changed
    script = (
        "import sys; from pathlib import Path; from covid19_images.sync.run import sync; "
        f"r = sync(Path({str(incremental)!r}), mirror=Path({str(local)!r}), progress=False); "
        "print(json.dumps([r.build.files_current, r.build.rows, sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('pandas', 'numpy', 'scipy', 'pydicom', 'PIL'))]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + script], check=True, capture_output=True, text=True
    ).stdout
    current, rows, heavy = json.loads(out.strip().splitlines()[-1])
    assert current and rows > 0
    assert heavy == []


def test_a_changed_sync_of_a_source_without_dicom_imports_no_pydicom(roots, registry) -> None:
    """The one-image sync's imports: a build, so pandas and SciPy, but the DICOM sources are reused from
    their caches (the identified one behind its guard, manifest.secret_guard), so pydicom stays unloaded;
    ``benchmarks/bench_sync.py`` times exactly these imports as the changed sync's fixed part."""
    incremental, full, local = roots
    _push_a_copied_image(local, registry[NIH], "nih-work-imports", first=False)
    script = (
        "import json, sys; from pathlib import Path; from covid19_images.sync.run import sync; "
        f"r = sync(Path({str(incremental)!r}), mirror=Path({str(local)!r}), progress=False); "
        "print(json.dumps([r.build.files_current, {u.name: u.status for u in r.updates}, sorted({m.split('.')[0] "
        "for m in sys.modules if m.split('.')[0] in ('pandas', 'scipy', 'pydicom')})]))"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    current, statuses, heavy = json.loads(out.strip().splitlines()[-1])
    assert not current and statuses[NIH] == "updated"
    assert heavy == ["pandas", "scipy"]  # built, and without reading a DICOM header
    sync(full, mirror=local, progress=False, rebuild=True)
    assert _outputs(incremental) == _outputs(full)


def test_the_stage_benchmark_times_every_stage_of_a_changed_sync(roots, registry, tmp_path: Path) -> None:
    """``benchmarks/sync_phases.py`` wraps each stage where its caller looks it up: a function renamed or
    called through another name would drop out of the breakdown without a word, so every stage must be
    timed in a changed sync, the inclusive times must nest, and the wrapped sync must still give what
    ``--rebuild`` gives."""
    incremental, full, local = roots
    _push_a_copied_image(local, registry[NIH], "nih-work-phases", first=True, listed=True)  # one row built
    out = tmp_path / "phases.json"
    command = [str(incremental), "--mirror", str(local), "--quiet"]
    benchmark = PROJECT / "benchmarks" / "sync_phases.py"
    subprocess.run(
        [sys.executable, str(benchmark), str(out), "sync", "--root", *command], check=True, capture_output=True
    )
    seconds = json.loads(out.read_text(encoding="utf-8"))
    loaded = importlib.util.spec_from_file_location("sync_phases", benchmark)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)  # the standard library only: nothing of the sync is wrapped here
    stages = [label for label, _module, _attribute in module.STAGES]
    assert len(stages) > 20 and "build.manifest.duplicates" in stages
    assert [stage for stage in stages if stage not in seconds] == []
    assert 0 < seconds["build.manifest"] <= seconds["build"] <= seconds["sync"] <= seconds["process_after_interpreter"]
    assert seconds["build.manifest.changed_source.parse"] <= seconds["build.manifest.changed_source"]
    sync(full, mirror=local, progress=False, rebuild=True)
    assert _outputs(incremental) == _outputs(full)
