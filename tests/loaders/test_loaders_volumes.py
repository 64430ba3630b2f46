"""CT volumes: DICOM series in anatomical order whatever the file names, NIfTI with its mask."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
import yaml

from covid19_images import load_covid_ct
from covid19_images.loaders.volumes import read_dicom_series
from tests.conftest import build_synced_root, swap_contents_and_resync
from tests.sources.catalog.test_medseg_ct import hounsfield, series_slices, volume_from_dicom

POS_CASE = "coyotespike-covid-19-pos-case/COVID-19-pos-case"


@pytest.mark.upstream
def test_series_loads_in_anatomical_order_when_file_names_are_shuffled(shared: Path, tmp_path: Path) -> None:
    files = [p for p in sorted((shared / POS_CASE).iterdir()) if int(pydicom.dcmread(p).SeriesNumber) == 2]
    assert len(files) >= 3
    # new names in an order that is NOT the anatomical one (reverse of position)
    by_z = sorted(files, key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))
    shuffled = []
    for rank, source in enumerate(reversed(by_z)):
        target = tmp_path / f"slice-{rank:03d}"
        shutil.copy(source, target)
        shuffled.append(target)
    volume, spacing, ordered = read_dicom_series(sorted(shuffled))
    # axial series (ImageOrientationPatient 1,0,0,0,1,0): the slice normal is +z, so anatomical
    # order is ascending ImagePositionPatient z, here the reverse of the file names
    for source in files:
        assert [float(v) for v in pydicom.dcmread(source).ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert [Path(p).name for p in ordered] == [f"slice-{r:03d}" for r in reversed(range(len(by_z)))]
    for k, source in enumerate(by_z):
        assert np.array_equal(volume[k], hounsfield(pydicom.dcmread(source)).astype(np.float32))
    zs = [float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in by_z]
    assert spacing[0] == pytest.approx(float(np.median(np.diff(zs))))
    assert spacing[1:] == tuple(float(v) for v in pydicom.dcmread(files[0]).PixelSpacing)


@pytest.fixture(scope="module")
def pos_case(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    warnings.simplefilter("ignore")
    return build_synced_root(tmp_path_factory.mktemp("volumes"), mirrors, ["covid19-pos-case"])


@pytest.mark.upstream
def test_load_covid_ct_volumes_serves_one_item_per_axial_series(pos_case: Path, shared: Path) -> None:
    series: dict[str, list] = {}
    for path in (shared / POS_CASE).iterdir():
        ds = pydicom.dcmread(path)
        if "ORIGINAL" in ds.ImageType and "AXIAL" in ds.ImageType:  # acquisitions, not scout or reformats
            series.setdefault(ds.SeriesInstanceUID, []).append(ds)
    ds = load_covid_ct(root=pos_case, split=None, volumes=True, deduplicate=False)
    assert len(ds) == len(series)
    for index in range(len(ds)):
        volume, label = ds[index]
        meta = ds.arrays(index)[2]
        slices = series[meta["key"]]
        assert volume.shape == (1, len(slices), slices[0].Rows, slices[0].Columns)
        assert ds.classes[label] == "covid-19"
        zs = [float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in meta["files"]]
        assert zs == sorted(zs)
    resampled = load_covid_ct(root=pos_case, split=None, volumes=True, deduplicate=False, volume_size=(4, 64, 48))
    assert resampled[0][0].shape == (1, 4, 64, 48)
    item = load_covid_ct(root=pos_case, split=None, volumes=True, monai_dict=True, spacing=(5.0, 2.0, 2.0))[0]
    assert set(item) == {"image", "label", "meta"} and item["meta"]["spacing"] == pytest.approx(
        (5.0, 2.0, 2.0), rel=0.2
    )


@pytest.mark.upstream
def test_nifti_volume_comes_with_its_mask_aligned(shared: Path, tmp_path: Path) -> None:
    """A MedSeg-like volume built from real DICOM (the real data is LFS pointers), built and loaded."""
    from covid19_images.manifest.build import build_manifest, write_manifest
    from covid19_images.sources.registry import load_registry

    root = tmp_path / "root"
    dataset = root / "datasets/medseg-ct/dataset"
    dataset.mkdir(parents=True)
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": ["medseg-ct"]}))
    slices = series_slices(shared, 2)
    image = volume_from_dicom(slices, flip_rows=True)
    nibabel.save(image, dataset / "tr_im.nii")
    mask = np.zeros(image.shape, dtype=np.float64)
    mask[50:120, 300:400, 1] = 1  # ground-glass in one corner of slice 1
    mask[200:220, 100:130, 0] = 3
    nibabel.save(nibabel.Nifti1Image(mask, image.affine), dataset / "tr_mask.nii")
    result = build_manifest(root, load_registry(root), progress=False)
    write_manifest(root, result)
    assert len(result.manifest) == 1 and len(result.annotations)

    item = load_covid_ct(root=root, split=None, volumes=True, monai_dict=True)[0]
    assert item["image"].shape == item["mask"].shape == (1, len(slices), slices[0].Rows, slices[0].Columns)
    # the 2-D segmentation loader and the volume agree slice by slice: same orientation, same mask
    flat = load_covid_ct(root=root, split=None, task="segmentation", image_size=None, channels=1)
    assert len(flat) == len(slices)
    for k in range(len(slices)):
        _image, mask_k = flat[k]
        assert np.array_equal(mask_k.numpy(), item["mask"][0, k].numpy())
    shown = item["mask"][0, 1].numpy()
    # NIfTI voxel (i, j) holds DICOM pixel (row Rows-1-j, column i) (rows flipped like dcm2niix), so
    # the lesion drawn at i 50..119, j 300..399 sits at rows Rows-400..Rows-301, columns 50..119
    rows = slices[1].Rows
    expected = np.zeros_like(shown)
    expected[rows - 400 : rows - 300, 50:120] = 1
    assert np.array_equal(shown, expected)
    assert np.allclose(item["image"][0, 1].numpy(), hounsfield(slices[1]), atol=1e-3)


@pytest.mark.upstream
def test_monai_dictionary_transforms_apply_to_image_and_mask(shared: Path, tmp_path: Path) -> None:
    monai_transforms = pytest.importorskip("monai.transforms")
    from covid19_images.manifest.build import build_manifest, write_manifest
    from covid19_images.sources.registry import load_registry

    root = tmp_path / "root"
    dataset = root / "datasets/medseg-ct/dataset"
    dataset.mkdir(parents=True)
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": ["medseg-ct"]}))
    image = volume_from_dicom(series_slices(shared, 2), flip_rows=False)
    nibabel.save(image, dataset / "tr_im.nii")
    mask = np.zeros(image.shape, dtype=np.float64)
    mask[40:90, 10:30, 0] = 2
    nibabel.save(nibabel.Nifti1Image(mask, image.affine), dataset / "tr_mask.nii")
    write_manifest(root, build_manifest(root, load_registry(root), progress=False))

    plain = load_covid_ct(root=root, split=None, volumes=True, monai_dict=True)[0]
    transform = monai_transforms.Compose(
        [
            monai_transforms.RandFlipd(keys=["image", "mask"], prob=1.0, spatial_axis=2),
            monai_transforms.ScaleIntensityRanged(keys=["image"], a_min=-1000, a_max=400, b_min=0, b_max=1, clip=True),
        ]
    )
    moved = load_covid_ct(root=root, split=None, volumes=True, monai_dict=True, transform=transform)[0]
    assert np.array_equal(np.asarray(moved["mask"]), np.asarray(plain["mask"]).copy()[..., ::-1])
    expected = np.clip((np.asarray(plain["image"])[..., ::-1] + 1000) / 1400, 0, 1)
    assert np.allclose(np.asarray(moved["image"]), expected, atol=1e-5)
    assert int(np.asarray(moved["mask"]).max()) == 2 and moved["label"] == plain["label"]


@pytest.mark.upstream
def test_a_sync_that_rewrites_the_manifest_stops_volumes_built_before_it(tmp_path: Path, mirrors: Path) -> None:
    from covid19_images.loaders._manifest import ManifestChanged
    from covid19_images.loaders._options import make_options
    from covid19_images.loaders.volumes import VolumeReader

    warnings.simplefilter("ignore")
    root = build_synced_root(tmp_path, mirrors, ["covid19-pos-case"])
    reader = VolumeReader(make_options("ct", root=root, split=None, volumes=True, deduplicate=False))
    files = reader.arrays(0)[2]["files"]
    assert len(files) >= 2
    a, b = Path(files[0]), Path(files[-1])  # two slices of one series trade places: the volume is another one
    swap_contents_and_resync(root, a, b)
    with pytest.raises(ManifestChanged, match="changed since this loader was built"):
        reader.arrays(0)
    with pytest.raises(ManifestChanged):
        reader.split_off(reader.volumes[0].split).arrays(0)
