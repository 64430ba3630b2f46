"""CT volumes beyond torch: tf serves the same voxels (NumPy resampling = torch's interpolate), and
deduplicate drops series that are copies of series held elsewhere (real DICOM from the pos-case sample)."""

from __future__ import annotations

import importlib.util
import shutil
import warnings
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
import torch
import yaml

from covid19_images import load_covid_ct
from covid19_images.loaders.volumes import read_dicom_series, resample
from tests.loaders.test_loaders_common import run_python
from tests.sources.catalog.test_medseg_ct import series_slices, volume_from_dicom

POS_CASE = "coyotespike-covid-19-pos-case/COVID-19-pos-case"


def series_files(shared: Path) -> dict[int, list[Path]]:
    found: dict[int, list[Path]] = {}
    for path in sorted((shared / POS_CASE).iterdir()):
        found.setdefault(int(pydicom.dcmread(path, stop_before_pixels=True).SeriesNumber), []).append(path)
    return found


def build(root: Path, sources: list[str]) -> Path:
    from covid19_images.manifest.build import build_manifest, write_manifest
    from covid19_images.sources.registry import load_registry

    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}))
    write_manifest(root, build_manifest(root, load_registry(root), progress=False))
    return root


@pytest.mark.upstream
def test_scipy_resampling_is_torchs_trilinear_and_nearest_exact(shared: Path) -> None:
    volume, _spacing, _files = read_dicom_series(series_files(shared)[2])
    tensor = torch.from_numpy(volume)[None, None]
    for size in [(5, 64, 48), (2, 700, 31), (volume.shape[0], 100, 600)]:
        expected = torch.nn.functional.interpolate(tensor, size=size, mode="trilinear", align_corners=False)[0, 0]
        # the same weights up to float32 rounding of the source index (torch's kernel rounds in its own
        # order): 1e-5 of the HU range is below 0.1 HU, where a convention error (align_corners, pixel
        # centres) shows as hundreds of HU at the lung's edges
        tolerance = 1e-5 * float(volume.max() - volume.min())
        assert float(np.abs(resample(volume, size, nearest=False) - expected.numpy()).max()) <= tolerance
        labels = np.rint(volume / 500).astype(np.float32)  # a label volume from the real HU
        nearest = torch.nn.functional.interpolate(torch.from_numpy(labels)[None, None], size=size, mode="nearest-exact")
        assert np.array_equal(resample(labels, size, nearest=True), nearest[0, 0].numpy())


