"""MetaImage (.mha): sniffed from its bytes, one slice decoded through SimpleITK, budgets before allocation,
detached headers refused (the voxels would come from a file the metadata names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from covid19_images.imaging.budget import FRAMES_ENV, OverBudget
from covid19_images.imaging.decode import DecodeError, decode_file
from covid19_images.imaging.formats import read_head, sniff_format
from covid19_images.imaging.metaimage import MetaImageError, read_volume
from covid19_images.imaging.probe import probe_file


def write_mha(path: Path, volume: np.ndarray, spacing=(0.7, 0.8, 2.5), compress: bool = True) -> Path:
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path), useCompression=compress)
    return path


def ramp(z: int = 5, y: int = 12, x: int = 10) -> np.ndarray:
    """HU-like int16 voxels whose value says where they are (z*1000 + y*10 + x - 1024)."""
    zz, yy, xx = np.meshgrid(np.arange(z), np.arange(y), np.arange(x), indexing="ij")
    return (zz * 100 + yy * 10 + xx - 1024).astype(np.int16)


def test_an_mha_is_sniffed_and_its_middle_slice_decoded(tmp_path: Path) -> None:
    path = write_mha(tmp_path / "6.mha", ramp())
    assert sniff_format(read_head(path)) == "metaimage"
    decoded = decode_file(path, frame=None)
    assert (decoded.frames, decoded.frame, decoded.width, decoded.height) == (5, 2, 10, 12)
    # HU below -500: the lung window, -1350..150 -> 0..255
    expected = np.clip((ramp()[2].astype(np.float32) + 1350) * 255 / 1500, 0, 255).astype(np.uint8)
    assert np.array_equal(decoded.pixels, expected)
    facts = probe_file(path)
    assert (facts.format, facts.frames) == ("metaimage", 5)


def test_every_slice_and_the_volume_come_out_in_z_y_x_with_their_spacing(tmp_path: Path) -> None:
    path = write_mha(tmp_path / "7.mha", ramp(), spacing=(0.7, 0.8, 2.5), compress=False)
    volume, spacing = read_volume(path)
    assert np.array_equal(volume, ramp().astype(np.float32))
    assert spacing == pytest.approx((2.5, 0.8, 0.7))
    with pytest.raises(DecodeError, match="frame 5 does not exist"):
        decode_file(path, frame=5)


def test_frames_over_budget_are_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_mha(tmp_path / "8.mha", ramp())
    monkeypatch.setenv(FRAMES_ENV, "4")
    with pytest.raises(DecodeError, match="claims 5 frames"):
        decode_file(path)
    with pytest.raises(OverBudget):
        read_volume(path)


def test_a_header_that_lies_about_its_size_is_refused_before_allocating(tmp_path: Path) -> None:
    path = write_mha(tmp_path / "9.mha", ramp(), compress=False)
    data = path.read_bytes().replace(b"DimSize = 10 12 5", b"DimSize = 100000 100000 5")
    path.write_bytes(data)
    with pytest.raises(DecodeError, match="over the budget"):
        decode_file(path)


def test_a_detached_header_naming_another_file_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.raw"
    outside.write_bytes(ramp().tobytes())
    folder = tmp_path / "source"
    folder.mkdir()
    header = folder / "10.mha"
    header.write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 10 12 5\nElementType = MET_SHORT\nElementDataFile = ../outside.raw\n"
    )
    assert sniff_format(read_head(header)) == "metaimage"
    with pytest.raises(DecodeError, match=r"only a single-file \.mha"):
        decode_file(header)
    with pytest.raises(MetaImageError, match="ElementDataFile"):
        read_volume(header)


def test_a_cut_file_is_a_decode_error_not_a_crash(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(-1024, 500, (40, 64, 64)).astype(np.int16)
    path = write_mha(tmp_path / "11.mha", noise)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DecodeError, match="cannot read MetaImage"):
        decode_file(path, frame=39)
    with pytest.raises(RuntimeError, match="cannot be read"):
        read_volume(path)
