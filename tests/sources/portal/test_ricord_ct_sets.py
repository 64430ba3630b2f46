"""MIDRC-RICORD-1a/1b synced from their miniatures through the loopback portal (NBIA series zips), served as volumes.

The series come back in the NBIA API's ``<PatientID>/<StudyUID>/<SeriesUID>/`` landing, the MD.ai export
as a plain download; the manifest holds every slice, ``volumes=True`` serves one volume per series in
slice-position order with the headers' spacing, and 1a's outlines and volume labels are in
``annotations.csv`` on the slices they name.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from covid19_images import load_covid_ct
from covid19_images.manifest.build import build_manifest, write_manifest
from covid19_images.sources.registry import load_registry
from covid19_images.testing.portal_miniatures import fetched_miniature_root
from covid19_images.testing.portal_server import running

NAMES = ["midrc-ricord-1a", "midrc-ricord-1b"]
EXPORT = "MIDRC-RICORD-1a_annotations_labelgroup_all_2020-Dec-8.json"
pytestmark = pytest.mark.xdist_group("ricord-ct-portal")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    warnings.simplefilter("ignore")
    root = tmp_path_factory.mktemp("ricord-ct") / "root"
    with running() as server:
        fetched_miniature_root(root, server, NAMES)
        asked = [path for _method, path in server.requests_for("getImage")]
    assert asked  # fetched through NBIA's getImage, not placed by the test-only fallback
    write_manifest(root, build_manifest(root, load_registry(root), progress=False))
    yield root


def slices_of(root: Path, name: str) -> dict[str, list[pydicom.Dataset]]:
    series: dict[str, list[pydicom.Dataset]] = {}
    for path in (root / "datasets" / name).rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    return series


def test_every_slice_is_in_the_manifest_with_the_subject_mrn(root: Path) -> None:
    manifest = pd.read_csv(root / "manifests/manifest.csv", dtype=str, keep_default_na=False)
    for name in NAMES:
        assert (root / "manifests/locks" / f"{name}.lock.tsv").is_file()
        rows = manifest[manifest["source"] == name]
        headers = [ds for series in slices_of(root, name).values() for ds in series]
        assert len(rows) == len(headers) > 0
        assert set(rows["patient_id"]) == {f"{name}:{str(ds.PatientID).split('-', 3)[3]}" for ds in headers}
    assert set(manifest.loc[manifest["source"] == "midrc-ricord-1a", "label"]) == {"covid-19"}
    assert set(manifest.loc[manifest["source"] == "midrc-ricord-1b", "label"]) == {"other"}


def test_volumes_are_one_per_series_in_position_order_with_header_spacing(root: Path) -> None:
    ds = load_covid_ct(root=root, split=None, volumes=True, deduplicate=False, sources=NAMES)
    series = {**slices_of(root, NAMES[0]), **slices_of(root, NAMES[1])}
    assert len(ds) == len(series) == 2
    for index in range(len(ds)):
        volume, _label = ds[index]
        array, mask, meta = ds.arrays(index)
        slices = sorted(series[meta["key"]], key=lambda s: float(s.ImagePositionPatient[2]))
        assert volume.shape == (1, len(slices), 16, 16)
        expected = np.stack([s.pixel_array.astype(np.float32) * float(s.RescaleSlope) + float(s.RescaleIntercept)
                             for s in slices])  # fmt: skip
        assert np.array_equal(np.asarray(array).reshape(expected.shape), expected)
        assert mask is None and tuple(meta["spacing"]) == pytest.approx((5.0, 12.5, 12.5))


def test_1a_outlines_and_volume_labels_land_on_their_slices(root: Path) -> None:
    notes = pd.read_csv(root / "manifests/annotations.csv", dtype=str, keep_default_na=False)
    manifest = pd.read_csv(root / "manifests/manifest.csv", dtype=str, keep_default_na=False)
    paths = dict(zip(manifest["image_id"], manifest["path"], strict=True))
    one_a = notes[notes["source"] == "midrc-ricord-1a"]
    export = json.loads((root / "datasets/midrc-ricord-1a" / EXPORT).read_text())
    sops = {str(pydicom.dcmread(root / p, stop_before_pixels=True).SOPInstanceUID): p
            for p in manifest.loc[manifest["source"] == "midrc-ricord-1a", "path"]}  # fmt: skip
    outlines = [a for a in export["datasets"][0]["annotations"] if (a.get("data") or {}).get("vertices")]
    expected = sorted(
        (sops[a["SOPInstanceUID"]], min(v[0] for v in a["data"]["vertices"]), max(v[1] for v in a["data"]["vertices"]))
        for a in outlines if a["SOPInstanceUID"] in sops
    )  # fmt: skip
    boxes = one_a[one_a["kind"] == "box"]
    got = sorted(
        (paths[i], float(x0), float(y1)) for i, x0, y1 in zip(boxes["image_id"], boxes["x0"], boxes["y1"], strict=True)
    )
    assert got == expected
    volume_label = one_a[(one_a["kind"] == "finding") & (one_a["name"] == "ggo")]
    assert set(volume_label["image_id"].map(paths)) == set(sops.values())


def test_1a_outlines_are_served_as_masks_on_their_slices_and_flip_with_them(root: Path) -> None:
    import torch
    from torchvision.transforms import v2

    options = {"root": root, "split": None, "task": "segmentation", "mask_source": "ricord-1a", "image_size": 16}
    plain = load_covid_ct(**options)
    flipped = load_covid_ct(**options, transform=v2.RandomHorizontalFlip(p=1.0))
    export = json.loads((root / "datasets/midrc-ricord-1a" / EXPORT).read_text())
    outlines: dict[str, list] = {}
    for item in export["datasets"][0]["annotations"]:
        if (item.get("data") or {}).get("vertices"):
            outlines.setdefault(item["SOPInstanceUID"], []).append(item["data"]["vertices"])
    served = [str(pydicom.dcmread(root / p, stop_before_pixels=True).SOPInstanceUID) for p in plain.manifest["path"]]
    assert sorted(served) == sorted(s for s in outlines if s in set(served)) and len(served) == 2
    assert plain.target_classes == ["background", "opacity"]
    for index, sop in enumerate(served):
        image, mask = plain[index]
        for vertices in outlines[sop]:
            xs, ys = [v[0] for v in vertices], [v[1] for v in vertices]
            cx, cy = int(sum(xs) / len(xs)), int(sum(ys) / len(ys))
            assert int(mask[cy, cx]) == 1  # the outline's centre is opacity
        xs = [v[0] for vs in outlines[sop] for v in vs]
        ys = [v[1] for vs in outlines[sop] for v in vs]
        rows, cols = np.nonzero(mask.numpy())
        assert rows.min() >= int(min(ys)) and rows.max() <= int(np.ceil(max(ys)))  # nothing outside the outlines
        assert cols.min() >= int(min(xs)) and cols.max() <= int(np.ceil(max(xs)))
        image_f, mask_f = flipped[index]
        assert torch.equal(image_f, image.flip(-1)) and torch.equal(mask_f, mask.flip(-1))
        assert not torch.equal(mask_f, mask)


def test_1a_outlines_are_served_as_a_mask_volume_in_series_order_with_empty_slices(root: Path) -> None:
    """``volumes=True, task="segmentation"``: each slice's outlines drawn filled, slices in position order
    (not file order: the miniature's files are named out of z order), slices without an outline empty."""
    import tensorflow as tf

    options = {"root": root, "split": None, "volumes": True, "task": "segmentation", "mask_source": "ricord-1a"}
    ds = load_covid_ct(**options, monai_dict=True)
    assert [v.source for v in ds.volumes] == ["midrc-ricord-1a"]
    export = json.loads((root / "datasets/midrc-ricord-1a" / EXPORT).read_text())
    outlines: dict[str, list] = {}
    for item in export["datasets"][0]["annotations"]:
        if (item.get("data") or {}).get("vertices"):
            outlines.setdefault(item["SOPInstanceUID"], []).append(item["data"]["vertices"])
    item = ds[0]
    mask = item["mask"].numpy()[0]
    slices = sorted(
        slices_of(root, "midrc-ricord-1a")[ds.volumes[0].key], key=lambda s: float(s.ImagePositionPatient[2])
    )
    assert mask.shape == item["image"].shape[1:] == (len(slices), 16, 16) and set(np.unique(mask)) == {0, 1}
    drawn = [outlines.get(str(s.SOPInstanceUID), []) for s in slices]
    assert [bool(d) for d in drawn] == [True, True, False, False]  # z order; files 1-01..1-04 are not
    for k, vertices_of_slice in enumerate(drawn):
        if not vertices_of_slice:
            assert not mask[k].any()  # annotated series, no outline on this slice: background, not missing
            continue
        for vertices in vertices_of_slice:
            xs, ys = [v[0] for v in vertices], [v[1] for v in vertices]
            assert mask[k, int(sum(ys) / len(ys)), int(sum(xs) / len(xs))] == 1  # the outline's centre
        rows, cols = np.nonzero(mask[k])
        xs = [v[0] for vs in vertices_of_slice for v in vs]
        ys = [v[1] for vs in vertices_of_slice for v in vs]
        assert rows.min() >= int(min(ys)) and rows.max() <= int(np.ceil(max(ys)))  # nothing outside them
        assert cols.min() >= int(min(xs)) and cols.max() <= int(np.ceil(max(xs)))
    # resampled as the image is (nearest neighbour): 4 slices of 16 x 16 -> 8 of 8 x 8
    small = load_covid_ct(**options, monai_dict=True, volume_size=(8, 8, 8))[0]
    assert small["mask"].shape == small["image"].shape == (1, 8, 8, 8)
    assert [bool(small["mask"][0, k].any()) for k in range(8)] == [True] * 4 + [False] * 4
    # tf serves the same mask volume
    (tf_item,) = list(load_covid_ct("tf", **options, monai_dict=True).take(1))
    assert np.array_equal(tf_item["mask"].numpy()[..., 0], mask) and tf_item["mask"].dtype == tf.uint8
