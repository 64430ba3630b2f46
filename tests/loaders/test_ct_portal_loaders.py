"""The CT portal sets through the loaders: MosMed and Zenodo 3757476 masks (2-D and per volume), the MosMed
grade as severity, and volumes=True on NIfTI, MetaImage (STOIC) and DICOM (COVID-CT-MD).

Expected values are read here from the fetched files with nibabel, SimpleITK and pydicom."""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from torchvision.transforms import v2

from covid19_images import load_covid_ct
from tests.sources.portal.test_ct_portal_sources import build_ct_portal_root

pytestmark = [pytest.mark.framework, pytest.mark.xdist_group("ct-portal")]
SIZE = 32
#: mask set -> (source, mask folder prefix in its extra, class values stored)
MASK_SETS = {"mosmed": "mosmeddata", "ct-seg-lung": "covid19-ct-seg", "ct-seg-infection": "covid19-ct-seg"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ct_portal_root(tmp_path_factory.mktemp("ct-loaders") / "root")


def load(root: Path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_covid_ct("torch", root=root, split=None, **options)


def stored_mask(root: Path, mask_source: str, ds, index: int) -> np.ndarray:
    """The mask file's slice ``frame`` of item ``index`` (annotations name the file), straight from nibabel."""
    import pandas as pd

    notes = pd.read_csv(root / "manifests/annotations.csv", dtype=str, keep_default_na=False)
    row = ds.manifest.iloc[index]
    found = notes[(notes["image_id"] == row["image_id"]) & (notes["source"] == MASK_SETS[mask_source])]
    found = found[found["kind"] == "mask"]
    wanted = "lung_mask/" if mask_source == "ct-seg-lung" else "infection_mask/" if "infection" in mask_source else ""
    path = next(p for p in found["path"] if wanted in p)
    return np.asarray(nibabel.load(root / path).dataobj)[:, :, int(row["frame"])]


@pytest.mark.parametrize("mask_source", sorted(MASK_SETS))
def test_each_mask_set_is_served_on_its_slices_and_flips_with_the_image(root: Path, mask_source: str) -> None:
    plain = load(root, task="segmentation", mask_source=mask_source, image_size=SIZE)
    flipped = load(
        root, task="segmentation", mask_source=mask_source, image_size=SIZE, transform=v2.RandomHorizontalFlip(p=1.0)
    )
    assert len(plain) and set(plain.manifest["source"]) <= {MASK_SETS[mask_source], "covidx-ct"}
    for index in range(len(plain)):
        image, mask = plain[index]
        image_f, mask_f = flipped[index]
        assert mask.shape == (SIZE, SIZE) and image.shape[-2:] == (SIZE, SIZE)
        assert torch.equal(mask_f, mask.flip(-1)) and torch.allclose(image_f, image.flip(-1))
        stored = stored_mask(root, mask_source, plain, index)
        # the classes present in the served slice are the stored slice's, mapped by the mask set's table
        expected = {"mosmed": {0: 0, 1: 1}, "ct-seg-lung": {0: 0, 1: 1, 2: 2}, "ct-seg-infection": {0: 0, 1: 1}}
        classes = {expected[mask_source][int(v)] for v in np.unique(stored)}
        served = {int(v) for v in torch.unique(mask)}
        assert served <= classes and (served == classes or stored.shape[0] > SIZE)


def test_the_mosmed_grade_is_the_severity_target(root: Path) -> None:
    ds = load(root, task="severity", score="mosmed_grade", image_size=SIZE)
    seen = set()
    for index in range(len(ds)):
        _image, value = ds[index]
        path = ds.manifest["path"].iloc[index]
        if "/studies/CT-" in path:
            assert float(value) == float(path.split("/studies/CT-")[1][0])
            seen.add(path)
    # every study is served, study_0255 too: its duplicate group holds COVIDx CT's single slice of it, and the
    # copy kept is the one with the most frames (the volume), not the slice that sorts first
    assert len(seen) == 4


def test_volumes_of_every_ct_format_come_out_as_their_readers_give_them(root: Path) -> None:
    stoic = load(root, sources=["stoic2021"], volumes=True)
    assert len(stoic) == 3
    for index in range(len(stoic)):
        volume, _mask, meta = stoic.arrays(index)
        image = sitk.ReadImage(str(root / stoic.volumes[index].files[0]))
        assert np.array_equal(volume, sitk.GetArrayFromImage(image).astype(np.float32))
        assert meta["original_spacing"] == pytest.approx(tuple(reversed(image.GetSpacing())))
    md = load(root, sources=["covid-ct-md"], volumes=True)
    assert len(md) == 4  # one series per patient folder
    for index in range(len(md)):
        volume, _mask, meta = md.arrays(index)
        headers = [pydicom.dcmread(root / f) for f in md.volumes[index].files]
        ordered = sorted(headers, key=lambda ds: float(ds.ImagePositionPatient[2]))
        expected = np.stack([ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                             for ds in ordered])  # fmt: skip
        assert np.array_equal(volume, expected)
    mosmed = load(root, sources=["mosmeddata"], volumes=True, monai_dict=True)
    assert len(mosmed) == 4
    with_mask = [mosmed[i] for i in range(len(mosmed)) if "mask" in mosmed[i]]
    assert len(with_mask) == 1 and with_mask[0]["mask"].shape == with_mask[0]["image"].shape


@pytest.mark.parametrize("mask_source", ["ct-seg-lung", "ct-seg-infection"])
def test_segmentation_volumes_serve_the_chosen_mask_set(root: Path, mask_source: str) -> None:
    ds = load(root, volumes=True, task="segmentation", mask_source=mask_source, monai_dict=True)
    assert len(ds) == 2 and {v.source for v in ds.volumes} == {"covid19-ct-seg"}
    folder = "lung_mask/" if mask_source == "ct-seg-lung" else "infection_mask/"
    for index in range(len(ds)):
        item = ds[index]
        assert folder in ds.volumes[index].mask
        stored = np.asarray(nibabel.load(root / ds.volumes[index].mask).dataobj)
        assert item["mask"].shape == item["image"].shape
        # per slice k, the served classes are the stored slice's (the mask's slice axis is the volume's z)
        for k in range(stored.shape[2]):
            assert {int(v) for v in torch.unique(item["mask"][0, k])} == {int(v) for v in np.unique(stored[:, :, k])}
    with pytest.raises(ValueError, match="monai_dict=True"):
        load(root, volumes=True, task="segmentation", mask_source=mask_source)
