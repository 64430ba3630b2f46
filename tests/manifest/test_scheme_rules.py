"""The split schemes and the COVIDx matching, rule by rule, on hand-made manifests and label files
(no sync, no framework): which rows each scheme serves in which split and with which label, and what
it refuses. ``test_splits.py``, ``test_covidx_splits.py`` and ``test_covidx_portal.py`` prove the
same end to end; these are the fast tests ``make mutation`` runs for ``manifest.split_schemes`` and
``manifest.covidx``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from covid19_images.manifest import covidx
from covid19_images.manifest.split_schemes import (
    covidx_split,
    loso_dropped,
    loso_split,
    resolve_labels,
    resolve_split,
)

IEEE = "ieee8023-covid-chestxray"
FIG1 = "figure1-xray"
ACTMED = "actualmed-xray"
RSNA = "rsna-pneumonia"
CXR4 = "covidx-cxr4"


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _manifest(rows: list[tuple[str, str, str]], extra: list[str] | None = None) -> pd.DataFrame:
    """(source, file name, label) rows under ``datasets/<source>/images/``."""
    frame = pd.DataFrame(
        {
            "source": [s for s, _, _ in rows],
            "path": [f"datasets/{s}/images/{name}" for s, name, _ in rows],
            "label": [label for _, _, label in rows],
            "patient_id": [f"p{i}" for i in range(len(rows))],
        }
    )
    if extra is not None:
        frame["extra"] = extra
    return frame


def _covidx_root(tmp_path: Path, files: dict[str, list[str]]) -> Path:
    for name, lines in files.items():
        _write(tmp_path / "datasets" / "covidx-splits" / "labels" / name, lines)
    return tmp_path


# --- leave one source out --------------------------------------------------------------------------


def _loso_manifest(groups: int) -> pd.DataFrame:
    keys = [f"group-{i}" for i in range(groups)]
    return pd.DataFrame({"source": ["a"] * groups + ["b"], "split_group": [*keys, "held"]})


def test_loso_splits_the_other_sources_eight_to_one_into_train_and_val() -> None:
    manifest = _loso_manifest(3000)
    split = loso_split(manifest, "b")
    counts = split.value_counts().to_dict()
    assert set(counts) == {"train", "val", "test"} and counts["test"] == 1
    assert 0.86 < counts["train"] / 3000 < 0.92  # 8:1 is 0.889; 0.8 would be the default's train share
    assert split.dtype == object
    # a group's side depends on its key only: the same keys in another manifest land the same way
    assert loso_split(manifest.iloc[::-1].reset_index(drop=True), "b").iloc[::-1].tolist() == split.tolist()


def test_loso_of_a_source_without_rows_names_the_sources() -> None:
    manifest = pd.DataFrame({"source": ["b", "a", "a"], "split_group": ["x", "y", "z"]})
    with pytest.raises(ValueError, match=r"^split_scheme 'loso:c': no rows of source 'c' \(sources: a, b\)$"):
        loso_split(manifest, "c")


def test_loso_drops_every_row_of_another_source_sharing_a_group_with_the_held_one() -> None:
    manifest = pd.DataFrame(
        {
            "source": ["held", "held", "x", "x", "y", "y", "z"],
            "split_group": ["g1", "g2", "g1", "g9", "g2", "g2", "g8"],
        }
    )
    split = loso_split(manifest, "held")
    assert split.tolist()[:3] == ["test", "test", ""] and split.tolist()[4:6] == ["", ""]
    assert split.iloc[3] in ("train", "val") and split.iloc[6] in ("train", "val")
    assert loso_dropped(manifest, "held").to_dict() == {"x": 1, "y": 2}
    assert loso_dropped(manifest, "z").to_dict() == {}
    assert resolve_split(manifest, "loso:held").tolist() == split.tolist()


# --- COVIDx: which checkout and version ------------------------------------------------------------


def test_covidx_without_a_version_reads_the_newest_numbered_a_files(tmp_path: Path) -> None:
    manifest = _manifest([(IEEE, "a.png", "unknown"), (IEEE, "b.png", "unknown"), (IEEE, "c.png", "unknown")])
    root = _covidx_root(
        tmp_path,
        {
            "train_COVIDx9A.txt": ["1 a.png COVID-19 cohen"],
            "test_COVIDx9A.txt": ["2 b.png normal cohen"],
            "train_COVIDx10A.txt": ["1 b.png COVID-19 cohen"],  # 10A is newer than 9A (not by string order)
            "test_COVIDx10A.txt": ["2 c.png pneumonia cohen"],
            "train_COVIDx11B.txt": ["3 a.png normal cohen"],  # B sets are never the default
        },
    )
    assert covidx_split(manifest, "", root).tolist() == ["", "train", "test"]
    assert resolve_split(manifest, "covidx", root=root).tolist() == ["", "train", "test"]
    assert resolve_split(manifest, "covidx:9A", root=root).tolist() == ["train", "test", ""]
    assert resolve_split(manifest, "covidx:11B", root=root).tolist() == ["train", "", ""]
    assert resolve_labels(manifest, "covidx", root=root).tolist() == ["", "covid-19", "pneumonia"]
    assert resolve_labels(manifest, "covidx:9A", root=root).tolist() == ["covid-19", "normal", ""]
    with pytest.raises(ValueError, match=r"^no COVIDx version '7A' under .*labels \(have '10A', '11B', '9A'\)$"):
        resolve_split(manifest, "covidx:7A", root=root)
    with pytest.raises(ValueError, match=r"^no COVIDx version '7A' under .*labels \(have '10A', '11B', '9A'\)$"):
        resolve_labels(manifest, "covidx:7A", root=root)


def test_a_version_named_by_letters_only_sorts_below_every_numbered_one(tmp_path: Path) -> None:
    manifest = _manifest([(IEEE, "a.png", "unknown"), (IEEE, "b.png", "unknown")])
    root = _covidx_root(
        tmp_path,
        {"train_COVIDxSevA.txt": ["1 a.png COVID-19 cohen"], "train_COVIDx2A.txt": ["1 b.png COVID-19 cohen"]},
    )
    assert resolve_split(manifest, "covidx", root=root).tolist() == ["", "train"]


def test_covidx_without_its_checkout_or_an_a_version_says_what_to_run(tmp_path: Path) -> None:
    manifest = _manifest([(IEEE, "a.png", "unknown")])
    folder = tmp_path / "datasets" / "covidx-splits"
    with pytest.raises(ValueError, match=r"needs the covidx-splits source checked out at .*covidx-splits; run `cov"):
        resolve_split(manifest, "covidx", root=tmp_path)
    folder.mkdir(parents=True)
    with pytest.raises(ValueError, match=r"sync covidx-splits`$"):  # an empty folder is no checkout either
        resolve_labels(manifest, "covidx", root=tmp_path)
    _write(folder / "labels" / "train_COVIDx9B.txt", ["1 a.png COVID-19 cohen"])
    with pytest.raises(ValueError, match=r"^no COVIDx <n>A label files in .*; name a version: covidx:<version>$"):
        resolve_split(manifest, "covidx", root=tmp_path)
    assert resolve_split(manifest, "covidx:9B", root=tmp_path).tolist() == ["train"]


def test_other_schemes_keep_every_label_and_unknown_schemes_are_refused(tmp_path: Path) -> None:
    manifest = _manifest([(IEEE, "a.png", "unknown")])
    manifest["split"], manifest["official_split"] = ["val"], ["test"]
    for scheme in ("default", "official", "loso:x", "covidxx", "covid"):
        assert resolve_labels(manifest, scheme, root=tmp_path) is None
    assert resolve_split(manifest, "default").tolist() == ["val"]
    assert resolve_split(manifest).tolist() == ["val"] and resolve_labels(manifest, root=tmp_path) is None
    assert resolve_split(manifest, "official").tolist() == ["test"]
    for scheme in ("Default", "covidxx", "loso", "random"):
        with pytest.raises(ValueError, match=rf"^unknown split_scheme '{scheme}'; use 'default', 'official'"):
            resolve_split(manifest, scheme)


def test_a_release_is_read_from_the_catalog_source_that_holds_it(tmp_path: Path) -> None:
    manifest = _manifest(
        [(CXR4, "r1.png", "covid-19"), (CXR4, "r2.png", "other"), (CXR4, "r3.png", "other"), (IEEE, "r1.png", "x")]
    )
    for scheme in ("covidx:CXR-4", "covidx:cxr-4"):
        with pytest.raises(ValueError, match=r"needs the covidx-cxr4 source fetched at .*; run `covid19-images fetc"):
            resolve_split(manifest, scheme, root=tmp_path)
    holder = tmp_path / "datasets" / CXR4
    holder.mkdir(parents=True)
    with pytest.raises(ValueError, match=r"fetch covidx-cxr4`$"):
        resolve_labels(manifest, "covidx:CXR-4", root=tmp_path)
    _write(holder / "train.txt", ["p1 r1.png positive bimcv", "", "p2 r2.png negative rsna"])
    _write(holder / "val.txt", ["p3 r3.png negative rsna"])
    assert resolve_split(manifest, "covidx:cxr-4", root=tmp_path).tolist() == ["train", "train", "val", ""]
    assert resolve_labels(manifest, "covidx:CXR-4", root=tmp_path).tolist() == ["covid-19", "", "", ""]
    with pytest.raises(ValueError, match=r"^split_scheme 'covidx:CXR-9': no catalog source holds that release "):
        resolve_split(manifest, "covidx:CXR-9", root=tmp_path)
    with pytest.raises(ValueError, match=r"\(known: CT-3A, CXR-3, CXR-4\)$"):
        resolve_split(manifest, "covidx:cxr-9", root=tmp_path)


def test_a_release_reads_train_val_and_test_and_reports_bad_lines(tmp_path: Path) -> None:
    _write(tmp_path / "train.txt", ["p 1 a.png positive bimcv", "  ", "broken line", "p2 b.png negative rsna"])
    _write(tmp_path / "test.txt", ["p3 c.png negative sirm"])
    listing = covidx.read_listing(tmp_path, "cxr-4")
    assert listing.holder == tmp_path.name
    assert [(e.split, e.patient_id, e.filename, e.label, e.source, e.line) for e in listing.entries] == [
        ("train", "p 1", "a.png", "positive", "bimcv", "train.txt line 1"),
        ("train", "p2", "b.png", "negative", "rsna", "train.txt line 4"),
        ("test", "p3", "c.png", "negative", "sirm", "test.txt line 1"),
    ]
    assert listing.errors == [("train.txt line 3", "2 fields, need patient_id filename class data_source")]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KeyError, match=r"no COVIDx CXR-4 label files \(train.txt, val.txt, test.txt\) in .*empty"):
        covidx.read_listing(empty, "CXR-4")
    _write(empty / "val.txt", ["only one"])
    only_errors = covidx.read_listing(empty, "CXR-4")  # a file with only bad lines is read, its errors named
    assert only_errors.entries == [] and [where for where, _ in only_errors.errors] == ["val.txt line 1"]


# --- COVIDx: matching entries to rows --------------------------------------------------------------


def test_rows_match_by_base_name_by_covidx_name_and_without_the_corrected_suffix(tmp_path: Path) -> None:
    manifest = _manifest(
        [
            (RSNA, "0a1b.dcm", "normal"),  # COVIDx renamed it 0a1b.png: extra.covidx_name says so
            ("bimcv-covid19-pos", "sub-1_ses-2_run-1.png", "covid-19"),
            (IEEE, "same.png", "covid-19"),
            (FIG1, "same.png", "covid-19"),
            ("some-other-source", "same.png", "covid-19"),  # held by no COVIDx source
        ],
        extra=['{"covidx_name": "0a1b.png"}', "", "", "", ""],
    )
    _write(
        tmp_path / "labels" / "train_COVIDx9A.txt",
        ["9 0a1b.png normal rsna", "1 sub-1_ses-2_run-1-corrected.png COVID-19 bimcv", "2 same.png COVID-19 fig1"],
    )
    _write(tmp_path / "labels" / "train_COVIDx.txt", ["3 same.png COVID-19"])  # v1: no source, any held one
    split, _ = covidx.covidx_split(manifest, tmp_path, "9A")
    assert split.tolist() == ["train", "train", "", "train", ""]
    assert split.name == "covidx9A"
    v1, report = covidx.covidx_split(manifest, tmp_path, "")
    assert v1.tolist() == ["", "", "train", "train", ""] and v1.name == "covidx1"
    assert report["resolved"] == {"unspecified": 1}  # matched two held sources: counted under neither


def test_a_v1_entry_is_counted_under_the_one_source_it_matched(tmp_path: Path) -> None:
    manifest = _manifest([(IEEE, "a.png", "covid-19"), (FIG1, "b.png", "normal")])
    _write(tmp_path / "train_COVIDx.txt", ["1 a.png COVID-19", "2 b.png COVID-19", "3 c.png normal"])
    split, report = covidx.covidx_split(manifest, tmp_path, "")
    assert split.tolist() == ["train", "train"]
    assert report["resolved"] == {"cohen": 1, "fig1": 1} and report["unresolved"] == {"unspecified": 1}
    assert report["label_disagreements"] == {"fig1": 1}


def test_a_manifest_without_extra_or_label_columns_still_matches(tmp_path: Path) -> None:
    manifest = _manifest([(IEEE, "a.png", "covid-19")]).drop(columns=["label"])
    _write(tmp_path / "train_COVIDx9A.txt", ["1 a.png normal cohen", "1 a.png normal sirm"])
    split, report = covidx.covidx_split(manifest, tmp_path, "9A")
    assert split.tolist() == ["train"] and report["label_disagreements"] == {}


@pytest.mark.parametrize(
    ("covidx_label", "ours", "disagrees"),
    [
        ("COVID-19", "covid-19", False),
        ("COVID-19", "normal", True),
        ("positive", "covid-19", False),
        ("negative", "pneumonia", False),
        ("negative", "covid-19", True),
        ("normal", "unknown", False),
        ("normal", "", False),
        ("unheard-of", "normal", False),
    ],
)
def test_a_label_disagreement_needs_both_sides_to_know_the_label(covidx_label: str, ours: str, disagrees: bool) -> None:
    assert covidx._disagrees(covidx_label, ours) is disagrees


def test_name_key_drops_only_the_corrected_suffix_before_the_extension() -> None:
    assert covidx.name_key("sub-1-corrected.png") == "sub-1.png"
    assert covidx.name_key("sub-1-corrected.PNG") == "sub-1.PNG"
    assert covidx.name_key("sub-1-corrected-2.png") == "sub-1-corrected-2.png"
    assert covidx.name_key("sub-1-corrected") == "sub-1-corrected"


def test_a_row_listed_twice_is_test_once_and_labelled_by_test_then_by_the_first_train_line(tmp_path: Path) -> None:
    manifest = _manifest([(IEEE, "a.png", "unknown"), (IEEE, "b.png", "unknown"), (IEEE, "c.png", "normal")])
    _write(
        tmp_path / "train_COVIDx9A.txt",
        ["1 a.png pneumonia cohen", "2 b.png COVID-19 cohen", "2 b.png normal cohen", "3 c.png negative cohen"],
    )
    _write(tmp_path / "test_COVIDx9A.txt", ["1 a.png normal cohen"])
    split, report = covidx.covidx_split(manifest, tmp_path, "9A")
    assert split.tolist() == ["test", "train", "train"]
    assert report["conflicts"] == 1  # b.png twice in train is no conflict
    assert report["rows"] == {"train": 2, "test": 1}
    labels = covidx.covidx_labels(manifest, tmp_path, "9A")
    assert labels.tolist() == ["normal", "covid-19", ""]  # negative names no single label
    assert labels.name == "covidx9A_label" and labels.dtype == object
    _write(tmp_path / "test_COVIDx.txt", ["3 c.png normal"])
    assert covidx.covidx_labels(manifest, tmp_path, "").tolist() == ["", "", "normal"]
    assert covidx.covidx_labels(manifest, tmp_path, "").name == "covidx1_label"


def test_a_version_named_by_letters_only_sorts_below_version_zero(tmp_path: Path) -> None:
    manifest = _manifest([(IEEE, "a.png", "unknown"), (IEEE, "b.png", "unknown")])
    root = _covidx_root(
        tmp_path,
        {"train_COVIDxSevA.txt": ["1 a.png COVID-19 cohen"], "train_COVIDx0A.txt": ["1 b.png COVID-19 cohen"]},
    )
    assert covidx_split(manifest, root=root).tolist() == ["", "train"]  # no version: the newest A set


def test_a_release_split_is_named_by_its_release_and_its_conflicts_counted(tmp_path: Path) -> None:
    manifest = _manifest([(CXR4, "r1.png", "covid-19"), (CXR4, "r2.png", "other")])
    holder = tmp_path / "datasets" / CXR4
    _write(holder / "train.txt", ["p1 r1.png positive bimcv", "p9 r9.png positive bimcv"])  # r9: not held
    _write(holder / "test.txt", ["p1 r1.png positive bimcv", "p2 r2.png negative rsna"])
    split = resolve_split(manifest, "covidx:cxr-4", root=tmp_path)
    assert split.tolist() == ["test", "test"] and split.name == "covidxCXR-4"
    _, report = covidx.covidx_split(manifest, holder, "CXR-4")
    assert report["conflicts"] == 1 and report["version"] == "CXR-4"
    assert report["resolved"] == {"bimcv": 2, "rsna": 1} and report["unresolved"] == {"bimcv": 1}
    assert report["rows"] == {"train": 0, "val": 0, "test": 2}


def test_a_release_file_with_bytes_that_are_not_utf8_is_still_read(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_bytes(b"p\xff1 a.png positive bimcv\n")
    listing = covidx.read_listing(tmp_path, "CXR-4")
    assert [(e.patient_id, e.filename) for e in listing.entries] == [("p\ufffd1", "a.png")]


def test_rows_of_sources_covidx_does_not_hold_are_skipped_not_a_stop(tmp_path: Path) -> None:
    manifest = _manifest([("some-other-source", "a.png", "normal"), (IEEE, "a.png", "normal")])
    _write(tmp_path / "train_COVIDx9A.txt", ["1 a.png normal cohen"])
    assert covidx.covidx_split(manifest, tmp_path, "9A")[0].tolist() == ["", "train"]


def test_only_a_covidx_name_key_renames_a_row(tmp_path: Path) -> None:
    manifest = _manifest(
        [(IEEE, "a.png", "normal"), (IEEE, "b.png", "normal")],
        extra=['{"note": "no covidx_name here"}', '{"covidx_name": ""}'],
    )
    _write(tmp_path / "train_COVIDx9A.txt", ["1 None normal cohen", "2 XXXX normal cohen", "3 b.png normal cohen"])
    assert covidx.covidx_split(manifest, tmp_path, "9A")[0].tolist() == ["", "train"]


def test_every_disagreement_is_counted_and_the_series_keep_the_manifest_index(tmp_path: Path) -> None:
    manifest = _manifest([(IEEE, "a.png", "normal"), (IEEE, "b.png", "normal"), (IEEE, "c.png", "normal")])
    manifest.index = [7, 3, 5]  # a filtered manifest keeps its row labels
    _write(tmp_path / "train_COVIDx9A.txt", ["1 a.png COVID-19 cohen", "2 b.png COVID-19 cohen"])
    split, report = covidx.covidx_split(manifest, tmp_path, "9A")
    assert report["label_disagreements"] == {"cohen": 2} and report["version"] == "9A"
    assert split.index.tolist() == [7, 3, 5] and split.dtype == object
    labels = covidx.covidx_labels(manifest, tmp_path, "9A")
    assert labels.index.tolist() == [7, 3, 5] and labels.tolist() == ["covid-19", "covid-19", ""]
    root = _covidx_root(tmp_path / "root", {"train_COVIDx9A.txt": ["1 a.png COVID-19 cohen"]})
    assert resolve_split(manifest, "covidx:9A", root=root).index.tolist() == [7, 3, 5]


# --- COVIDx CT's release ------------------------------------------------------------------------

CT = "covidx-ct"


def test_a_ct_release_reads_its_three_lists_with_the_patient_from_the_file_name(tmp_path: Path) -> None:
    holder = tmp_path / CT
    _write(holder / "train_COVIDx_CT-3A.txt", ["NCP_341_1834_0022.png 2 10 20 30 40", "", "bad.png 7"])
    _write(holder / "val_COVIDx_CT-3A.txt", ["study_0255-0017.png 0"])
    _write(holder / "test_COVIDx_CT-3A.txt", ["STOIC-10011-0103.png 1 1 2 3 4", "two fields too many.png 2 1"])
    listing = covidx.read_listing(holder, "ct-3a")
    assert listing.holder == CT
    assert [(e.split, e.patient_id, e.filename, e.label, e.source, e.line) for e in listing.entries] == [
        ("train", "NCP_341", "NCP_341_1834_0022.png", "covid-19", CT, "train_COVIDx_CT-3A.txt line 1"),
        ("val", "study_0255", "study_0255-0017.png", "normal", CT, "val_COVIDx_CT-3A.txt line 1"),
        ("test", "STOIC-10011", "STOIC-10011-0103.png", "pneumonia", CT, "test_COVIDx_CT-3A.txt line 1"),
    ]
    assert [where for where, _ in listing.errors] == ["train_COVIDx_CT-3A.txt line 3", "test_COVIDx_CT-3A.txt line 2"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KeyError, match=r"no COVIDx CT-3A lists \(train_COVIDx_CT-3A.txt, val_COVIDx_CT-3A.txt, "):
        covidx.read_listing(empty, "CT-3A")


def test_the_ct_release_scheme_serves_its_lists_split_and_labels_over_the_holders_rows(tmp_path: Path) -> None:
    """``covidx:CT-3A`` is a release like ``CXR-4``: it reads the fetched covidx-ct source's lists and
    matches rows by the listed name (``extra.covidx_name``), not COVID-Net's label files."""
    names = ["NCP_1_2_0003.png", "NCP_1_2_0004.png", "Normal_5_6_0007.png", "Normal_9_9_0001.png"]
    manifest = _manifest(
        [
            (CT, "a.png", "covid-19"),
            (CT, "b.png", "covid-19"),
            (CT, "c.png", "normal"),
            (CT, "d.png", "normal"),
            (IEEE, "NCP_1_2_0003.png", "covid-19"),  # the same name in another source: not the release's
        ],
        extra=[f'{{"covidx_name": "{name}"}}' for name in names] + [""],
    )
    with pytest.raises(ValueError, match=r"needs the covidx-ct source fetched at .*; run `covid19-images fetch co"):
        resolve_split(manifest, "covidx:CT-3A", root=tmp_path)
    holder = tmp_path / "datasets" / CT
    _write(holder / "train_COVIDx_CT-3A.txt", [f"{names[0]} 2", f"{names[2]} 0"])
    _write(holder / "test_COVIDx_CT-3A.txt", [f"{names[1]} 2 1 2 3 4"])
    for scheme in ("covidx:CT-3A", "covidx:ct-3a"):
        assert resolve_split(manifest, scheme, root=tmp_path).tolist() == ["train", "test", "train", "", ""]
    assert resolve_labels(manifest, "covidx:CT-3A", root=tmp_path).tolist() == [
        "covid-19",
        "covid-19",
        "normal",
        "",
        "",
    ]
    report = covidx.held_and_served(manifest, holder, "CT-3A", frozenset({"covid-19", "normal"}))
    assert (report["version"], report["listed"], report["held"], report["served"]) == ("CT-3A", 3, 3, 3)
    assert report["sources"][CT]["held_as"] == CT
