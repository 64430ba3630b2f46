"""An upstream change costs the change: the NIH parser recomputes only the rows that changed, and
the result is byte for byte what ``sync --rebuild`` gives.

Two roots follow the same mirror of the NIH sample: one syncs normally (its parser replays
unchanged rows from the row memo, :mod:`covid19_images.sources.row_memo`), the other with
``rebuild=True`` (no memo, no cache). After each upstream commit (images and rows added, a
row's labels changed, a row inserted at the top so every line number moves, a row removed, an
image's bytes changed) the manifest (with its splits), problems and annotations of the two
must be identical, and the incremental build must have computed exactly the rows that
changed: a memo keyed too loosely would replay a stale row (and differ from the rebuild), one
keyed too tightly would recompute everything (and fail the count). The replayed rows' manifest
rows are carried from the previous manifest (:mod:`covid19_images.manifest.row_carry`) unless
something they are made of moved: the counts say which, and the rebuild says they are right.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covid19_images.manifest.io import ANNOTATIONS_FILE, MANIFEST_FILE, PROBLEMS_FILE, read_manifest
from covid19_images.sources import row_blocks
from covid19_images.sync.run import sync
from covid19_images.testing.mirrors import mirror_path
from tests.conftest import git, new_root

pytestmark = pytest.mark.upstream
NIH = "nih-chestxray14-sample"
LABELS = "sample_labels.csv"
OUTPUTS = (MANIFEST_FILE, MANIFEST_FILE + ".integrity", PROBLEMS_FILE, ANNOTATIONS_FILE)
IDENTITY = {"GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@x.invalid", "GIT_COMMITTER_NAME": "u"}


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(32, 32), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _row(name: str, finding: str, patient: int, age: str = "045Y") -> bytes:
    return f"{name},{finding},0,{patient},{age},F,PA,2048,2048,0.143,0.143\r\n".encode()


@pytest.fixture(scope="module", params=[0, 2], ids=["blocks-as-shipped", "blocks-of-about-2-rows"])
def block_rows(request: pytest.FixtureRequest) -> Iterator[int]:
    """The row blocks' size (:mod:`covid19_images.sources.row_blocks`): as shipped (the miniature's few
    rows make one block; the larger real sample's thousands, many), and about 2 rows, so that every
    step below also replays and carries whole blocks beside the rows it changes."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param:
            patch.setattr(row_blocks, "BLOCK_ROWS", request.param)
            patch.setattr(row_blocks, "MAX_BLOCK", 4 * request.param)
        yield row_blocks.BLOCK_ROWS


@pytest.fixture(scope="module")
def roots(
    tmp_path_factory: pytest.TempPathFactory, mirrors: Path, registry, block_rows: int
) -> tuple[Path, Path, Path, Path]:
    """(incremental root, rebuilt root, mirrors, a clone of the NIH mirror to push from), both synced once."""
    base = tmp_path_factory.mktemp("row-memo")
    local = base / "mirrors"
    subprocess.run(["cp", "-a", str(mirrors), str(local)], check=True)
    spec = registry[NIH]
    bare = mirror_path(local, spec.url)
    work = base / "nih-work"
    git("clone", "-q", "-b", spec.branch, str(bare), str(work), cwd=base)
    incremental, full = new_root(base / "incremental", [NIH]), new_root(base / "full", [NIH])
    for root, rebuild in ((incremental, False), (full, True)):
        sync(root, mirror=local, progress=False, rebuild=rebuild)
    return incremental, full, local, work


def _push(work: Path, change: Callable[[Path], None], message: str) -> None:
    change(work)
    git("add", "-A", ".", cwd=work)
    git("-c", "user.email=u@x.invalid", "commit", "-q", "-m", message, cwd=work, env=IDENTITY)
    git("push", "-q", "origin", "HEAD", cwd=work)


def _both(roots) -> tuple:
    incremental, full, local, _work = roots
    a = sync(incremental, mirror=local, progress=False)
    b = sync(full, mirror=local, progress=False, rebuild=True)
    assert not a.failed and not b.failed
    assert {u.name: u.status for u in a.updates}[NIH] == "updated"
    for name in OUTPUTS:
        assert (incremental / name).read_bytes() == (full / name).read_bytes(), f"{name} differs from the rebuild"
    assert a.summary() == b.summary()
    assert b.build.reparsed == {}, "a rebuild must not use the row memo"
    assert b.build.carried == {}, "a rebuild must not carry rows"
    return a, b


def _nih_rows(root: Path) -> int:
    return int((read_manifest(root)["source"] == NIH).sum())


def _labels(work: Path) -> bytes:
    return (work / LABELS).read_bytes()


