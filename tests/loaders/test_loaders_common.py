"""Loader behaviour every framework shares, proven on the real upstream samples.

Selection (filters, dedup, splits, classes, frame expansion), the up-front file check,
the manifest errors and the "no framework on import" promise are framework-free, so they
are tested here through ``loaders._select`` plus one cheap torch dataset where a native
object is needed. Framework specifics live in tests/loaders/{torch,tf,fastai}/test_adapter.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from covid19_images.loaders import (
    KNOWN_LABELS,
    DataNotAvailableError,
    NoItemsError,
    load,
    load_manifest,
)
from covid19_images.loaders._options import make_options
from covid19_images.loaders._select import check_available, select
from covid19_images.manifest.build import MANIFEST_FILE, manifest_bytes, read_manifest, write_atomic
from covid19_images.manifest.integrity import write_record
from tests.conftest import build_synced_root

pytestmark = [pytest.mark.upstream, pytest.mark.xdist_group("loaders-common")]

PROJECT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
XRAY_SOURCES = ("ieee8023-covid-chestxray", "zhanglab-pediatric-xray", "darshan-xray", "figure1-xray")


def run_python(code: str, *, env: dict[str, str] | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this venv (import-order and blocker tests)."""
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )


@pytest.fixture(scope="module")
def xray_root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("loaders-common"), mirrors, XRAY_SOURCES)


def _select(root: Path, modality: str = "xray", **kwargs):
    options = make_options(modality, root=root, **kwargs)
    return select(load_manifest(root), options)


# --- import hygiene -------------------------------------------------------------------------


