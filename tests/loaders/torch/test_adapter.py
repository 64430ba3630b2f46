"""The PyTorch adapter on the real samples: shapes, labels, transforms, worker processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from covid19_images import MEDICAL_WARNING, load_covid_ct, load_covid_ultrasound, load_covid_xray, load_manifest
from tests.conftest import build_synced_root
from tests.loaders.test_loaders_common import XRAY_SOURCES, run_python

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("loaders-torch")]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("loaders-torch"), mirrors, XRAY_SOURCES)


def test_items_are_float_chw_tensors_with_manifest_labels(root: Path) -> None:
    ds = load_covid_xray("torch", root=root, split="train")
    assert isinstance(ds, torch.utils.data.Dataset)
    assert len(ds) == len(ds.manifest) > 20
    assert ds.classes == sorted(ds.classes) and "unknown" not in ds.classes
    assert ds.class_to_idx == {c: i for i, c in enumerate(ds.classes)}
    assert set(ds.manifest["split"]) == {"train"}
    for index in (0, len(ds) // 2, len(ds) - 1):
        image, label = ds[index]
        assert image.dtype == torch.float32 and tuple(image.shape) == (3, 224, 224)
        assert 0.0 <= float(image.min()) <= float(image.max()) <= 1.0 and float(image.std()) > 0.01
        assert ds.classes[label] == ds.manifest["label"].iloc[index]
        assert ds.targets[index] == label
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_image_size_and_channels(root: Path) -> None:
    ds = load_covid_xray("torch", root=root, split="val", image_size=(128, 96), channels=1)
    image, _ = ds[0]
    assert tuple(image.shape) == (1, 128, 96)
    rgb = load_covid_xray("torch", root=root, split="val", image_size=(128, 96))
    replicated, _ = rgb[0]
    # gray X-rays replicate to 3 equal channels; colour sources keep their colour
    if ds.manifest["source"].iloc[0] == "zhanglab-pediatric-xray":
        assert torch.equal(replicated[0], replicated[1])


def test_uint8_output_is_the_same_picture(root: Path) -> None:
    floats = load_covid_xray("torch", root=root, split="val", image_size=64)
    raw = load_covid_xray("torch", root=root, split="val", image_size=64, dtype="uint8")
    image, label = raw[0]
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 64, 64) and label == floats[0][1]
    assert torch.equal(image.float() * (1 / 255), floats[0][0])
    with pytest.raises(ValueError, match="dtype"):
        load_covid_xray("torch", root=root, split="val", dtype="float16")


def test_transform_and_target_transform(root: Path) -> None:
    plain = load_covid_xray("torch", root=root, split="test")
    flipped = load_covid_xray(
        "torch",
        root=root,
        split="test",
        transform=lambda image: torch.flip(image, dims=[2]),
        target_transform=lambda label: plain.classes[label],
    )
    image, name = flipped[0]
    expected, label = plain[0]
    assert torch.equal(image, torch.flip(expected, dims=[2]))
    assert name == plain.classes[label]


def test_dataloader_with_two_worker_processes_matches_sequential(root: Path) -> None:
    ds = load_covid_xray("torch", root=root, split=None, image_size=64)
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2, shuffle=False)
    images, labels = zip(*loader, strict=True)
    images, labels = torch.cat(images), torch.cat(labels)
    assert images.shape == (len(ds), 3, 64, 64)
    for index in range(0, len(ds), 7):
        image, label = ds[index]
        assert torch.equal(images[index], image) and int(labels[index]) == label
    assert labels.tolist() == ds.targets


def test_pixels_match_the_shared_reader(root: Path) -> None:
    """The dataset adds no preprocessing of its own beyond resize + scale: a regression guard."""
    from PIL import Image

    from covid19_images.imaging.decode import read_pixels

    ds = load_covid_xray(
        "torch", root=root, split="train", sources="zhanglab-pediatric-xray", image_size=None, channels=1
    )
    row = ds.manifest.iloc[0]
    image, _ = ds[0]
    pixels = read_pixels(root / row["path"])
    gray = pixels if pixels.ndim == 2 else np.asarray(Image.fromarray(pixels).convert("L"))
    assert image.shape[1:] == gray.shape
    assert np.array_equal((image[0].numpy() * 255).round().astype(np.uint8), gray)


def test_medical_warning_once_per_process(root: Path) -> None:
    result = run_python(
        f"""
        import warnings
        warnings.simplefilter("always")
        from covid19_images import load_covid_xray, load_manifest
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            load_manifest({str(root)!r})
            load_covid_xray("torch", root={str(root)!r}, split="val")
            load_covid_xray("torch", root={str(root)!r}, split="test")
        print(sum(w.category.__name__ == "MedicalWarning" for w in seen))
        print(seen[0].filename)
        """
    )
    assert result.returncode == 0, result.stderr
    count, filename = result.stdout.split()
    assert count == "1"
    assert filename == "<string>", "the warning points at the caller's line, not at covid19_images"
    assert MEDICAL_WARNING.startswith("covid19-images: research use only")


# --- CT and ultrasound: DICOM series and videos become 2-D items -------------------------------


@pytest.fixture(scope="module")
def ct_us_root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(
        tmp_path_factory.mktemp("loaders-ct-us"), mirrors, ("covid19-pos-case", "pocus-ultrasound")
    )


def test_ct_serves_axial_dicom_slices_by_default(ct_us_root: Path) -> None:
    import json

    axial = load_covid_ct("torch", root=ct_us_root, split=None, image_size=128)
    roles = {json.loads(e)["series_role"] for e in axial.manifest["extra"]}
    assert roles == {"axial"} and set(axial.manifest["format"]) == {"dicom"}
    everything = load_covid_ct("torch", root=ct_us_root, split=None, image_size=128, include_non_axial=True)
    all_roles = {json.loads(e)["series_role"] for e in everything.manifest["extra"]}
    assert {"localizer", "reformat"} <= all_roles and len(everything) > len(axial)
    image, label = axial[0]
    assert tuple(image.shape) == (3, 128, 128) and axial.classes[label] == "covid-19"
    assert float(image.std()) > 0.05, "a lung-windowed slice, not a flat picture"


def test_ultrasound_videos_are_sampled_into_frames(ct_us_root: Path) -> None:
    from covid19_images.imaging.formats import VIDEO_FORMATS
    from covid19_images.loaders import DEFAULT_VIDEO_STRIDE

    manifest = load_manifest(ct_us_root)
    videos = manifest[(manifest["source"] == "pocus-ultrasound") & manifest["format"].isin(VIDEO_FORMATS)]
    assert len(videos) >= 3
    middle = load_covid_ultrasound("torch", root=ct_us_root, split=None, video_frames="middle", image_size=64)
    served = middle.manifest.groupby("path")["frame"].apply(list)
    for _, row in videos.iterrows():
        if row["label"] in ("covid-19", "pneumonia", "normal", "other"):
            assert served[row["path"]] == [int(row["frames"]) // 2]
    strided = load_covid_ultrasound("torch", root=ct_us_root, split=None, image_size=64, sources="pocus-ultrasound")
    frames = strided.manifest.groupby("path")["frame"].apply(list)
    longest = videos.sort_values("frames").iloc[-1]
    assert frames[longest["path"]] == list(range(0, int(longest["frames"]), DEFAULT_VIDEO_STRIDE))
    first, second = (strided.manifest["path"] == longest["path"]).to_numpy().nonzero()[0][:2]
    assert not torch.equal(strided[first][0], strided[second][0]), "different frames, different pixels"
    stills = strided.manifest[~strided.manifest["format"].isin((*VIDEO_FORMATS, "gif"))]
    assert (stills["frame"] == 0).all() and stills["path"].is_unique