def _images(work: Path) -> Path:
    return work / "sample" / "images"


def step_added_images_cost_their_rows(roots) -> None:
    work = roots[3]

    def add(work: Path) -> None:
        for seed, name in ((1, "90000001_000.png"), (2, "90000002_000.png")):
            (_images(work) / name).write_bytes(_png(seed))
        # the second row's implausible age is a problem naming its line
        rows = _row("90000001_000.png", "Effusion", 90000001) + _row("90000002_000.png", "No Finding", 90000002, "411Y")
        (work / LABELS).write_bytes(_labels(work) + rows)

    before = _nih_rows(roots[0])
    _push(work, add, "two images")
    a, _b = _both(roots)
    assert a.build.reparsed == {NIH: 2}
    assert a.build.carried == {NIH: before}
    if before > row_blocks.BLOCK_ROWS * 4:  # the rows before the new ones hold whole blocks
        assert a.build.blocks[NIH] >= 1
    assert a.build.probed == 2
    paths = set(a.build.manifest["path"])
    assert {f"datasets/{NIH}/sample/images/90000001_000.png", f"datasets/{NIH}/sample/images/90000002_000.png"} <= paths


def step_a_changed_row_is_read_again_not_served_stale(roots) -> None:
    work = roots[3]

    def relabel(work: Path) -> None:
        data = _labels(work)
        assert b"90000001_000.png,Effusion," in data
        (work / LABELS).write_bytes(data.replace(b"90000001_000.png,Effusion,", b"90000001_000.png,Pneumonia,"))

    before = _nih_rows(roots[0])
    _push(work, relabel, "relabel")
    a, _b = _both(roots)
    assert a.build.reparsed == {NIH: 1}
    assert a.build.carried == {NIH: before - 1}
    assert a.build.probed == 0
    row = a.build.manifest.set_index("path").loc[f"datasets/{NIH}/sample/images/90000001_000.png"]
    assert (row["finding"], row["label"]) == ("Pneumonia", "pneumonia")


def step_a_row_inserted_at_the_top_moves_every_line_and_recomputes_one(roots) -> None:
    """Every later row's ``<file> line N`` moves by one: a replayed row's problem must name its new line."""
    incremental, _full, _local, work = roots
    lines = _labels(work).split(b"\r\n")
    old = next(n for n, line in enumerate(lines, start=1) if line.startswith(b"90000002_000.png,"))

    def insert(work: Path) -> None:
        header, _, rest = _labels(work).partition(b"\r\n")
        (_images(work) / "90000003_000.png").write_bytes(_png(3))
        (work / LABELS).write_bytes(header + b"\r\n" + _row("90000003_000.png", "Nodule", 90000003) + rest)

    assert f"{LABELS} line {old}," in (incremental / PROBLEMS_FILE).read_text()
    _push(work, insert, "row at the top")
    a, _b = _both(roots)
    assert a.build.reparsed == {NIH: 1}  # the 411Y row was replayed, not computed
    shown = (incremental / PROBLEMS_FILE).read_text()
    assert f"{LABELS} line {old + 1}," in shown and f"{LABELS} line {old}," not in shown


def step_a_removed_row_recomputes_nothing(roots) -> None:
    work = roots[3]

    def remove(work: Path) -> None:
        data = _labels(work)
        row = _row("90000002_000.png", "No Finding", 90000002, "411Y")
        assert row in data
        (work / LABELS).write_bytes(data.replace(row, b""))

    _push(work, remove, "remove a row")
    a, _b = _both(roots)
    assert a.build.reparsed == {NIH: 0}
    assert f"datasets/{NIH}/sample/images/90000002_000.png" not in set(a.build.manifest["path"])
    assert "images are not listed in sample_labels.csv" in (roots[0] / PROBLEMS_FILE).read_text()


def step_a_changed_image_is_probed_again_and_its_row_replayed(roots) -> None:
    work = roots[3]
    before = _nih_rows(roots[0])
    _push(work, lambda w: (_images(w) / "90000001_000.png").write_bytes(_png(99)), "new pixels")
    a, _b = _both(roots)
    assert a.build.reparsed == {NIH: 0}
    assert a.build.carried == {NIH: before - 1}  # its row is replayed, its manifest row built on the new blob
    assert a.build.probed == 1