def test_import_covid19_images_imports_no_framework() -> None:
    result = run_python(
        """
        import sys, covid19_images
        from covid19_images import load_covid_xray, load_covid_ct, load_covid_ultrasound, load_manifest
        heavy = sorted(m for m in ("torch", "torchvision", "tensorflow", "fastai", "keras", "jax")
                       if m in sys.modules)
        print(heavy)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("framework", "module", "extra"),
    [("torch", "torch", "torch"), ("tf", "tensorflow", "tf"), ("fastai", "fastai", "fastai")],
)
def test_a_missing_framework_names_its_extra(xray_root: Path, framework: str, module: str, extra: str) -> None:
    result = run_python(
        f"""
        import sys
        sys.modules[{module!r}] = None  # as if it were not installed
        from covid19_images import load_covid_xray
        try:
            load_covid_xray({framework!r}, root={str(xray_root)!r})
        except ImportError as err:
            print("IMPORTERROR", err)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "IMPORTERROR" in result.stdout and f'pip install "covid19-images[{extra}]"' in result.stdout


# --- manifest ---------------------------------------------------------------------------------


def test_load_manifest_types_numeric_columns(xray_root: Path) -> None:
    manifest = load_manifest(xray_root)
    raw = read_manifest(xray_root)
    assert len(manifest) == len(raw) > 50
    for column in ("width", "height", "frames"):
        assert str(manifest[column].dtype) == "Int64"
        assert (manifest[column] > 0).all()
    assert manifest["age"].dtype == "float64"
    assert manifest["age"].notna().any() and manifest["age"].isna().any()  # ieee8023 gives some ages, not all
    assert set(manifest["source"]) == set(XRAY_SOURCES)


def test_missing_manifest_with_checkouts_suggests_offline_sync(xray_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(xray_root, root, symlinks=True)
    (root / MANIFEST_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"covid19-images sync --offline") as info:
        load_manifest(root)
    assert "zhanglab-pediatric-xray" in str(info.value)


def test_missing_manifest_without_checkouts_suggests_sync(tmp_path: Path) -> None:
    shutil.copy(PROJECT / "sources.yaml", tmp_path / "sources.yaml")
    with pytest.raises(FileNotFoundError, match=r"no source is checked out.*covid19-images sync"):
        load_manifest(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a covid19-images root"):
        load_manifest(tmp_path / "nowhere")


def test_root_from_environment_variable(xray_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVID19_IMAGES_ROOT", str(xray_root))
    assert len(load_manifest()) == len(read_manifest(xray_root))


# --- selection --------------------------------------------------------------------------------


def test_default_labels_exclude_unknown_and_classes_are_sorted(xray_root: Path) -> None:
    manifest = load_manifest(xray_root)
    assert (manifest["label"] == "unknown").any(), "the samples have unlabelled rows (todo/blank findings)"
    chosen = _select(xray_root, split=None)
    assert set(chosen.items["label"]) <= set(KNOWN_LABELS)
    assert list(chosen.classes) == sorted(set(chosen.items["label"]))
    every = _select(xray_root, split=None, labels="all")
    assert "unknown" in every.classes
    assert len(every) > len(chosen)


def test_classes_agree_across_splits_and_fixed_order_is_honoured(xray_root: Path) -> None:
    splits = {s: _select(xray_root, split=s) for s in ("train", "val", "test")}
    assert len({sel.classes for sel in splits.values()}) == 1
    for sel in splits.values():
        mapping = dict(zip(sel.items["label"], sel.items["label_index"], strict=True))
        assert all(sel.classes[index] == label for label, index in mapping.items())
    fixed = _select(xray_root, split=None, classes=["normal", "covid-19"])
    assert fixed.classes == ("normal", "covid-19")
    assert set(fixed.items["label"]) == {"normal", "covid-19"}
    assert (fixed.items.loc[fixed.items["label"] == "normal", "label_index"] == 0).all()
    with pytest.raises(ValueError, match="not in classes"):
        make_options("xray", root=xray_root, classes=["normal"], labels=["covid-19"])


def test_splits_are_disjoint_and_cover_everything(xray_root: Path) -> None:
    everything = _select(xray_root, split=None).items
    parts = {s: _select(xray_root, split=s).items for s in ("train", "val", "test")}
    ids = {s: set(zip(p["image_id"], p["frame"], strict=True)) for s, p in parts.items()}
    assert all(ids.values()), {s: len(i) for s, i in ids.items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    assert ids["train"] | ids["val"] | ids["test"] == set(zip(everything["image_id"], everything["frame"], strict=True))
    # patient-level: no patient on two sides
    patients = {s: set(p["patient_id"]) for s, p in parts.items()}
    assert not patients["train"] & patients["test"] and not patients["train"] & patients["val"]
    official = _select(xray_root, split=None, split_scheme="official", sources=["darshan-xray"]).items
    assert set(official["split"]) <= {"train", "val"}
    # leave-one-source-out: the held-out source is the whole test split, and nowhere else
    held_out = _select(xray_root, split="test", split_scheme="loso:figure1-xray").items
    assert set(held_out["source"]) == {"figure1-xray"}
    trained = _select(xray_root, split="train", split_scheme="loso:figure1-xray").items
    assert "figure1-xray" not in set(trained["source"])


def test_filters(xray_root: Path) -> None:
    only = _select(xray_root, split=None, sources="zhanglab-pediatric-xray").items
    assert set(only["source"]) == {"zhanglab-pediatric-xray"}
    frontal = _select(xray_root, split=None, views=("PA", "AP")).items
    assert set(frontal["view"]) == {"PA", "AP"}
    licence = load_manifest(xray_root)["license"].value_counts().index[0]
    licensed = _select(xray_root, split=None, licenses=[licence]).items
    assert set(licensed["license"]) == {licence} and len(licensed)
    covid = _select(xray_root, split=None, labels="covid-19").items
    assert set(covid["label"]) == {"covid-19"}
    with pytest.raises(NoItemsError, match="no-such-source"):
        _select(xray_root, sources="no-such-source")
    with pytest.raises(NoItemsError, match=r"views \['coronal'\]: 0"):
        _select(xray_root, views="coronal")


def test_augmented_copies_are_excluded_by_default(xray_root: Path) -> None:
    manifest = load_manifest(xray_root)
    augmented = manifest["extra"].map(lambda t: bool(t) and json.loads(t).get("augmented") is True)
    assert augmented.any(), "darshan's TrainData copies are marked augmented"
    default = _select(xray_root, split=None, sources="darshan-xray").items
    assert not set(default["image_id"]) & set(manifest.loc[augmented, "image_id"])
    included = _select(xray_root, split=None, sources="darshan-xray", include_augmented=True).items
    assert set(manifest.loc[augmented & manifest["label"].isin(KNOWN_LABELS), "image_id"]) <= set(included["image_id"])


def test_stable_order(xray_root: Path) -> None:
    items = _select(xray_root, split=None).items
    keys = list(zip(items["source"], items["path"], items["frame"], strict=True))
    assert keys == sorted(keys)
    again = _select(xray_root, split=None).items
    assert items["image_id"].tolist() == again["image_id"].tolist()


def test_bad_options_fail_fast_with_the_choices(xray_root: Path) -> None:
    with pytest.raises(ValueError, match="train, val, test"):
        make_options("xray", root=xray_root, split="valid")
    with pytest.raises(ValueError, match="covid-19, pneumonia"):
        make_options("xray", root=xray_root, labels=["covid"])
    with pytest.raises(ValueError, match="channels"):
        make_options("xray", root=xray_root, channels=4)
    # a view spelled as upstream metadata spells it: named, with the right spelling and every view
    with pytest.raises(ValueError, match=r"unknown view 'pa' \(did you mean 'PA'\?\); views are PA, AP, AP supine"):
        make_options("xray", root=xray_root, views="pa")
    with pytest.raises(ValueError, match=r"'L' \(did you mean 'lateral'\?\)"):
        make_options("xray", root=xray_root, views=["PA", "L"])
    with pytest.raises(ValueError, match=r"unknown view 'frontal'; views are PA"):
        make_options("xray", root=xray_root, views="frontal")
    assert make_options("xray", root=xray_root, views=("PA", "AP")).views == ("PA", "AP")
    with pytest.raises(ValueError, match="video_frames"):
        make_options("ultrasound", root=xray_root, video_frames=0)
    with pytest.raises(ValueError, match="xray, ct, ultrasound"):
        make_options("mri", root=xray_root)
    with pytest.raises(TypeError, match="lables"):
        load("xray", "torch", root=xray_root, lables=["normal"])
    with pytest.raises(ValueError, match="framework"):
        load("xray", "jax", root=xray_root)


# --- duplicates: a real duplicate, made the way upstreams make them (the same file twice) -----


@pytest.fixture(scope="module")
def dup_root(xray_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from covid19_images.sync.run import sync

    root = tmp_path_factory.mktemp("dups") / "root"
    shutil.copytree(xray_root, root, symlinks=True)
    folder = root / "datasets" / "zhanglab-pediatric-xray"
    original = sorted(p for p in folder.rglob("*.jpeg") if "NORMAL" in p.parts)[0]
    shutil.copy2(original, original.with_name("IM-9999-0001.jpeg"))
    sync(root, offline=True, progress=False)
    return root, original.relative_to(root).as_posix()


def test_dedup_serves_one_image_per_duplicate_group(dup_root: tuple[Path, str]) -> None:
    root, original = dup_root
    manifest = load_manifest(root)
    group = manifest.loc[manifest["path"] == original, "dup_group"].item()
    assert group, "the copied file must share a duplicate group with its original"
    members = manifest[manifest["dup_group"] == group].sort_values("image_id")
    assert len(members) == 2
    served = _select(root, split=None).items
    assert served.loc[served["dup_group"] == group, "image_id"].tolist() == [members["image_id"].iloc[0]]
    everything = _select(root, split=None, deduplicate=False).items
    assert sorted(everything.loc[everything["dup_group"] == group, "image_id"]) == sorted(members["image_id"])


def test_dedup_keeps_the_copy_the_split_scheme_serves(dup_root: tuple[Path, str]) -> None:
    """A scheme that lists one copy of a picture (COVIDx lists RICORD's, not SIIM's re-encoding) serves that copy."""
    root, original = dup_root
    manifest = load_manifest(root)
    group = manifest.loc[manifest["path"] == original, "dup_group"].item()
    members = manifest[manifest["dup_group"] == group].sort_values("image_id")
    unlisted, listed = members.index  # the first by image id would be kept without the rule
    manifest.loc[unlisted, "official_split"] = ""
    manifest.loc[listed, "official_split"] = "test"
    options = make_options("xray", root=root, split="test", split_scheme="official")
    served = select(manifest, options).items
    assert served.loc[served["dup_group"] == group, "image_id"].tolist() == [manifest.at[listed, "image_id"]]


# --- files on disk ----------------------------------------------------------------------------


def test_uninitialised_submodule_is_a_clear_error_at_construction(xray_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(xray_root, root, symlinks=True)
    folder = root / "datasets" / "figure1-xray"
    shutil.rmtree(folder)
    folder.mkdir()  # what `git clone` without `--recurse-submodules` leaves
    with pytest.raises(DataNotAvailableError) as info:
        check_available(_select(root, split=None))
    message = str(info.value)
    assert "figure1-xray" in message and "git submodule update --init datasets/figure1-xray" in message
    assert "covid19-images sync figure1-xray" in message
    # leaving the source out works
    check_available(_select(root, split=None, sources=[s for s in XRAY_SOURCES if s != "figure1-xray"]))


def test_missing_file_is_named(xray_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(xray_root, root, symlinks=True)
    selection = _select(root, split=None, sources="zhanglab-pediatric-xray")
    gone = selection.items["path"].iloc[0]
    (root / gone).unlink()
    with pytest.raises(DataNotAvailableError, match=r"1 of \d+ files") as info:
        check_available(selection)
    assert gone in str(info.value) and "sync --offline" in str(info.value)


def test_manifest_rows_keep_their_own_columns(xray_root: Path) -> None:
    items = _select(xray_root, split=None).items
    for column in ("image_id", "source", "path", "label", "split", "frame", "label_index", "file"):
        assert column in items.columns
    assert all(Path(f).is_file() for f in items["file"])


# --- volumes: a NIfTI made from real DICOM slices is served slice by slice ---------------------


def test_volume_rows_expand_to_one_item_per_slice(xray_root: Path, tmp_path: Path, shared: Path) -> None:
    nibabel = pytest.importorskip("nibabel")
    pytest.importorskip("torch")
    import numpy as np
    import pydicom

    from covid19_images.imaging.decode import read_pixels
    from covid19_images.imaging.probe import probe_file

    dicoms = sorted((shared / "coyotespike-covid-19-pos-case").rglob("IM*"))
    headers = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in dicoms}
    series = next(int(h.SeriesNumber) for h in headers.values() if "AXIAL" in list(h.ImageType))
    axial = [p for p, h in headers.items() if int(h.SeriesNumber) == series]  # one axial series, not the localizer
    slices = [read_pixels(p) for p in axial][:3]
    assert len(slices) == 3
    root = tmp_path / "copy"
    shutil.copytree(xray_root, root, symlinks=True)
    target = root / "datasets" / "volume-test" / "ct.nii.gz"
    target.parent.mkdir(parents=True)
    volume = np.stack([np.rot90(s, -1) for s in slices], axis=-1).astype(np.int16)
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), str(target))
    facts = probe_file(target)
    manifest = read_manifest(root)
    row = {c: "" for c in manifest.columns}
    row.update(
        image_id="volumetest000001",
        source="volume-test",
        path="datasets/volume-test/ct.nii.gz",
        sha256=facts.sha256,
        format=facts.format,
        width=str(facts.width),
        height=str(facts.height),
        frames=str(facts.frames),
        modality="ct",
        view="axial",
        label="covid-19",
        patient_id="volume-test:1",
        split="train",
    )
    manifest = pd.concat([manifest, pd.DataFrame([row])], ignore_index=True)
    data = manifest_bytes(manifest)
    write_record(root / MANIFEST_FILE, data)
    write_atomic(root / MANIFEST_FILE, data)
    items = _select(root, "ct", split=None, sources="volume-test").items
    assert items["frame"].tolist() == list(range(len(slices)))
    dataset = load("ct", "torch", root=root, split=None, sources="volume-test", image_size=None, channels=1)
    assert len(dataset) == len(slices)
    for index in range(len(slices)):
        image, label = dataset[index]
        assert image.shape == (1, *slices[0].shape)
        assert dataset.classes[label] == "covid-19"
    assert not np.array_equal(dataset.pixels(0), dataset.pixels(1))
