"""An incremental sync gives byte for byte what a full rebuild gives, whatever upstream did.

Two roots follow the same mirrors of real samples: one syncs normally (unchanged sources
reused from the cache, known git blobs not probed, only new fingerprints searched), the other
with ``rebuild=True`` (everything read, probed and searched again). After each round of random
upstream changes (add, delete, modify, rename, relabel, patient merge, a source removed), their
manifests, problem lists and splits must be identical.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from covid19_images.core.paths import SafePaths, UnsafePath, safe_relative
from covid19_images.manifest.build import MANIFEST_FILE, PROBLEMS_FILE
from covid19_images.sync.run import sync
from covid19_images.testing.mirrors import mirror_path
from tests.conftest import new_root

IEEE = "ieee8023-covid-chestxray"
DARSHAN = "darshan-xray"
NIH = "nih-chestxray14-sample"
SOURCES = (IEEE, DARSHAN, NIH)


@dataclass
class Metadata:
    """Where a source's metadata CSV names its images, labels and patients."""

    csv: str
    file_column: str
    folder: str
    label_column: str
    patient_column: str


METADATA = {
    IEEE: Metadata("metadata.csv", "filename", "images", "finding", "patientid"),
    NIH: Metadata("sample_labels.csv", "Image Index", "sample/images", "Finding Labels", "Patient ID"),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _git(*args: str, cwd: Path) -> str:
    env = {
        "GIT_AUTHOR_NAME": "upstream",
        "GIT_AUTHOR_EMAIL": "u@example.invalid",
        "GIT_COMMITTER_NAME": "upstream",
        "GIT_COMMITTER_EMAIL": "u@example.invalid",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(cwd),
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _variant(source: Path, target: Path, rng: random.Random) -> None:
    """Write a changed copy of an image: the same bytes, a re-encoding, or slightly changed pixels."""
    kind = rng.choice(["copy", "reencode", "brighter"] if source != target else ["reencode", "brighter"])
    if kind == "copy" or source.suffix.lower() not in IMAGE_SUFFIXES:
        shutil.copyfile(source, target)
        return
    with Image.open(source) as image:
        picture = image.convert("L")
    if kind == "brighter":
        pixels = np.asarray(picture).astype(np.int16) + rng.randint(3, 40)
        picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    picture.save(target, format="PNG" if target.suffix.lower() == ".png" else "JPEG", quality=rng.randint(60, 95))


class Upstream:
    """A working clone of one source's mirror that receives random changes."""

    def __init__(self, name: str, bare: Path, work: Path, branch: str) -> None:
        self.name, self.bare, self.work, self.branch = name, bare, work, branch
        _git("clone", "-q", "-b", branch, str(bare), str(work), cwd=work.parent)

    def images(self) -> list[Path]:
        return sorted(
            p
            for p in self.work.rglob("*")
            if p.is_file() and ".git" not in p.parts and p.suffix.lower() in IMAGE_SUFFIXES
        )

    def change(self, rng: random.Random, round_no: int) -> list[str]:
        meta = METADATA.get(self.name)
        done = []
        for step in range(rng.randint(2, 4)):
            op = rng.choice(
                ["add", "delete", "modify", "rename", "relabel", "merge"]
                if meta
                else ["add", "delete", "modify", "rename"]
            )
            tag = f"r{round_no}s{step}"
            (self._csv_change if meta else self._file_change)(op, tag, rng)
            done.append(op)
        _git("add", "-A", ".", cwd=self.work)
        _git("commit", "-q", "--allow-empty", "-m", f"round {round_no}: {', '.join(done)}", cwd=self.work)
        _git("push", "-q", "origin", f"HEAD:{self.branch}", cwd=self.work)
        return done

    def _file_change(self, op: str, tag: str, rng: random.Random) -> None:
        images = self.images()
        if not images:
            return
        picked = rng.choice(images)
        if op == "add":
            _variant(picked, picked.with_name(f"{tag}_{picked.stem}.png"), rng)
        elif op == "delete":
            picked.unlink()
        elif op == "modify":
            _variant(picked, picked, rng)
        elif op == "rename":
            picked.rename(picked.with_name(f"{tag}_{picked.name}"))

    def _csv_change(self, op: str, tag: str, rng: random.Random) -> None:
        meta = METADATA[self.name]
        path = self.work / meta.csv
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        folder = self.work / meta.folder
        present = [i for i, name in enumerate(frame[meta.file_column]) if (folder / name).is_file()]
        if not present:
            return
        row = rng.choice(present)
        image = folder / frame.at[row, meta.file_column]
        if op == "add":
            new_name = f"{tag}_{Path(image.name).stem}.png"
            _variant(image, folder / new_name, rng)
            added = frame.iloc[[row]].copy()
            added[meta.file_column] = new_name
            if rng.random() < 0.5:
                added[meta.patient_column] = f"9{rng.randint(100, 999)}"
            frame = pd.concat([frame, added], ignore_index=True)
        elif op == "delete":
            image.unlink()
            frame = frame.drop(index=row)
        elif op == "modify":
            _variant(image, image, rng)
        elif op == "rename":
            new_name = f"{tag}_{image.name}"
            image.rename(folder / new_name)
            frame.at[row, meta.file_column] = new_name
        elif op == "relabel":
            labels = sorted(set(frame[meta.label_column]) - {frame.at[row, meta.label_column]}) or ["Pneumonia"]
            frame.at[row, meta.label_column] = rng.choice(labels)
        elif op == "merge":
            other = rng.choice(present)
            frame.at[row, meta.patient_column] = frame.at[other, meta.patient_column]
        frame.to_csv(path, index=False)


def _drop_source(root: Path, name: str) -> None:
    data = yaml.safe_load((root / "sources.yaml").read_text())
    data["sources"] = [s for s in data["sources"] if (s if isinstance(s, str) else s["name"]) != name]
    (root / "sources.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _outputs(root: Path) -> tuple[bytes, bytes]:
    return (root / MANIFEST_FILE).read_bytes(), (root / PROBLEMS_FILE).read_bytes()


@pytest.mark.upstream
@pytest.mark.parametrize("seed", [11, 12])
def test_incremental_sync_equals_full_rebuild_after_random_upstream_changes(
    seed: int, mirrors: Path, registry, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    local = tmp_path / "mirrors"
    upstreams: dict[str, Upstream] = {}
    (tmp_path / "work").mkdir()
    for name in SOURCES:
        spec = registry[name]
        bare = mirror_path(local, spec.url)
        shutil.copytree(mirror_path(mirrors, spec.url), bare)
        upstreams[name] = Upstream(name, bare, tmp_path / "work" / name, spec.branch)
    incremental = new_root(tmp_path / "incremental", list(SOURCES))
    full = new_root(tmp_path / "full", list(SOURCES))
    reused: list[str] = []
    skipped_probes = 0
    for round_no in range(4):
        if round_no:
            changed = rng.sample(sorted(upstreams), k=rng.randint(1, len(upstreams) - 1))
            for name in changed:
                upstreams[name].change(rng, round_no)
        if round_no == 3:
            gone = rng.choice(sorted(upstreams))
            _drop_source(incremental, gone)
            _drop_source(full, gone)
        a = sync(incremental, mirror=local, progress=False)
        b = sync(full, mirror=local, progress=False, rebuild=True)
        assert not a.failed and not b.failed, a.summary()
        manifest_a, problems_a = _outputs(incremental)
        manifest_b, problems_b = _outputs(full)
        assert problems_a == problems_b, f"round {round_no}: problems differ"
        assert manifest_a == manifest_b, f"round {round_no}: manifests differ"
        reused += a.build.reused
        skipped_probes += b.build.probed - a.build.probed
        assert sorted(a.changes) == sorted(b.changes)
    frame = pd.read_csv(incremental / MANIFEST_FILE, dtype=str, keep_default_na=False)
    assert frame.groupby("split_group")["split"].nunique().max() == 1
    # the shortcuts were really taken, or this test compared two full rebuilds
    assert reused, "no source was ever reused from the cache"
    assert skipped_probes > 0, "the incremental syncs probed as much as the rebuilds"


def test_safe_paths_give_the_same_answers_as_safe_relative(tmp_path: Path) -> None:
    base = tmp_path / "src"
    (base / "images" / "sub").mkdir(parents=True)
    (base / "images" / "a.png").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (base / "escape").symlink_to(tmp_path / "outside")
    (base / "inside").symlink_to(base / "images")
    (base / "images" / "sub" / "deep").symlink_to(tmp_path / "outside")  # a link below the top level
    names = [
        "images/sub/deep/x.png",
        "images/sub/deep",
        "images/a.png",
        "./images/a.png",
        "images//a.png",
        "images\\a.png",
        "images/../images/a.png",
        "../x",
        "/etc/passwd",
        "C:/x",
        "C:",
        "",
        "a\0b",
        "escape/x.png",
        "inside/a.png",
        "escape",
        ".",
        "images/./sub/",
        "images/.hidden",
        "...",
        "images/sub/b.png",
        "inside/../../outside",
    ]
    for with_links in (True, False):
        if not with_links:
            (base / "escape").unlink()
            (base / "inside").unlink()
            (base / "images" / "sub" / "deep").unlink()
        checker = SafePaths(base)
        for name in names:
            try:
                expected: str = safe_relative(base, name).as_posix()
            except UnsafePath as err:
                expected = f"refused: {err}"  # the reason is what the problem list shows
            try:
                got: str = checker.check(name)
            except UnsafePath as err:
                got = f"refused: {err}"
            assert got == expected, (name, with_links)
        if with_links:
            with pytest.raises(UnsafePath, match="outside the source folder"):
                checker.check("images/sub/deep/x.png")


def _random_frame(rng: np.random.Generator, count: int) -> pd.DataFrame:
    from covid19_images.imaging.fingerprints import PHASH_HEX

    hashes = [rng.integers(0, 256, PHASH_HEX // 2, dtype=np.uint8).tobytes().hex() for _ in range(count)]
    for i in range(0, count, 4):  # near copies at every distance around both thresholds
        bits = np.unpackbits(np.frombuffer(bytes.fromhex(hashes[i]), dtype=np.uint8))
        flip = rng.choice(256, size=int(rng.integers(0, 60)), replace=False)
        bits[flip] ^= 1
        hashes.append(np.packbits(bits).tobytes().hex())
    n = len(hashes)
    sha = [f"s{i}" for i in range(n)]
    sha[5] = sha[6] = "same-file"  # one file twice
    return pd.DataFrame(
        {
            "image_id": [f"{i:04d}" for i in range(n)],
            "sha256": sha,
            "pixel_sha256": [f"p{i % (n - 3)}" for i in range(n)],  # three pixel-equal pairs
            "phash": [h if i % 50 else "" for i, h in enumerate(hashes)],  # some blank pictures
            "path": "",
            "format": "png",
        }
    )


def test_near_index_gives_the_same_answer_as_a_fresh_search() -> None:
    from covid19_images.manifest.duplicates import find_duplicates

    rng = np.random.default_rng(5)
    frame = _random_frame(rng, 400)
    pictures = {}

    def thumbnails(position: int) -> np.ndarray | None:
        # deterministic per file: most near pairs agree on pixels, some do not, some cannot be read
        key = frame["sha256"].iat[position]
        if key not in pictures:
            seed = int(key[1:]) if key[1:].isdigit() else 0
            pictures[key] = None if seed % 17 == 3 else np.full((4, 4), float(seed % 3 == 0))
        return pictures[key]

    def answer(result) -> tuple:
        def edges(items):
            return sorted((frame["image_id"].iat[e.a], frame["image_id"].iat[e.b], e.kind, e.distance) for e in items)

        return list(result.groups), edges(result.edges), edges(result.rejected), edges(result.unconfirmed)

    index = None
    rows = rng.permutation(len(frame))
    present = rows[:250]
    for step in range(5):
        current = frame.iloc[np.sort(present)].reset_index(drop=True)
        grown = find_duplicates(
            current,
            thumbnails=lambda p, c=current: thumbnails(frame.index.get_loc(int(c["image_id"].iat[p]))),
            index=index,
        )
        fresh = find_duplicates(
            current, thumbnails=lambda p, c=current: thumbnails(frame.index.get_loc(int(c["image_id"].iat[p])))
        )
        assert answer(grown) == answer(fresh), f"step {step}"
        assert any(e.kind == "near" for e in fresh.edges) and fresh.rejected and fresh.unconfirmed
        index = grown.index
        # next sync: some files go, some come
        present = np.concatenate([present[rng.random(len(present)) > 0.1], rng.choice(rows, size=40)])
        present = np.unique(present)


def test_many_copies_of_one_picture_cost_one_edge_each() -> None:
    from covid19_images.manifest.duplicates import find_duplicates

    copies = 9000
    frame = pd.DataFrame(
        {
            "image_id": [f"{i:05d}" for i in range(copies)],
            "sha256": [f"s{i}" for i in range(copies)],  # re-encoded: different files ...
            "pixel_sha256": "P",  # ... with the same pixels
            "phash": "ab" * 32,  # and the same perceptual hash
            "path": "",
            "format": "png",
        }
    )
    result = find_duplicates(frame)
    assert set(result.groups) == {"00000"}
    assert len([e for e in result.edges if e.kind == "pixels"]) == copies - 1
    # near pairs among 9,000 equal hashes are all found, but as edges between distinct files
    assert len([e for e in result.edges if e.kind == "near"]) == 0  # every pair is already a pixel edge


@pytest.mark.upstream
def test_probing_in_worker_processes_gives_the_same_manifest(
    mirrors: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from covid19_images.manifest import source_build

    threads = new_root(tmp_path / "threads", [DARSHAN])
    sync(threads, mirror=mirrors, progress=False)
    monkeypatch.setattr(source_build, "PROCESS_MIN", 1)
    processes = new_root(tmp_path / "processes", [DARSHAN])
    report = sync(processes, mirror=mirrors, progress=False)
    assert report.build.probed > 1
    assert _outputs(processes) == _outputs(threads)


def test_queried_search_equals_brute_force_on_the_queried_pairs() -> None:
    from covid19_images.manifest.near_index import hash_bytes, pairs_within

    rng = np.random.default_rng(9)
    frame = _random_frame(rng, 300)
    hashes = [h for h in frame["phash"] if h]
    hashes.append(hashes[0])  # the last row's only partner is row 0
    _, bits = hash_bytes(hashes)
    values = [int(h, 16) for h in hashes]
    every = {
        (i, j, (values[i] ^ values[j]).bit_count())
        for i, j in itertools.combinations(range(len(hashes)), 2)
        if (values[i] ^ values[j]).bit_count() <= 48
    }
    # rows whose near partner has a smaller row number, queried without that partner
    later = sorted({j for i, j, _ in every})[:5]
    for queries in ([0], [3, 4, 5], list(range(0, len(hashes), 7)), later, [len(hashes) - 1]):
        for limit in (0, 24, 48):
            expected = {p for p in every if p[2] <= limit and (p[0] in queries or p[1] in queries)}
            # numpy measures a few queried pairs; numpy_pairs=0 sends them through faiss, as many
            # queries against a large index are (a sync adding hundreds of pictures to 50,000)
            for tiles in ({}, {"rows_per_tile": 5, "cols_per_tile": 11}):
                for numpy_pairs in ({}, {"numpy_pairs": 0}):
                    a, b, d = pairs_within(bits, limit, np.asarray(queries), **tiles, **numpy_pairs)
                    found = list(zip(a.tolist(), b.tolist(), d.tolist(), strict=True))
                    assert found == sorted(expected), (queries, limit, tiles, numpy_pairs)
                    assert d.dtype == np.int64, "distances are whole bits (the stored index keeps integers)"
    assert len(pairs_within(bits, 48, np.arange(len(hashes)))[0]) > 10


def test_near_index_is_reused_only_when_stored_with_the_same_settings(tmp_path: Path) -> None:
    """A stored index comes back as it was; one made with other settings, or torn, is ignored."""
    import json

    from covid19_images.manifest.duplicates import find_duplicates
    from covid19_images.manifest.near_index import NearIndex

    frame = _random_frame(np.random.default_rng(3), 120)
    built = find_duplicates(frame).index
    assert built is not None and len(built.edges) > 0
    assert NearIndex.load(tmp_path / "absent", built.settings) is None
    built.save(tmp_path / "index")
    loaded = NearIndex.load(tmp_path / "index", built.settings)
    assert loaded is not None and loaded.settings == built.settings
    assert loaded.fingerprints.to_dict() == built.fingerprints.to_dict()
    pd.testing.assert_frame_equal(loaded.edges, built.edges)
    # other thresholds, or the index of another format version: not reused
    assert NearIndex.load(tmp_path / "index", {**built.settings, "accept": 23}) is None
    meta = tmp_path / "index" / "near-index.json"
    meta.write_text(json.dumps({**built.settings, "version": 0}), encoding="utf-8")
    assert NearIndex.load(tmp_path / "index", built.settings) is None
    # a sync killed while saving: the settings file is written last, so a torn save is ignored
    built.save(tmp_path / "index")
    (tmp_path / "index" / "near-edges.parquet").write_bytes(b"not parquet")
    assert NearIndex.load(tmp_path / "index", built.settings) is None
    (tmp_path / "index" / "near-edges.parquet").unlink()
    assert NearIndex.load(tmp_path / "index", built.settings) is None
    meta.write_text("{", encoding="utf-8")
    assert NearIndex.load(tmp_path / "index", built.settings) is None


def test_near_index_checks_the_pixels_of_a_known_pair_only_once() -> None:
    """With the last sync's index, only pairs with a new or changed picture are decoded and compared.

    Decoding both files of a candidate pair is the expensive step of the duplicate search; a sync
    that adds nothing must decode nothing, and one that adds a picture only that picture's pairs.
    """
    from covid19_images.manifest.duplicates import NEAR_ACCEPT, find_duplicates

    frame = _random_frame(np.random.default_rng(7), 400)  # 500 rows
    asked: list[str] = []

    def thumbnails(position: int, current: pd.DataFrame) -> np.ndarray:
        asked.append(str(current["image_id"].iat[position]))
        return np.full((4, 4), float(int(current["image_id"].iat[position]) % 2))

    grown = frame.copy()
    grown.loc[0, "phash"] = grown.loc[4, "phash"]
    # 20 new rows are searched one by one, 450 by matrix products: both must skip known pairs
    for known in (list(range(480)), [*range(40), *range(400, 410)]):  # the latter: 10 copies of the 40
        asked.clear()
        first = frame.iloc[known].reset_index(drop=True)
        full = find_duplicates(first, thumbnails=lambda p, f=first: thumbnails(p, f))
        asked.clear()
        again = find_duplicates(first, thumbnails=lambda p, f=first: thumbnails(p, f), index=full.index)
        assert asked == []  # nothing new: no pixel check repeated
        assert list(again.groups) == list(full.groups)
        # a picture whose perceptual hash changed, and the new rows: only their pairs are checked
        more = find_duplicates(grown, thumbnails=lambda p: thumbnails(p, grown), index=full.index)
        checked = list(zip(asked[::2], asked[1::2], strict=True))
        new_ids = {"0000", *grown["image_id"].drop(index=known)}
        assert any(e.distance and e.distance > NEAR_ACCEPT for e in more.edges + more.rejected)
        assert checked and all(a in new_ids or b in new_ids for a, b in checked), checked
        assert len(set(checked)) == len(checked)  # and each pair once
        fresh = find_duplicates(grown, thumbnails=lambda p: thumbnails(p, grown))
        assert list(more.groups) == list(fresh.groups)
        assert sorted((e.a, e.b, e.kind) for e in more.edges) == sorted((e.a, e.b, e.kind) for e in fresh.edges)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({}, {"accept": 10}),
        ({}, {"candidate": 30}),
        ({}, {"confirm_mse": 5.0}),
        ({"thumbnails": None}, {}),  # candidates left unconfirmed, now checkable on pixels
    ],
)
def test_an_index_made_under_other_settings_is_not_reused(before: dict, after: dict) -> None:
    """Edges decided under other thresholds, or without pixel checks, are decided again."""
    from covid19_images.manifest.duplicates import find_duplicates

    frame = _random_frame(np.random.default_rng(13), 300)

    checker = np.tile([[0.0, 1.0], [1.0, 0.0]], (2, 2))

    def thumbnails(position: int) -> np.ndarray:  # two pictures: a checkerboard and its negative
        return checker if int(frame["image_id"].iat[position]) % 2 else 1 - checker

    def answer(result) -> tuple:
        kinds = (result.edges, result.rejected, result.unconfirmed)
        return list(result.groups), [sorted((e.a, e.b, e.distance) for e in edges) for edges in kinds]

    old = find_duplicates(frame, **{"thumbnails": thumbnails, **before}).index
    settings = {"thumbnails": thumbnails, **after}
    fresh = find_duplicates(frame, **settings)
    assert answer(find_duplicates(frame, **settings, index=old)) == answer(fresh)
    assert answer(fresh) != answer(find_duplicates(frame, **{"thumbnails": thumbnails, **before}))


def _tampered(index, change: str):
    """A copy of a stored index with one hostile or damaged change."""
    from covid19_images.manifest.near_index import NearIndex

    edges, fingerprints = index.edges.copy(), index.fingerprints.copy()
    keys = list(fingerprints.index)
    linked = set(edges["a"]) | set(edges["b"])
    loners = [k for k in keys if k not in linked]
    if change == "fake edge":  # two unrelated pictures declared near at a plausible distance
        fake = {"a": loners[0], "b": loners[1], "distance": 3, "mse": float("nan"), "status": "near"}
        edges = pd.concat([edges, pd.DataFrame([fake])], ignore_index=True)
    elif change == "fake edge at its real distance":
        from covid19_images.manifest.duplicates import hamming

        real = hamming(fingerprints[loners[0]], fingerprints[loners[1]])
        fake = {"a": loners[0], "b": loners[1], "distance": real, "mse": 0.0, "status": "near"}
        edges = pd.concat([edges, pd.DataFrame([fake])], ignore_index=True)
    elif change == "rejected turned near":
        position = int(np.flatnonzero(edges["status"].to_numpy() == "rejected")[0])
        edges.loc[position, "status"] = "near"
    elif change == "bad distance value":
        edges["distance"] = edges["distance"].astype(object)
        edges.loc[0, "distance"] = "abc"
    elif change == "unknown status":
        edges.loc[0, "status"] = "maybe"
    elif change == "bad fingerprint":
        fingerprints.iloc[0] = "zz" * 32
    elif change == "edge listed twice":
        edges = pd.concat(
            [
                edges,
                edges.iloc[[0]][["b", "a", "distance", "mse", "status"]].set_axis(
                    ["a", "b", "distance", "mse", "status"], axis=1
                ),
            ],
            ignore_index=True,
        )
    return NearIndex(fingerprints, edges, index.settings)


@pytest.mark.parametrize(
    "change",
    [
        "fake edge",
        "fake edge at its real distance",
        "rejected turned near",
        "bad distance value",
        "unknown status",
        "bad fingerprint",
        "edge listed twice",
    ],
)
def test_a_tampered_or_damaged_index_is_not_trusted_and_the_answer_is_a_fresh_search(change: str) -> None:
    from covid19_images.manifest.duplicates import find_duplicates

    frame = _random_frame(np.random.default_rng(11), 200)

    def thumbnails(position: int) -> np.ndarray:
        return np.full((4, 4), float(int(frame["image_id"].iat[position]) % 3 == 0))

    fresh = find_duplicates(frame, thumbnails=thumbnails)
    assert fresh.rejected and fresh.index is not None and not fresh.index.distrusted
    again = find_duplicates(frame, thumbnails=thumbnails, index=_tampered(fresh.index, change))
    assert list(again.groups) == list(fresh.groups)
    assert sorted((e.a, e.b) for e in again.edges) == sorted((e.a, e.b) for e in fresh.edges)
    assert again.index is not None and again.index.distrusted
    pd.testing.assert_frame_equal(again.index.edges, fresh.index.edges)
    # and the honest index is reused as it is
    assert not find_duplicates(frame, thumbnails=thumbnails, index=fresh.index).index.distrusted


def _stored_edges(index) -> list[tuple]:
    """An index's edges as plain tuples, in order (NaN ``mse`` as None)."""
    return [
        (str(a), str(b), int(d), None if pd.isna(m) else float(m), str(s))
        for a, b, d, m, s in index.edges[["a", "b", "distance", "mse", "status"]].itertuples(index=False)
    ]


def test_the_near_index_tables_are_stored_plain(tmp_path: Path) -> None:
    """Random hex keys: no dictionary and no compression (both cost load time and saved nothing), and
    a base written so still loads as the index that was saved."""
    import pyarrow.parquet as pq

    from covid19_images.manifest.duplicates import find_duplicates
    from covid19_images.manifest.near_index import NearIndex

    built = find_duplicates(_random_frame(np.random.default_rng(5), 80)).index
    built.save(tmp_path)
    for name in ("near-fingerprints.parquet", "near-edges.parquet"):
        metadata = pq.ParquetFile(tmp_path / name).metadata
        for group in range(metadata.num_row_groups):
            for column in range(metadata.num_columns):
                chunk = metadata.row_group(group).column(column)
                assert chunk.compression == "UNCOMPRESSED", (name, chunk.path_in_schema)
                assert not chunk.has_dictionary_page, (name, chunk.path_in_schema)
    loaded = NearIndex.load(tmp_path, built.settings)
    assert loaded is not None and loaded.fingerprints.to_dict() == built.fingerprints.to_dict()


@pytest.mark.parametrize("delta_min", [1024, 1])  # ten new keys: a delta of the base, then the base alone
def test_a_loaded_near_index_holds_its_keys_as_the_search_makes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delta_min: int
) -> None:
    """Object keys and hashes, as ``_search`` builds them, so its check and its lookup share one hash
    table: an index loaded as pandas' Arrow text was turned back into objects by every reader
    (0.15-0.2 s of a one-image sync at 200,000 images, docs/benchmarks.md round thirteen)."""
    from covid19_images.manifest import near_index
    from covid19_images.manifest.duplicates import find_duplicates
    from covid19_images.manifest.near_index import NearIndex, key_index

    monkeypatch.setattr(near_index, "DELTA_MIN", delta_min)
    frame = _random_frame(np.random.default_rng(6), 80)
    first = find_duplicates(frame.iloc[:70].reset_index(drop=True)).index
    first.save(tmp_path)
    grown = find_duplicates(frame, index=NearIndex.load(tmp_path, first.settings)).index
    grown.save(tmp_path)
    assert (tmp_path / "near-delta-fingerprints.parquet").exists() == (delta_min == 1024)
    loaded = NearIndex.load(tmp_path, grown.settings)
    assert loaded is not None and loaded.fingerprints.to_dict() == grown.fingerprints.to_dict()
    assert loaded.fingerprints.dtype == object and loaded.fingerprints.index.dtype == object
    assert key_index(loaded.fingerprints) is loaded.fingerprints.index


@pytest.mark.parametrize("delta_min", [1024, 8])
def test_a_near_index_saved_as_a_delta_loads_as_the_index_that_was_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delta_min: int
) -> None:
    """Sync after sync (files go, come, and come back), the index saved and loaded again is the one
    saved, and searching with it answers as a fresh search does; small changes are written as a
    delta beside the untouched base, large ones (past ``DELTA_MIN`` and an eighth) as a new base."""
    import json

    from covid19_images.manifest import near_index
    from covid19_images.manifest.duplicates import find_duplicates
    from covid19_images.manifest.near_index import NearIndex

    monkeypatch.setattr(near_index, "DELTA_MIN", delta_min)
    rng = np.random.default_rng(17)
    frame = _random_frame(rng, 400)
    folder = tmp_path / "cache"
    rows = rng.permutation(len(frame))
    present = rows[:250]
    kinds = []
    index = None
    removed = present[:0]
    for step in range(10):
        current = frame.iloc[np.sort(present)].reset_index(drop=True)
        grown = find_duplicates(current, index=index)
        fresh = find_duplicates(current)
        assert list(grown.groups) == list(fresh.groups), f"step {step}"
        assert not grown.index.distrusted
        base_before = (folder / "near-fingerprints.parquet").read_bytes() if folder.exists() else b""
        grown.index.save(folder)
        delta = json.loads((folder / "near-index.json").read_text())["delta"]
        kinds.append(delta)
        if delta:  # the base stays as it was; only the delta files are written
            assert (folder / "near-fingerprints.parquet").read_bytes() == base_before
        index = NearIndex.load(folder, grown.index.settings)
        assert index is not None, f"step {step}"
        assert index.fingerprints.to_dict() == grown.index.fingerprints.to_dict()
        assert _stored_edges(index) == _stored_edges(grown.index), f"step {step}"
        gone, come = (0.1, 40) if step % 4 == 3 else (0.02, 3)  # a large change every fourth sync
        kept = rng.random(len(present)) > gone
        if step % 3 == 2:  # the files the last sync removed come back (their stored edges were dropped)
            present, kept = np.concatenate([present, removed]), np.ones(len(present) + len(removed), dtype=bool)
        removed = present[~kept]
        present = np.unique(np.concatenate([present[kept], rng.choice(rows, size=come)]))
    assert kinds[0] is False and True in kinds  # the first save is a base; small changes are deltas
    if delta_min == 8:  # the delta outgrew an eighth of the base: a new base, then deltas of it again
        assert kinds[1:].count(False) >= 1 and kinds[kinds.index(False, 1) :].count(True) >= 1, kinds


def test_a_damaged_or_torn_delta_is_never_believed(tmp_path: Path) -> None:
    import json

    from covid19_images.manifest.duplicates import find_duplicates
    from covid19_images.manifest.near_index import NearIndex

    frame = _random_frame(np.random.default_rng(23), 200)
    folder = tmp_path / "cache"
    first = find_duplicates(frame.iloc[:150])
    first.index.save(folder)
    loaded = NearIndex.load(folder, first.index.settings)
    grown = find_duplicates(frame, index=loaded)
    grown.index.save(folder)
    meta = folder / "near-index.json"
    assert json.loads(meta.read_text())["delta"] is True
    delta_edges = folder / "near-delta-edges.parquet"
    saved = delta_edges.read_bytes()
    # a fake edge in the delta: the index loads, the check refuses it, the search starts afresh
    edges = pd.read_parquet(delta_edges)
    keys = grown.index.fingerprints.index
    fake = {"a": keys[0], "b": keys[1], "distance": 1, "mse": np.nan, "status": "near"}
    pd.concat([edges, pd.DataFrame([fake])], ignore_index=True).to_parquet(delta_edges, index=False)
    again = find_duplicates(frame, index=NearIndex.load(folder, first.index.settings))
    assert again.index.distrusted
    assert list(again.groups) == list(find_duplicates(frame).groups)
    # a delta file cut short, or gone, while the settings say there is one: no index
    delta_edges.write_bytes(saved[: len(saved) // 2])
    assert NearIndex.load(folder, first.index.settings) is None
    delta_edges.unlink()
    assert NearIndex.load(folder, first.index.settings) is None
    # a delta file the settings do not name (a full save that died before removing it) is not read
    delta_edges.write_bytes(saved)
    meta.write_text(json.dumps({**first.index.settings, "version": 1, "delta": False}), encoding="utf-8")
    base_only = NearIndex.load(folder, first.index.settings)
    assert base_only is not None
    assert base_only.fingerprints.to_dict() == first.index.fingerprints.to_dict()
    # a settings file that is valid JSON but not an object (hand-edited, another tool's): no index
    for text in ("[]", "1", '"delta"', "null"):
        meta.write_text(text, encoding="utf-8")
        assert NearIndex.load(folder, first.index.settings) is None, text


def test_an_index_whose_edges_do_not_begin_with_its_base_is_saved_whole(tmp_path: Path) -> None:
    """A delta stores only what was added to the base's edges; an index whose edges are not the
    base's kept ones followed by new ones (reordered, a status or a distance changed) is written
    whole, and loads as it was."""
    from covid19_images.manifest.duplicates import find_duplicates
    from covid19_images.manifest.near_index import NearIndex, _between

    frame = _random_frame(np.random.default_rng(37), 200)
    folder = tmp_path / "cache"
    first = find_duplicates(frame.iloc[:245])  # the planted copies follow the 200 pictures
    first.index.save(folder)
    grown = find_duplicates(frame, index=NearIndex.load(folder, first.index.settings)).index
    assert len(_between(first.index.edges, grown.fingerprints.index)) >= 4  # base edges kept
    edges = grown.edges
    for changed in (edges.iloc[::-1], edges.assign(status="rejected"), edges.assign(distance=edges["distance"] + 1)):
        grown.edges = changed.reset_index(drop=True)
        grown.save(folder)
        assert json.loads((folder / "near-index.json").read_text())["delta"] is False
        assert _stored_edges(NearIndex.load(folder, grown.settings)) == _stored_edges(grown)
        first.index.save(folder)  # the first base again, for the next case
        grown.base = first.index.base


def test_a_delta_keeps_the_base_edge_of_its_first_key_and_drops_those_of_a_removed_one(tmp_path: Path) -> None:
    """Loading a delta keeps the base's edges whose two ends are still there, and only those: the
    edge of the key stored first (the smallest hash) is kept, the edge whose first end was removed
    is not."""
    from covid19_images.manifest.duplicates import find_duplicates
    from covid19_images.manifest.near_index import NearIndex

    rng = np.random.default_rng(29)

    def near(value: str, bits: int) -> str:
        number = int(value, 16)
        for bit in rng.choice(200, size=bits, replace=False):  # low bits: the first bytes, so the order, stay
            number ^= 1 << int(bit)
        return f"{number:064x}"

    first = "00" + rng.integers(0, 256, 31, dtype=np.uint8).tobytes().hex()  # stored first: the smallest
    other = rng.integers(128, 256, 32, dtype=np.uint8).tobytes().hex()
    fillers = [rng.integers(1, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(30)]
    hashes = [first, near(first, 6), other, near(other, 9), *fillers]
    frame = pd.DataFrame(
        {
            "image_id": [f"{i:04d}" for i in range(len(hashes))],
            "sha256": [f"s{i}" for i in range(len(hashes))],
            "pixel_sha256": "",
            "phash": hashes,
            "path": "",
            "format": "png",
        }
    )
    folder = tmp_path / "cache"
    base = find_duplicates(frame)
    base.index.save(folder)
    assert base.index.fingerprints.index[0].startswith(first)
    with_edges = {(a[:64], b[:64]) for a, b in base.index.edges[["a", "b"]].itertuples(index=False)}
    assert {frozenset(p) for p in with_edges} >= {frozenset((first, hashes[1])), frozenset((other, hashes[3]))}
    # the one of ``other`` and its copy stored first (an edge's ``a`` end) goes, a new picture
    # comes: small enough for a delta
    gone = 2 if other < hashes[3] else 3
    changed = pd.concat(
        [frame.drop(index=gone), frame.iloc[[4]].assign(image_id="new", sha256="s-new", phash=near(other, 80))]
    )
    grown = find_duplicates(changed, index=NearIndex.load(folder, base.index.settings))
    grown.index.save(folder)
    assert json.loads((folder / "near-index.json").read_text())["delta"] is True
    loaded = NearIndex.load(folder, grown.index.settings)
    assert _stored_edges(loaded) == _stored_edges(grown.index)
    ends = {frozenset((a[:64], b[:64])) for a, b in loaded.edges[["a", "b"]].itertuples(index=False)}
    assert frozenset((first, hashes[1])) in ends
    assert not any(hashes[gone] in pair for pair in ends)