def step_an_image_found_by_name_is_replayed_until_a_second_file_takes_its_name(roots) -> None:
    """A row whose image sits outside the image folders depends on every file of its name
    (``ctx.files_named``): replayed while that answer holds, computed again once it does not."""
    incremental, _full, _local, work = roots
    name = "90000004_000.png"

    def add(work: Path) -> None:
        (work / "elsewhere").mkdir()
        (work / "elsewhere" / name).write_bytes(_png(4))
        (work / LABELS).write_bytes(_labels(work) + _row(name, "Mass", 90000004))

    def second(work: Path) -> None:
        (work / "copy").mkdir()
        (work / "copy" / name).write_bytes(_png(5))

    _push(work, add, "an image outside the image folders")
    a, _b = _both(roots)
    assert a.build.reparsed == {NIH: 1}
    assert f"datasets/{NIH}/elsewhere/{name}" in set(a.build.manifest["path"])
    _push(work, lambda w: (w / "notes.txt").write_text("unrelated\n", encoding="utf-8"), "an unrelated file")
    a, _b = _both(roots)
    assert a.build.reparsed == {NIH: 0}
    _push(work, second, "a second file of that name")
    a, _b = _both(roots)
    assert a.build.reparsed == {NIH: 1}
    assert not any(path.endswith(name) for path in a.build.manifest["path"])
    assert f"{name} found in 2 places; skipped" in (incremental / PROBLEMS_FILE).read_text()


def step_a_second_row_for_an_image_takes_it_and_gives_it_back(roots) -> None:
    """A new row at the top names an image an old row names: the first row keeps it, so the old
    row's carried entry must give way (and be reported), and take its image back once the new row goes."""
    incremental, _full, _local, work = roots
    image = "90000001_000.png"
    top = _row(image, "Mass", 90000001)

    def insert(work: Path) -> None:
        header, _, rest = _labels(work).partition(b"\r\n")
        (work / LABELS).write_bytes(header + b"\r\n" + top + rest)

    _push(work, insert, "a second row for an image")
    a, _b = _both(roots)
    assert a.build.reparsed == {NIH: 1}
    row = a.build.manifest.set_index("path").loc[f"datasets/{NIH}/sample/images/{image}"]
    assert row["finding"] == "Mass"
    assert "file listed more than once; first row kept" in (incremental / PROBLEMS_FILE).read_text()
    _push(work, lambda w: (w / LABELS).write_bytes(_labels(w).replace(top, b"")), "the second row removed")
    a, _b = _both(roots)
    assert a.build.reparsed == {NIH: 0}
    row = a.build.manifest.set_index("path").loc[f"datasets/{NIH}/sample/images/{image}"]
    assert row["finding"] == "Pneumonia"


def step_a_manifest_from_another_build_is_not_carried_from(roots) -> None:
    """The manifest files put back as an earlier sync wrote them (as ``git checkout`` of an older commit
    of manifests/ does): the memo describes a later build, so none of its rows may be carried from this
    manifest (the relabelled row would come back with its old label), and the next sync carries again."""
    incremental, full, _local, work = roots
    earlier = {name: (incremental / name).read_bytes() for name in OUTPUTS}  # the rebuilt root's are the same
    image = "90000001_000.png"

    def relabel(work: Path) -> None:
        (work / LABELS).write_bytes(_labels(work).replace(f"{image},Pneumonia,".encode(), f"{image},Edema,".encode()))

    _push(work, relabel, "relabel again")
    _both(roots)
    for root in (incremental, full):  # both, so that their integrity records name the same previous manifest
        for name, data in earlier.items():
            (root / name).write_bytes(data)
    _push(work, lambda w: (w / "notes.txt").write_text("another unrelated file\n", encoding="utf-8"), "unrelated")
    a, _b = _both(roots)
    assert a.build.carried == {NIH: 0}
    row = a.build.manifest.set_index("path").loc[f"datasets/{NIH}/sample/images/{image}"]
    assert row["finding"] == "Edema"
    before = _nih_rows(incremental)
    _push(work, lambda w: (w / "notes.txt").write_text("changed\n", encoding="utf-8"), "unrelated again")
    a, _b = _both(roots)
    assert a.build.carried == {NIH: before}


def test_each_upstream_change_costs_its_rows_and_equals_the_rebuild(roots, block_rows: int) -> None:
    """One upstream's history, each step on the commits before it (so one test: xdist may send the
    tests of a module to different workers, each with its own fixture, whatever their order here)."""
    step_added_images_cost_their_rows(roots)
    step_a_changed_row_is_read_again_not_served_stale(roots)
    step_a_row_inserted_at_the_top_moves_every_line_and_recomputes_one(roots)
    step_a_removed_row_recomputes_nothing(roots)
    step_a_changed_image_is_probed_again_and_its_row_replayed(roots)
    step_an_image_found_by_name_is_replayed_until_a_second_file_takes_its_name(roots)
    step_a_second_row_for_an_image_takes_it_and_gives_it_back(roots)
    step_a_manifest_from_another_build_is_not_carried_from(roots)