@pytest.fixture(scope="module")
def ct_world(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Path:
    """pos-case series 2 and 3, and a MedSeg-like NIfTI (built from series 2) with a lesion mask."""
    warnings.simplefilter("ignore")
    root = tmp_path_factory.mktemp("ct-world")
    pos = root / "datasets/covid19-pos-case/COVID-19-pos-case"
    pos.mkdir(parents=True)
    files = series_files(shared)
    for path in files[2] + files[3]:
        shutil.copy(path, pos / path.name)
    medseg = root / "datasets/medseg-ct/dataset"
    medseg.mkdir(parents=True)
    image = volume_from_dicom(series_slices(shared, 2), flip_rows=True)
    nibabel.save(image, medseg / "tr_im.nii")
    mask = np.zeros(image.shape, dtype=np.float64)
    i, j = image.shape[0], image.shape[1]  # lesions a quarter of the side: they survive resampling to 64 x 48
    mask[i // 10 : i // 10 + i // 4, j // 2 : j // 2 + j // 4, 1] = 1
    mask[i // 2 : i // 2 + i // 4, j // 8 : j // 8 + j // 4, 0] = 3
    nibabel.save(nibabel.Nifti1Image(mask, image.affine), medseg / "tr_mask.nii")
    return build(root, ["covid19-pos-case", "medseg-ct"])


TF_SCRIPT = r"""
import sys
import numpy as np
from covid19_images import load_covid_ct
root, out = sys.argv[1], sys.argv[2]
arrays = {}
native = load_covid_ct("tf", root=root, split=None, volumes=True, with_id=True, sources=["covid19-pos-case"])
for k, (volume, label, key) in enumerate(native.as_numpy_iterator()):
    arrays[f"native{k}"], arrays[f"native_key{k}"], arrays[f"native_label{k}"] = volume, key.decode(), label
sized = load_covid_ct("tf", root=root, split=None, volumes=True, monai_dict=True, sources=["medseg-ct"],
                      volume_size=(3, 64, 48), batch_size=1)
item = next(iter(sized))
for name in ("image", "mask", "spacing", "original_spacing"):
    arrays[f"medseg_{name}"] = item[name].numpy()[0]
arrays["medseg_key"] = item["key"].numpy()[0].decode()
np.savez(out, **arrays)
"""


@pytest.mark.framework
@pytest.mark.xdist_group("loaders-tf")
@pytest.mark.upstream
def test_tf_volumes_are_torchs_voxels_channels_last(ct_world: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    out = tmp_path / "tf.npz"
    done = run_python(f"import sys; sys.argv = ['x', {str(ct_world)!r}, {str(out)!r}]\n" + TF_SCRIPT, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(out)
    native = load_covid_ct(root=ct_world, split=None, volumes=True, with_id=True, sources=["covid19-pos-case"])
    assert len(native) == 2
    for k in range(len(native)):
        volume, label, key = native[k]
        assert got[f"native{k}"].shape == (*volume.shape[1:], 1)  # [z, y, x, 1]
        assert np.array_equal(got[f"native{k}"][..., 0], volume[0].numpy())
        assert str(got[f"native_key{k}"]) == key and int(got[f"native_label{k}"]) == label
    torch_item = load_covid_ct(
        root=ct_world, split=None, volumes=True, monai_dict=True, sources=["medseg-ct"], volume_size=(3, 64, 48)
    )[0]
    assert np.array_equal(got["medseg_image"][..., 0], torch_item["image"][0].numpy())
    assert np.array_equal(got["medseg_mask"][..., 0], torch_item["mask"][0].numpy())
    assert {int(v) for v in np.unique(got["medseg_mask"])} == {0, 1, 3}  # the lesions survive nearest resampling
    assert got["medseg_spacing"] == pytest.approx(torch_item["meta"]["spacing"], rel=1e-6)
    assert got["medseg_original_spacing"] == pytest.approx(torch_item["meta"]["original_spacing"], rel=1e-6)
    assert str(got["medseg_key"]) == torch_item["meta"]["key"]


@pytest.mark.framework
@pytest.mark.upstream
def test_fastai_volume_dataloaders_hold_torchs_volumes_of_train_and_val(ct_world: Path, tmp_path: Path) -> None:
    pytest.importorskip("fastai")
    from covid19_images.manifest.io import read_manifest
    from tests.loaders.test_loaders_detection import move_to_split

    root = tmp_path / "world"
    shutil.copytree(ct_world, root)
    manifest = read_manifest(root)
    move_to_split(root, manifest["source"] == "medseg-ct", "val")  # the pos-case series train, MedSeg validates
    move_to_split(root, manifest["source"] == "covid19-pos-case", "train")
    size = (3, 32, 24)
    with pytest.raises(ValueError, match="volume_size"):
        load_covid_ct("fastai", root=root, volumes=True)
    dls = load_covid_ct("fastai", root=root, volumes=True, volume_size=size, bs=2, shuffle=False, num_workers=0)
    assert (len(dls.train_ds), len(dls.valid_ds)) == (2, 1) and dls.test_ds is None
    volumes, labels = dls.train.one_batch()
    assert volumes.shape == (2, 1, *size) and labels.tolist() == [dls.classes.index("covid-19")] * 2
    torch_train = load_covid_ct(root=root, volumes=True, volume_size=size)
    for k in range(2):
        assert torch.equal(volumes[k].cpu(), torch_train[k][0])
    valid, _label = dls.valid.one_batch()
    medseg = load_covid_ct(root=root, volumes=True, volume_size=size, split="val")[0][0]
    assert torch.equal(valid[0].cpu(), medseg)


@pytest.mark.upstream
def test_deduplicate_drops_series_copied_into_another_folder_and_another_source(shared: Path, tmp_path: Path) -> None:
    files = series_files(shared)
    first, second = files[2], files[3]
    assert len(first) >= 3 and len(second) >= 2
    pos = tmp_path / "datasets/covid19-pos-case/COVID-19-pos-case"
    copy = tmp_path / "datasets/covid19-pos-case/copy"  # part of series 2 again, in a second folder
    ahp = tmp_path / "datasets/ahp-ct/Thorax"  # all of series 3, in another source (as .dcm)
    for folder in (pos, copy, ahp):
        folder.mkdir(parents=True)
    for path in first + second:
        shutil.copy(path, pos / path.name)
    for path in first[:-1]:
        shutil.copy(path, copy / path.name)
    for path in second:
        shutil.copy(path, ahp / f"{path.name}.dcm")
    root = build(tmp_path, ["covid19-pos-case", "ahp-ct"])

    every = load_covid_ct(root=root, split=None, volumes=True, deduplicate=False)
    assert sorted(len(v.files) for v in every.volumes) == sorted([len(first), len(first) - 1, len(second), len(second)])
    assert every.duplicates == {}
    kept = load_covid_ct(root=root, split=None, volumes=True)
    assert len(kept) == 2 and len(kept.duplicates) == 2
    uids = {int(pydicom.dcmread(p).SeriesNumber): str(pydicom.dcmread(p).SeriesInstanceUID) for p in first + second}
    served = {pydicom.dcmread(v.files[0]).SeriesNumber: v for v in kept.volumes}
    assert set(served) == {2, 3}
    assert len(served[2].files) == len(first)  # the whole series absorbs the partial copy, not the reverse
    assert served[2].source == "covid19-pos-case" and "/copy" not in served[2].files[0]
    for dropped, holder in kept.duplicates.items():
        dropped_uid = dropped.split(":", 1)[1].split("@")[0]
        assert dropped_uid in uids.values() and holder.split(":", 1)[1].split("@")[0] == dropped_uid
    # the kept volumes are the series themselves, slice for slice
    for number, volume in served.items():
        index = kept.volumes.index(volume)
        expected, _spacing, _order = read_dicom_series(files[number])
        assert np.array_equal(kept[index][0][0].numpy(), expected)


ANISO_TF = r"""
import sys
import numpy as np
from covid19_images import load_covid_ct
root, out = sys.argv[1], sys.argv[2]
ds = load_covid_ct("tf", root=root, split=None, volumes=True, monai_dict=True, spacing=(5.0, 1.4, 2.6))
item = next(iter(ds))
np.savez(out, image=item["image"].numpy(), spacing=item["spacing"].numpy())
"""


@pytest.fixture(scope="module")
def anisotropic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One NIfTI volume with voxels 1.3 x 0.7 x 2.5 mm (i, j, k): 30 x 40 x 8 voxels, a smooth pattern."""
    root = tmp_path_factory.mktemp("anisotropic")
    folder = root / "datasets/medseg-ct/dataset"
    folder.mkdir(parents=True)
    i, j, k = np.meshgrid(np.arange(30), np.arange(40), np.arange(8), indexing="ij")
    data = (-1000 + 20 * i + 7 * j + 90 * k + 150 * np.sin(i / 4.0) * np.cos(j / 6.0)).astype(np.float32)
    nibabel.save(nibabel.Nifti1Image(data, np.diag([-1.3, -0.7, 2.5, 1.0])), folder / "tr_im.nii")
    return build(root, ["medseg-ct"])


@pytest.mark.framework
def test_non_square_voxels_resample_by_each_axis_own_spacing_in_torch_and_tf(anisotropic: Path, tmp_path: Path) -> None:
    """A bug that pairs an in-plane spacing with the wrong axis (or the slice spacing with a row)
    gives another shape; one that resamples by the wrong factors gives other voxels."""
    slices = load_covid_ct(root=anisotropic, split=None, image_size=None, channels=1)
    rows, columns = slices[0][0].shape[-2:]
    assert {rows, columns} == {30, 40}
    row_mm, column_mm = (0.7, 1.3) if rows == 40 else (1.3, 0.7)  # a row of the shown slice steps along j or i
    native = load_covid_ct(root=anisotropic, split=None, volumes=True, monai_dict=True)[0]
    assert tuple(native["image"].shape) == (1, 8, rows, columns)
    assert native["meta"]["original_spacing"] == pytest.approx((2.5, row_mm, column_mm))
    item = load_covid_ct(root=anisotropic, split=None, volumes=True, monai_dict=True, spacing=(5.0, 1.4, 2.6))[0]
    # the physical extent over the wanted spacing, axis by axis: 8 x 2.5 / 5, rows x row_mm / 1.4, ...
    expected = (round(8 * 2.5 / 5.0), round(rows * row_mm / 1.4), round(columns * column_mm / 2.6))
    assert expected in {(4, 20, 15), (4, 15, 20)}
    assert tuple(item["image"].shape) == (1, *expected)
    assert item["meta"]["spacing"] == pytest.approx((5.0, 1.4, 2.6))
    reference = torch.nn.functional.interpolate(native["image"][None].float(), size=expected, mode="trilinear")
    assert float((item["image"][0] - reference[0, 0]).abs().max()) <= 1e-3
    if importlib.util.find_spec("tensorflow") is None:
        return
    out = tmp_path / "tf.npz"
    done = run_python(f"import sys; sys.argv = ['x', {str(anisotropic)!r}, {str(out)!r}]\n" + ANISO_TF, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(out)
    assert got["image"].shape == (*expected, 1)
    assert np.array_equal(got["image"][..., 0], item["image"][0].numpy())
    assert got["spacing"] == pytest.approx((5.0, 1.4, 2.6))
