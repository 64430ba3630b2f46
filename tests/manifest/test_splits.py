"""Split groups, stable split assignment, and the split schemes (default, official, loso)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from covid19_images.manifest.build import read_manifest
from covid19_images.manifest.split_schemes import loso_dropped, resolve_split
from covid19_images.manifest.splits import (
    assign_splits,
    components,
    explain_split_moves,
    format_split_moves,
    groups_across_splits,
    shared_patient_keys,
    split_for,
)
from covid19_images.testing.mirrors import build_mirror, mirror_path
from tests.conftest import new_root

PROJECT = Path(__file__).resolve().parents[2]


def rows(*items: tuple[str, str, str, str]) -> pd.DataFrame:
    """(image_id, source, patient_id, dup_group) rows."""
    return pd.DataFrame(
        [
            {"image_id": i, "source": s, "path": f"datasets/{s}/{i}.png", "patient_id": p, "dup_group": d}
            for i, s, p, d in items
        ]
    )


#: ``split_for`` of fixed keys, worked out once outside the package from the documented rule
#: (``sha256("covid19-images/v1\\0" + key)``, first 8 bytes big-endian / 2**64, then cumulative
#: 0.8 train / 0.1 val / 0.1 test), with the bucket value to 4 places. Keys near the edges
#: (p:26 at 0.796, p:2 at 0.8936, p:38 at 0.9097) pin the comparison and the cumulative sums.
SPLIT_TABLE = {
    "p:0": ("train", 0.0431), "p:1": ("train", 0.6188), "p:2": ("val", 0.8936), "p:3": ("train", 0.0896),
    "p:4": ("train", 0.0799), "p:5": ("train", 0.5437), "p:6": ("train", 0.3764), "p:7": ("test", 0.955),
    "p:8": ("train", 0.5571), "p:9": ("train", 0.0079), "p:10": ("train", 0.4608), "p:11": ("train", 0.0206),
    "p:17": ("val", 0.8496), "p:18": ("test", 0.9477), "p:20": ("test", 0.9645), "p:21": ("test", 0.9535),
    "p:26": ("train", 0.796), "p:27": ("val", 0.8265), "p:32": ("val", 0.8257), "p:35": ("val", 0.8579),
    "p:38": ("test", 0.9097), "p:39": ("val", 0.8462), "alpha:5": ("train", 0.7747), "alpha:12": ("val", 0.8337),
    "zhanglab-pediatric-xray:person1": ("test", 0.9497), "darshan-xray:file:a.jpeg": ("val", 0.8534),
}  # fmt: skip


def test_split_for_matches_a_table_worked_out_independently() -> None:
    from covid19_images.manifest.splits import bucket

    assert {key: split_for(key) for key in SPLIT_TABLE} == {key: split for key, (split, _) in SPLIT_TABLE.items()}
    for key, (_, value) in SPLIT_TABLE.items():
        assert bucket(key) == pytest.approx(value, abs=5e-5), key
    assert 0.0 <= bucket("") < 1.0 and bucket("p:0", salt="another salt") != bucket("p:0")
    # other ratios: cumulative edges at 0.5, 0.7 and 0.75; a bucket past the last edge goes to the last split
    short = (("a", 0.5), ("b", 0.2), ("c", 0.05))
    assert [split_for(k, short) for k in ("p:0", "p:1", "alpha:5", "p:26", "p:7")] == ["a", "b", "c", "c", "c"]
    assert [split_for(k, (("x", 0.6), ("y", 0.4))) for k in ("p:5", "p:1", "p:38")] == ["x", "y", "y"]


def test_split_for_is_close_to_the_ratios() -> None:
    keys = [f"src:{i}" for i in range(20000)]
    splits = pd.Series([split_for(k) for k in keys]).value_counts(normalize=True)
    assert abs(splits["train"] - 0.8) < 0.015 and abs(splits["val"] - 0.1) < 0.01 and abs(splits["test"] - 0.1) < 0.01


def test_groups_join_patients_through_duplicates_across_sources() -> None:
    manifest = rows(
        ("1", "a", "a:p1", ""),
        ("2", "a", "a:p1", "g"),
        ("3", "b", "b:file:x.png", "g"),  # a copy of image 2 in another source
        ("4", "b", "b:file:y.png", ""),
        ("5", "a", "a:p2", ""),
    )
    keys = components(manifest)
    assert keys[0] == keys[1] == keys[2] == "a:p1"
    assert len({keys[0], keys[3], keys[4]}) == 3
    assign_splits(manifest)
    assert groups_across_splits(manifest).empty
    assert manifest.loc[2, "split"] == manifest.loc[0, "split"]


def test_groups_across_splits_reports_a_straddling_group() -> None:
    manifest = rows(("1", "a", "a:p1", ""), ("2", "a", "a:p1", ""), ("3", "a", "a:p2", ""))
    assign_splits(manifest)
    manifest.loc[1, "split"] = "test" if manifest.loc[0, "split"] != "test" else "train"
    straddling = groups_across_splits(manifest)
    assert straddling["split_group"].tolist() == ["a:p1"]


def first_key_with_other_split(prefix: str, split: str, below: str) -> str:
    """A patient key that sorts before ``below`` and hashes to another split than ``split``."""
    for number in range(1, 10000):
        key = f"{prefix}{number}"
        if key < below and split_for(key) != split:
            return key
    raise AssertionError("no such key")


def test_existing_group_keeps_its_key_when_a_new_member_sorts_first() -> None:
    old = assign_splits(rows(("1", "z", "z:p9", ""), ("2", "z", "z:p9", "")))
    newcomer = first_key_with_other_split("a:p", old.loc[0, "split"], "z:p9")
    new = rows(("1", "z", "z:p9", "d"), ("2", "z", "z:p9", ""), ("3", "a", newcomer, "d"))
    assert components(new)[0] == newcomer, "without the previous manifest the key would change"
    assign_splits(new, old)
    assert new["split_group"].tolist() == ["z:p9"] * 3
    assert new.loc[0, "split"] == old.loc[0, "split"] and explain_split_moves(old, new) == []


def test_merging_two_existing_groups_moves_the_smaller_and_says_why() -> None:
    for seed in range(200):  # find two patients whose groups sit in different splits
        a, b = f"s:big{seed}", f"s:small{seed}"
        if split_for(a) != split_for(b):
            break
    old = assign_splits(rows(("1", "s", a, ""), ("2", "s", a, ""), ("3", "s", b, "")))
    new = rows(("1", "s", a, "d"), ("2", "s", a, ""), ("3", "s", b, "d"), ("4", "t", "t:new", "d"))
    assign_splits(new, old)
    assert set(new["split_group"]) == {a}, "the merged group keeps the key with most members"
    moves = explain_split_moves(old, new)
    assert [m.image_id for m in moves] == ["3"]
    assert "merged" in moves[0].reason and b in moves[0].reason
    assert "1 existing image(s) changed split" in format_split_moves(moves)


def test_changed_patient_id_is_named_as_the_reason() -> None:
    old = assign_splits(rows(("1", "s", "s:p1", "")))
    other = next(f"s:q{i}" for i in range(100) if split_for(f"s:q{i}") != old.loc[0, "split"])
    new = assign_splits(rows(("1", "s", other, "")), old.iloc[0:0])
    moves = explain_split_moves(old, new)
    assert len(moves) == 1 and "patient id changed" in moves[0].reason


# --- patients shared across sources (RICORD-1a/1b/1c MRNs) ---------------------------------

RICORD = {"r1a": "ricord", "r1b": "ricord", "r1c": "ricord", "other": "elsewhere"}


def test_shared_patient_keys_name_the_raw_id_in_the_source_namespace() -> None:
    manifest = rows(
        ("1", "r1a", "r1a:419639-000082", ""),
        ("2", "r1c", "r1c:419639-000082", ""),
        ("3", "r1b", "", ""),  # no patient id: shares nothing
        ("4", "plain", "plain:419639-000082", ""),  # a source that shares no namespace
        ("5", "r1b", "r1a:419639-000082", ""),  # an id outside its own source's namespace
        ("6", "other", "other:x:y", ""),
        ("7", "r1b", "r1b:", ""),  # an empty raw id names nobody
        ("8", "r1c", "r1c:", ""),
    )
    expected = ["ricord:419639-000082", "ricord:419639-000082", "", "", "", "elsewhere:x:y", "", ""]
    assert shared_patient_keys(manifest, RICORD).tolist() == expected
    assert shared_patient_keys(manifest, {}).tolist() == [""] * 8
    shuffled = manifest.set_axis([70, 3, 55, 1, 9, 12, 4, 0])  # a manifest's index need not be 0..n-1
    found = shared_patient_keys(shuffled, RICORD)
    assert found.tolist() == expected and found.index.tolist() == shuffled.index.tolist()


def test_the_same_mrn_in_two_ricord_collections_is_one_split_group() -> None:
    manifest = rows(
        ("1", "r1a", "r1a:m1", ""),
        ("2", "r1a", "r1a:m1", ""),
        ("3", "r1c", "r1c:m1", ""),  # m1 again, in the X-ray collection
        ("4", "r1c", "r1c:m2", "g"),
        ("5", "siim", "siim:s9", "g"),  # SIIM's copy of m2's picture
        ("6", "r1b", "r1b:m2", ""),  # m2's CT: joins m2's X-ray, and through the copy SIIM's patient
        ("7", "r1b", "", ""),
        ("8", "r1b", "", ""),  # two rows without a patient are not joined to each other
        ("9", "other", "other:m1", ""),  # m1 in another namespace is somebody else
        ("10", "plain", "plain:m1", ""),
    )
    own = ["r1b:file:datasets/r1b/7.png", "r1b:file:datasets/r1b/8.png"]
    joined = ["r1a:m1"] * 3 + ["r1b:m2"] * 3 + own + ["other:m1", "plain:m1"]
    assert components(manifest, RICORD) == joined
    assert components(manifest) == ["r1a:m1", "r1a:m1", "r1c:m1", "r1c:m2", "r1c:m2", "r1b:m2", *own,
                                    "other:m1", "plain:m1"]  # fmt: skip
    assign_splits(manifest, shared_patients=RICORD)
    assert manifest["split_group"].tolist() == joined
    assert manifest["split"].tolist() == [split_for(key) for key in joined]
    assert groups_across_splits(manifest).empty


def test_a_new_collection_joins_the_existing_group_of_its_patient_without_moving_it() -> None:
    """RICORD-1a synced first, 1c added later: 1c's picture of the same MRN takes 1a's group and split,
    even when its own key sorts first and would hash elsewhere; nothing already assigned moves."""
    mrn = next(f"m{i}" for i in range(200) if split_for(f"r1a:m{i}") != split_for(f"r1c:m{i}"))
    old = assign_splits(rows(("1", "r1c", f"r1c:{mrn}", ""), ("2", "r1c", f"r1c:{mrn}", "")), shared_patients=RICORD)
    grown = rows(("1", "r1c", f"r1c:{mrn}", ""), ("2", "r1c", f"r1c:{mrn}", ""), ("3", "r1a", f"r1a:{mrn}", ""))
    assert components(grown, RICORD) == [f"r1a:{mrn}"] * 3, "without the previous manifest the key would change"
    assign_splits(grown, old, shared_patients=RICORD)
    assert grown["split_group"].tolist() == [f"r1c:{mrn}"] * 3
    assert grown["split"].tolist() == [old.loc[0, "split"]] * 3 and explain_split_moves(old, grown) == []


def test_two_existing_groups_joined_by_a_shared_mrn_move_the_smaller_and_say_why() -> None:
    for seed in range(200):
        if split_for(f"r1a:m{seed}") != split_for(f"r1c:m{seed}"):
            break
    a, c = f"r1a:m{seed}", f"r1c:m{seed}"
    old = assign_splits(rows(("1", "r1a", a, ""), ("2", "r1a", a, ""), ("3", "r1c", c, "")))  # before the link
    linked = rows(("1", "r1a", a, ""), ("2", "r1a", a, ""), ("3", "r1c", c, ""))
    new = assign_splits(linked, old, shared_patients=RICORD)
    assert set(new["split_group"]) == {a}
    moves = explain_split_moves(old, new)
    assert [m.image_id for m in moves] == ["3"] and "a shared patient" in moves[0].reason


# --- schemes ------------------------------------------------------------------------------


def scheme_manifest() -> pd.DataFrame:
    items = [(f"a{i}", "a", f"a:p{i}", "") for i in range(40)]
    items += [(f"b{i}", "b", f"b:p{i}", "") for i in range(40)]
    items += [("c0", "c", "c:p0", "")]
    items[0] = ("a0", "a", "a:p0", "shared")  # a copy of a0 in source b: must not be trained on
    items[40] = ("b0", "b", "b:p0", "shared")
    manifest = rows(*items)
    manifest["official_split"] = ["train" if s == "a" else "" for s in manifest["source"]]
    return assign_splits(manifest)


def test_loso_holds_out_one_source_and_drops_its_copies_elsewhere() -> None:
    manifest = scheme_manifest()
    split = resolve_split(manifest, "loso:a")
    assert (split[manifest["source"] == "a"] == "test").all()
    others = split[manifest["source"] != "a"]
    assert split[manifest["image_id"] == "b0"].item() == "", "b0 shares a group with held-out a0"
    assert set(others) == {"train", "val", ""} and (others == "").sum() == 1
    assert loso_dropped(manifest, "a").to_dict() == {"b": 1}
    # no group may straddle test and train/val
    assert groups_across_splits(manifest, split).empty
    # train/val of the other rows is a function of their group only
    again = resolve_split(manifest.iloc[::-1].copy(), "loso:a")
    assert again.sort_index().equals(split.sort_index())


def test_official_default_and_unknown_schemes() -> None:
    manifest = scheme_manifest()
    assert resolve_split(manifest, "default").equals(manifest["split"])
    assert resolve_split(manifest, "official").equals(manifest["official_split"])
    with pytest.raises(ValueError, match="no rows of source"):
        resolve_split(manifest, "loso:nope")
    with pytest.raises(ValueError, match="unknown split_scheme"):
        resolve_split(manifest, "random")


# --- real samples: growth upstream moves nothing ---------------------------------------------

ZHANG = "zhanglab-pediatric-xray"
IEEE = "ieee8023-covid-chestxray"


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory, shared: Path, registry) -> dict:
    """Sync ieee8023 (March 2020 snapshot) + part of Zhang Lab, then both upstreams grow:
    ieee8023 moves to its June 2020 snapshot, Zhang Lab adds the rest of its sample and a
    re-encoded copy of an existing picture under a new patient that sorts before the original."""
    from covid19_images.sync.run import sync

    base = tmp_path_factory.mktemp("splits-growth")
    mirror_root = base / "mirrors"
    ieee = [shared / "ieee8023-covid-chestxray-dataset__pinned-548bb58", shared / "ieee8023-covid-chestxray-dataset"]
    zhang_full = shared / "zhanglab-kermany-chest-xray"
    first = base / "zhang-1"
    shutil.copytree(zhang_full, first)
    pictures = sorted(first.rglob("*.jpeg"))
    for path in pictures[1::3]:
        path.unlink()
    ieee_mirror = mirror_path(mirror_root, registry[IEEE].url)
    zhang_mirror = mirror_path(mirror_root, registry[ZHANG].url)
    build_mirror(ieee_mirror, ieee[:1])
    build_mirror(zhang_mirror, [first])
    root = new_root(base / "root", (IEEE, ZHANG))
    report = sync(root, mirror=mirror_root, progress=False)
    assert not report.failed, report.summary()
    before = read_manifest(root)

    kept = before[(before["source"] == ZHANG) & before["patient_id"].str.contains(":person")].iloc[0]
    newcomer = first_key_with_other_split(f"{ZHANG}:person", kept["split"], kept["split_group"])
    second = base / "zhang-2"
    shutil.copytree(zhang_full, second)
    copy = second / "train" / "PNEUMONIA" / f"{newcomer.split(':')[1]}_virus_1.jpeg"
    with Image.open(root / kept["path"]) as image:
        image.convert("L").resize((400, 300), Image.Resampling.BILINEAR).save(copy, "JPEG", quality=75)
    build_mirror(ieee_mirror, ieee)
    build_mirror(zhang_mirror, [first, second])
    report = sync(root, mirror=mirror_root, progress=False)
    assert not report.failed, report.summary()
    return {
        "root": root,
        "before": before,
        "after": read_manifest(root),
        "kept": kept,
        "copy": copy.name,
        "newcomer": newcomer,
        "changes": report.changes,
    }


@pytest.mark.upstream
def test_upstream_growth_moves_no_existing_image(grown: dict) -> None:
    before, after = grown["before"], grown["after"]
    assert sum(len(c.added) for c in grown["changes"].values()) >= 10, "both upstreams must have grown"
    common = before.merge(after, on="image_id", suffixes=("_before", "_after"))
    assert len(common) >= 10
    moved = common[common["split_before"] != common["split_after"]]
    assert moved.empty, moved[["path_after", "split_before", "split_after"]]
    assert explain_split_moves(before, after) == []
    assert sum(len(c.moved) for c in grown["changes"].values()) == 0


@pytest.mark.upstream
def test_the_new_copy_joined_the_old_group_without_moving_it(grown: dict) -> None:
    after, kept = grown["after"], grown["kept"]
    copy = after[after["path"].str.endswith(grown["copy"])]
    original = after[after["image_id"] == kept["image_id"]]
    assert copy["dup_group"].item() and copy["dup_group"].item() == original["dup_group"].item()
    assert copy["patient_id"].item() == grown["newcomer"]
    assert copy["split_group"].item() == kept["split_group"], "the old group keeps its key"
    assert copy["split"].item() == kept["split"]
    stateless = dict(zip(after["image_id"], components(after), strict=True))
    assert stateless[kept["image_id"]] == grown["newcomer"], "a key-by-smallest-patient rule would have moved it"
    assert split_for(grown["newcomer"]) != kept["split"]


@pytest.mark.upstream
def test_no_group_spans_splits_on_real_samples(grown: dict) -> None:
    after = grown["after"]
    assert groups_across_splits(after).empty
    per_group = after.groupby("split_group")["split"].nunique()
    assert (per_group == 1).all()
    # the same holds under every leave-one-source-out scheme
    for source in sorted(set(after["source"])):
        assert groups_across_splits(after, resolve_split(after, f"loso:{source}")).empty


def test_split_for_is_the_same_in_processes_with_other_hash_seeds() -> None:
    """The bucket must not depend on Python's randomised ``hash``: two interpreters with different
    ``PYTHONHASHSEED`` give the table's splits."""
    import os
    import sys

    keys = sorted(SPLIT_TABLE)
    code = f"from covid19_images.manifest.splits import split_for; print(*[split_for(k) for k in {keys!r}])"
    expected = [SPLIT_TABLE[k][0] for k in keys]
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        assert out.stdout.split() == expected


