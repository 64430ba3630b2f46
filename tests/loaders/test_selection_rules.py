"""What a loader serves, rule by rule, on hand-made manifests and real files (no sync, no framework):
the filters, one copy per duplicate group, the class list, the split, the order, the frames of
videos and volumes, and the refusals before anything is served. ``test_loaders_common.py`` proves the
same through the framework loaders on synced roots; these are the fast tests ``make mutation`` runs
for ``loaders._select``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from covid19_images.core.schema import MANIFEST_COLUMNS
from covid19_images.imaging.budget import OverBudget
from covid19_images.loaders._options import make_options, with_split
from covid19_images.loaders._select import (
    DataNotAvailableError,
    NoItemsError,
    UnsafeManifestPath,
    check_available,
    largest_first,
    refuse_paths_outside,
    select,
)


def _row(image_id: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(MANIFEST_COLUMNS, "")
    row.update(
        image_id=image_id,
        source="src-a",
        path=f"datasets/src-a/{image_id}.png",
        format="png",
        frames=1,
        modality="xray",
        view="PA",
        label="covid-19",
        license="CC-BY-4.0",
        split="train",
    )
    row.update(values)
    return row


def _manifest(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(MANIFEST_COLUMNS))


def _ids(selection) -> list[str]:
    return selection.items["image_id"].tolist()


def test_each_filter_keeps_exactly_its_rows(tmp_path: Path) -> None:
    manifest = _manifest(
        _row("a", label="covid-19"),
        _row("b", label="normal", view="AP"),
        _row("c", label="unknown"),
        _row("d", label="pneumonia", license="CC0-1.0", source="src-b", path="datasets/src-b/d.png"),
        _row("e", modality="ct", label="covid-19"),
        _row("f", label="other"),
    )
    options = make_options("xray", root=tmp_path)
    assert _ids(select(manifest, options)) == ["a", "b", "f", "d"]  # "unknown" is no class; by source, path
    assert select(manifest, options).classes == ("covid-19", "normal", "other", "pneumonia")
    assert _ids(select(manifest, make_options("xray", root=tmp_path, labels="all"))) == ["a", "b", "c", "f", "d"]
    assert _ids(select(manifest, make_options("xray", root=tmp_path, views="AP"))) == ["b"]
    assert _ids(select(manifest, make_options("xray", root=tmp_path, licenses="CC0-1.0"))) == ["d"]
    assert _ids(select(manifest, make_options("xray", root=tmp_path, sources="src-b"))) == ["d"]
    assert _ids(select(manifest, make_options("xray", root=tmp_path, classes=["normal", "covid-19"]))) == ["a", "b"]
    assert _ids(select(manifest, make_options("ct", root=tmp_path))) == ["e"]
    with pytest.raises(
        NoItemsError,
        match=r"^sources \['src-c'\] have no rows in the manifest \(sources with rows: src-a, src-b\); "
        r"check the name, or fetch it with `covid19-images sync <name>`$",
    ):
        select(manifest, make_options("xray", root=tmp_path, sources=["src-b", "src-c"]))


def test_the_class_index_is_fixed_across_splits_and_the_split_is_applied_last(tmp_path: Path) -> None:
    manifest = _manifest(
        _row("a", label="pneumonia", split="train"),
        _row("b", label="normal", split="test"),
        _row("c", label="covid-19", split="val"),
    )
    test = select(manifest, make_options("xray", root=tmp_path, split="test"))
    assert _ids(test) == ["b"] and test.classes == ("covid-19", "normal", "pneumonia")
    assert test.items["label_index"].tolist() == [1] and test.items["label_index"].dtype == "int64"
    assert test.items["file"].tolist() == [os.fspath(tmp_path / "datasets/src-a/b.png")]
    assert test.root == tmp_path and len(test) == 1
    train = select(manifest, with_split(make_options("xray", root=tmp_path), "train"))
    assert train.items["label_index"].tolist() == [2]
    with pytest.raises(
        NoItemsError,
        match=r"^no xray images match the filters \(manifest rows: 3; modality xray: 3; labels \['normal'\]: 1; "
        r"without augmented copies: 1; without localizer/reformat series: 1; "
        r"one image per duplicate group: 1; split val \(default\): 0\)$",
    ):
        select(manifest, make_options("xray", root=tmp_path, labels="normal", split="val"))


@pytest.mark.parametrize("flag", ["true", "True", " yes ", "1", True])
def test_augmented_copies_are_left_out_unless_asked_for(tmp_path: Path, flag: object) -> None:
    extra = f'{{"augmented": {"true" if flag is True else repr(flag).replace(chr(39), chr(34))}}}'
    manifest = _manifest(_row("a"), _row("b", extra=extra), _row("c", extra='{"augmented": "no"}'))
    assert _ids(select(manifest, make_options("xray", root=tmp_path))) == ["a", "c"]
    assert _ids(select(manifest, make_options("xray", root=tmp_path, include_augmented=True))) == ["a", "b", "c"]


def test_ct_serves_axial_series_only_unless_asked_for(tmp_path: Path) -> None:
    manifest = _manifest(
        _row("a", modality="ct"),
        _row("b", modality="ct", extra='{"series_role": "localizer"}'),
        _row("c", modality="ct", extra='{"series_role": "axial"}'),
        _row("d", modality="ct", extra='{"series_role": ""}'),
    )
    assert _ids(select(manifest, make_options("ct", root=tmp_path))) == ["a", "c", "d"]
    assert _ids(select(manifest, make_options("ct", root=tmp_path, include_non_axial=True))) == ["a", "b", "c", "d"]


def test_one_copy_per_duplicate_group_whatever_split_is_asked_for(tmp_path: Path) -> None:
    manifest = _manifest(
        _row("z1", dup_group="g1", split="test"),
        _row("a1", dup_group="g1", split="train"),  # same frames: the first image id is kept, in its split
        _row("b1", dup_group="g2", frames=1),
        _row("b2", dup_group="g2", frames=30, format="nii.gz", path="datasets/src-a/b2.nii.gz"),  # holds the other
        _row("c1", dup_group=""),  # no group: never a duplicate of c2
        _row("c2", dup_group=""),
    )
    options = make_options("xray", root=tmp_path)
    served = select(manifest, options)
    assert served.items.drop_duplicates("image_id")["image_id"].tolist() == ["a1", "b2", "c1", "c2"]
    with pytest.raises(NoItemsError):  # z1's copy a1 is served in train, so test holds nothing
        select(manifest, with_split(options, "test"))
    assert len(select(manifest, make_options("xray", root=tmp_path, deduplicate=False)).items) == 4 + 30  # train


def test_the_copy_kept_is_one_the_split_scheme_serves(tmp_path: Path) -> None:
    manifest = _manifest(
        _row("a", dup_group="g", source="src-a", split="", frames=5, format="dcm", path="datasets/src-a/a.dcm"),
        _row("b", dup_group="g", source="src-b", split="test", path="datasets/src-b/b.png"),
    )
    assert _ids(select(manifest, make_options("xray", root=tmp_path, split="test"))) == ["b"]
    assert _ids(select(manifest, make_options("xray", root=tmp_path, split=None))) == ["b"]
    manifest.loc[1, "split"] = ""  # neither is served by the scheme: the copy holding the other
    assert _ids(select(manifest, make_options("xray", root=tmp_path, split=None))) == ["a"] * 5


def test_largest_first_orders_by_frames_then_image_id() -> None:
    frame = _manifest(
        _row("b", frames="1"), _row("a0", frames="x"), _row("a", frames=3), _row("d", frames=3), _row("a1", frames=2)
    )
    assert largest_first(frame)["image_id"].tolist() == ["a", "d", "a1", "a0", "b"]  # an unreadable count is 1
    assert list(largest_first(frame).columns) == list(MANIFEST_COLUMNS)


def test_frames_of_videos_are_sampled_and_of_volumes_all_served(tmp_path: Path) -> None:
    manifest = _manifest(
        _row("clip", format="mp4", frames=25, modality="ultrasound"),
        _row("gif", format="gif", frames=4, modality="ultrasound"),
        _row("vol", format="dcm", frames=3, modality="ultrasound"),
        _row("one", format="mp4", frames=0, modality="ultrasound"),
    )

    def frames(video_frames: object) -> list[tuple[str, int]]:
        items = select(manifest, make_options("ultrasound", root=tmp_path, video_frames=video_frames)).items
        return list(zip(items["image_id"], items["frame"].tolist(), strict=True))

    assert frames(10) == [("clip", 0), ("clip", 10), ("clip", 20), ("gif", 0), ("one", 0)] + [
        ("vol", f) for f in range(3)
    ]
    assert frames("middle") == [("clip", 12), ("gif", 2), ("one", 0), ("vol", 0), ("vol", 1), ("vol", 2)]
    assert frames("all")[:26] == [("clip", f) for f in range(25)] + [("gif", 0)]
    assert len(frames("all")) == 25 + 4 + 1 + 3
    assert select(manifest, make_options("ultrasound", root=tmp_path)).items["frame"].dtype == "int64"


def test_a_frame_count_over_the_budget_is_refused_not_expanded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COVID19_IMAGES_MAX_FRAMES", "5")
    ok = _manifest(_row("a", format="dcm", frames=5))
    assert len(select(ok, make_options("xray", root=tmp_path)).items) == 5
    over = _manifest(*[_row(f"v{i}", format="dcm", frames=6 + i) for i in range(4)], _row("ok", frames=5))
    with pytest.raises(
        OverBudget,
        match=r"^4 manifest row\(s\) claim more than 5 frames: datasets/src-a/v0.png \(6 frames\), "
        r"datasets/src-a/v1.png \(7 frames\), datasets/src-a/v2.png \(8 frames\) \.\.\.; refused .*"
        r"\$COVID19_IMAGES_MAX_FRAMES\)$",
    ):
        select(over, make_options("xray", root=tmp_path))
    with pytest.raises(OverBudget, match=r"^1 manifest row\(s\) claim .*v3.png \(9 frames\); refused"):
        select(over.iloc[3:], make_options("xray", root=tmp_path))


@pytest.mark.parametrize(
    "path",
    ["datasets/src-a/../../x.png", "/etc/passwd", "manifests/manifest.csv", "datasets", "datasetsX/a.png"],
)
def test_a_row_naming_a_file_outside_the_datasets_folder_is_refused(tmp_path: Path, path: str) -> None:
    manifest = _manifest(_row("a"), _row("b", path=path))
    with pytest.raises(
        UnsafeManifestPath,
        match=rf"^1 manifest row\(s\) name files outside .*datasets: '{path}'; refused \(a manifest edited by hand "
        r"or a bad merge\?\): rebuild it with `covid19-images sync --offline`$",
    ):
        select(manifest, make_options("xray", root=tmp_path))


def test_a_folder_linked_out_of_the_root_is_refused_and_many_bad_rows_are_shortened(tmp_path: Path) -> None:
    (tmp_path / "datasets" / "src-a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "datasets" / "src-a" / "link").symlink_to(tmp_path / "outside")
    refuse_paths_outside(tmp_path, pd.Series(["datasets/src-a/x.png", "datasets/src-a/sub/y.png"]))
    with pytest.raises(UnsafeManifestPath, match=r"^1 manifest row\(s\) .*: 'datasets/src-a/link/'; refused"):
        refuse_paths_outside(tmp_path, pd.Series(["datasets/src-a/link/a.png", "datasets/src-a/link/b.png"]))
    bad = pd.Series([f"/abs/{i}.png" for i in range(6)])
    with pytest.raises(UnsafeManifestPath, match=r"^6 manifest row\(s\) .*'/abs/3.png', '/abs/4.png' \.\.\.; refused"):
        refuse_paths_outside(tmp_path, bad)
    with pytest.raises(
        UnsafeManifestPath, match=r"'/abs/0.png', '/abs/1.png', '/abs/2.png', '/abs/3.png', '/abs/4.png'; "
    ):
        refuse_paths_outside(tmp_path, bad[:5])


def _files(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"x")


def test_missing_checkouts_and_files_are_named_up_front(tmp_path: Path) -> None:
    manifest = _manifest(
        _row("a"),
        _row("b"),
        _row("v", format="dcm", frames=3),
        *[_row(f"m{i}", source="src-m", path=f"datasets/src-m/sub/m{i}.png") for i in range(5)],
        _row("g", source="src-g", path="datasets/src-g/g.png"),
        _row("n", source="src-n", path="datasets/src-n/n.png"),
    )
    _files(
        tmp_path, "datasets/src-a/a.png", "datasets/src-a/b.png", "datasets/src-a/v.png", "datasets/src-m/sub/m1.png"
    )
    (tmp_path / "datasets" / "src-g" / ".git").mkdir(parents=True)  # an uninitialised submodule holds only .git
    selection = select(manifest, make_options("xray", root=tmp_path))
    with pytest.raises(DataNotAvailableError) as raised:
        check_available(selection)
    lines = str(raised.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"source 'src-g' is not checked out ({tmp_path}/datasets/src-g is missing or empty)")
    assert "`git submodule update --init datasets/src-g` (or `covid19-images sync src-g`)" in lines[0]
    assert lines[1].startswith(
        "source 'src-m': 4 of 5 files listed in the manifest are missing (datasets/src-m/sub/m0.png, "
        "datasets/src-m/sub/m2.png, datasets/src-m/sub/m3.png ...)"
    )
    assert "`git submodule update --init datasets/src-m`" in lines[1]
    assert lines[2].startswith(f"source 'src-n' is not checked out ({tmp_path}/datasets/src-n is missing")
    _files(
        tmp_path,
        *[f"datasets/src-m/sub/m{i}.png" for i in (0, 2, 3, 4)],
        "datasets/src-g/g.png",
        "datasets/src-n/n.png",
    )
    check_available(selection)
    (tmp_path / "datasets/src-m/sub/m4.png").unlink()
    with pytest.raises(
        DataNotAvailableError, match=r"^source 'src-m': 1 of 5 files .* \(datasets/src-m/sub/m4.png\): "
    ):
        check_available(selection)


def test_a_source_folder_that_cannot_be_listed_counts_as_not_checked_out(tmp_path: Path) -> None:
    _files(tmp_path, "datasets/src-a")  # a file where the checkout folder should be
    selection = select(_manifest(_row("a")), make_options("xray", root=tmp_path))
    with pytest.raises(DataNotAvailableError, match=r"^source 'src-a' is not checked out .*datasets/src-a is missing"):
        check_available(selection)


def test_a_file_is_checked_once_whatever_its_frames_and_where_its_folder_is(tmp_path: Path) -> None:
    manifest = _manifest(
        _row("v", format="dcm", frames=4, source="src-v"),  # four items, one file
        _row("w", source="src-v"),
        _row("x", source="src-v"),
        _row("o", source="src-o", path="datasets/other-folder/o.png"),  # a source held under another folder name
    )
    manifest.loc[0, "path"] = "datasets/src-v/v.dcm"
    manifest.loc[1:2, "path"] = ["datasets/src-v/w.png", "datasets/src-v/x.png"]
    _files(tmp_path, "datasets/src-v/keep.png", "datasets/other-folder/o.png")
    selection = select(manifest, make_options("xray", root=tmp_path))
    with pytest.raises(DataNotAvailableError) as raised:
        check_available(selection)
    assert str(raised.value) == (
        "source 'src-v': 3 of 3 files listed in the manifest are missing (datasets/src-v/v.dcm, "
        "datasets/src-v/w.png, datasets/src-v/x.png): restore the pinned checkout with "
        "`git submodule update --init datasets/src-v` (or `covid19-images sync src-v`), or rebuild the manifest "
        "from what is checked out with `covid19-images sync --offline`"
    )


def test_another_split_is_checked_like_the_split_option() -> None:
    options = make_options("xray", root=Path("/nonexistent-root"))
    assert with_split(options, "val").split == "val" and with_split(options, None).split is None
    with pytest.raises(ValueError, match=r"^unknown split 'training'; choose one of train, val, test or None"):
        with_split(options, "training")


def test_a_split_scheme_decides_the_split_the_labels_and_the_copy_kept(tmp_path: Path) -> None:
    ieee = "ieee8023-covid-chestxray"
    labels = tmp_path / "datasets" / "covidx-splits" / "labels"
    labels.mkdir(parents=True)
    (labels / "train_COVIDx9A.txt").write_text("1 a.png COVID-19 cohen\n2 b.png normal cohen\n", encoding="utf-8")
    (labels / "test_COVIDx9A.txt").write_text("3 c.png pneumonia cohen\n", encoding="utf-8")
    manifest = _manifest(
        _row("a", source=ieee, path=f"datasets/{ieee}/a.png", label="unknown", split="test"),  # COVIDx: covid-19
        _row("b", source=ieee, path=f"datasets/{ieee}/b.png", label="normal", split="test"),
        _row("c", source=ieee, path=f"datasets/{ieee}/c.png", label="other", split="train"),
        _row("d", source=ieee, path=f"datasets/{ieee}/d.png", label="normal", split="train"),  # not listed
    )
    manifest.index = [40, 10, 30, 20]
    train = select(manifest, make_options("xray", root=tmp_path, split_scheme="covidx:9A"))
    assert _ids(train) == ["a", "b"] and train.items["label"].tolist() == ["covid-19", "normal"]
    assert train.classes == ("covid-19", "normal", "pneumonia")  # d is in no COVIDx split, yet in the class list
    test = select(manifest, make_options("xray", root=tmp_path, split_scheme="covidx", split="test"))
    assert _ids(test) == ["c"] and test.items["label"].tolist() == ["pneumonia"]
    everything = select(manifest, make_options("xray", root=tmp_path, split_scheme="covidx:9A", split=None))
    assert everything.items["split"].tolist() == ["train", "train", "test", ""]
    assert everything.items["label"].tolist() == ["covid-19", "normal", "pneumonia", "normal"]


def test_a_row_without_a_split_in_the_scheme_is_never_the_copy_kept(tmp_path: Path) -> None:
    manifest = _manifest(
        _row("a", dup_group="g", official_split=None),  # NaN: no split under the scheme
        _row("b", dup_group="g", official_split="test"),
    )
    served = select(manifest, make_options("xray", root=tmp_path, split_scheme="official", split=None))
    assert _ids(served) == ["b"] and served.items["split"].tolist() == ["test"]
    manifest.loc[1, "official_split"] = None
    served = select(manifest, make_options("xray", root=tmp_path, split_scheme="official", split=None))
    assert _ids(served) == ["a"] and served.items["split"].tolist() == [""]


def test_a_two_frame_clip_serves_its_second_frame_as_the_middle(tmp_path: Path) -> None:
    manifest = _manifest(_row("g", format="gif", frames=2, modality="ultrasound"))
    items = select(manifest, make_options("ultrasound", root=tmp_path, video_frames="middle")).items
    assert items["frame"].tolist() == [1]


def test_three_rows_over_the_budget_are_all_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COVID19_IMAGES_MAX_FRAMES", "5")
    over = _manifest(*[_row(f"v{i}", format="dcm", frames=6) for i in range(3)])
    with pytest.raises(OverBudget, match=r"v2.png \(6 frames\); refused"):
        select(over, make_options("xray", root=tmp_path))


def test_each_filter_that_empties_the_selection_is_named(tmp_path: Path) -> None:
    manifest = _manifest(_row("a", source="src-a"), _row("b", source="src-b", path="datasets/src-b/b.png"))
    for given, step in (
        ({"sources": "src-b", "views": "lateral"}, r"sources \['src-b'\]: 1; labels .*: 1; views \['lateral'\]: 0"),
        (
            {"sources": "src-a", "licenses": "CC0-1.0"},
            r"sources \['src-a'\]: 1; labels .*: 1; licenses \['CC0-1.0'\]: 0",
        ),
    ):
        with pytest.raises(NoItemsError, match=step):
            select(manifest, make_options("xray", root=tmp_path, **given))


def test_a_row_with_an_unreadable_frame_count_is_one_item_with_the_manifest_columns(tmp_path: Path) -> None:
    manifest = _manifest(_row("a", format="dcm", frames=""), _row("b", format="dcm", frames="n/a"))
    items = select(manifest, make_options("xray", root=tmp_path)).items
    assert items["frame"].tolist() == [0, 0]
    assert list(items.columns) == [*MANIFEST_COLUMNS, "frame", "label_index", "file"]
    assert items.index.tolist() == [0, 1]