@pytest.fixture(scope="module")
def covidx_root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    from tests.conftest import build_synced_root

    return build_synced_root(tmp_path_factory.mktemp("covidx-scheme"), mirrors, (IEEE, "covidx-splits"))


@pytest.mark.upstream
def test_covidx_scheme_puts_listed_ieee8023_files_in_their_covidx_split(covidx_root: Path) -> None:
    manifest = read_manifest(covidx_root)
    listed: dict[str, str] = {}
    for split in ("train", "test"):
        text = (covidx_root / "datasets" / "covidx-splits" / "labels" / f"{split}_COVIDx9A.txt").read_text()
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 4 and fields[-1] == "cohen":
                listed[fields[-3]] = split
    names = manifest["path"].map(lambda p: Path(p).name)
    expected = pd.Series([listed.get(n, "") for n in names], index=manifest.index)
    assert (expected != "").sum() >= 5, "some sample images must be in COVIDx, or this proves nothing"
    split = resolve_split(manifest, "covidx:9A", root=covidx_root)
    assert split.tolist() == expected.tolist()
    assert resolve_split(manifest, "covidx", root=covidx_root).tolist() == split.tolist(), "newest nA is 9A here"
    with pytest.raises(ValueError, match="7Z"):
        resolve_split(manifest, "covidx:7Z", root=covidx_root)
