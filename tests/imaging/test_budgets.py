"""Frame and pixel budgets checked from the header before allocation (issue 14), and video seeking.

Each hostile file is small on disk and claims something huge; each must become one
``DecodeError``/``ProbeError`` naming what it claims, fast, never a MemoryError or millions of items.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covid19_images.imaging.budget import FRAME_PIXELS_ENV, FRAMES_ENV, MAX_FRAME_PIXELS
from covid19_images.imaging.decode import DecodeError, decode_file
from covid19_images.imaging.probe import ProbeError, probe_file


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def apng_claiming(tmp_path: Path, frames: int) -> Path:
    """A real 64x64 PNG with an ``acTL`` chunk that claims ``frames`` animation frames (8 KB or less)."""
    plain = tmp_path / "plain.png"
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(plain)
    data = plain.read_bytes()
    path = tmp_path / "apng.png"
    path.write_bytes(data[:33] + _chunk(b"acTL", struct.pack(">II", frames, 0)) + data[33:])
    return path


def png16_of_side(tmp_path: Path, side: int) -> Path:
    """A valid 16-bit grayscale PNG of side x side zero pixels, compressed row by row (a few hundred KB)."""
    path = tmp_path / "big16.png"
    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + 2 * side)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    return path


def nifti_of_shape(tmp_path: Path, shape: tuple[int, ...]) -> Path:
    import nibabel

    path = tmp_path / "volume.nii.gz"
    nibabel.save(nibabel.Nifti2Image(np.zeros(shape, np.uint8), np.eye(4)), path)  # NIfTI-2: 64-bit dims
    return path


def nifti_header_only(tmp_path: Path, shape: tuple[int, ...]) -> Path:
    """A ``.nii.gz`` whose header claims ``shape`` but which holds almost no data (a lie)."""
    import nibabel

    header = nibabel.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int16)
    path = tmp_path / "lie.nii.gz"
    path.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4 + b"\0" * 1024))
    return path


def gif_with_frames(tmp_path: Path, count: int) -> Path:
    frames = [Image.fromarray(np.array([[i % 256, 0], [0, 255]], np.uint8)) for i in range(count)]
    path = tmp_path / "animated.png"  # a GIF named .png, as in the issue
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=10)
    return path


def test_an_apng_claiming_two_to_the_31_frames_is_refused(tmp_path: Path) -> None:
    path = apng_claiming(tmp_path, 2**31)
    assert path.stat().st_size < 8192
    with pytest.raises(ProbeError, match=r"2,147,483,64\d frames, over the budget"):
        probe_file(path)


def test_a_16_bit_png_of_13000_squared_is_refused_before_decoding(tmp_path: Path) -> None:
    path = png16_of_side(tmp_path, 13000)
    assert path.stat().st_size < 2_000_000
    with pytest.raises(ProbeError, match=r"13000 x 13000 = 169,000,000 pixels per frame, over the budget"):
        probe_file(path)


def test_a_nifti_of_30000_squared_is_refused_before_reading(tmp_path: Path) -> None:
    path = nifti_header_only(tmp_path, (30000, 30000, 1))
    with pytest.raises(ProbeError, match=r"NIfTI volume claims 30000 x 30000"):
        probe_file(path)


def test_a_nifti_of_ten_million_one_pixel_slices_is_refused(tmp_path: Path) -> None:
    path = nifti_of_shape(tmp_path, (1, 1, 10**7))
    assert path.stat().st_size < 50_000
    with pytest.raises(ProbeError, match=r"10,000,000 frames, over the budget"):
        probe_file(path)


def test_a_gif_with_more_frames_than_the_budget_is_refused_and_the_budget_comes_from_the_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = gif_with_frames(tmp_path, 60)
    assert probe_file(path).frames == 60
    monkeypatch.setenv(FRAMES_ENV, "50")
    with pytest.raises(ProbeError, match=rf"GIF image claims 51 frames, over the budget of 50 \(set \${FRAMES_ENV}"):
        probe_file(path)


def test_the_pixel_budget_can_be_raised_from_the_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    side = int(MAX_FRAME_PIXELS**0.5) + 1
    path = png16_of_side(tmp_path, side)
    with pytest.raises(DecodeError, match="over the budget"):
        decode_file(path)
    monkeypatch.setenv(FRAME_PIXELS_ENV, str(side * side))
    assert decode_file(path).width == side


def test_a_dicom_claiming_a_huge_frame_count_is_refused(tmp_path: Path, shared: Path) -> None:
    import pydicom

    source = next(
        p for p in sorted((shared / "coyotespike-covid-19-pos-case").rglob("*")) if p.is_file() and "." not in p.name
    )
    ds = pydicom.dcmread(source)
    ds.NumberOfFrames = 10**6
    ds.save_as(tmp_path / "lie.dcm")
    with pytest.raises(ProbeError, match=r"1,000,000 frames, over the budget"):
        probe_file(tmp_path / "lie.dcm")


def _all_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [picture.to_ndarray(format="rgb24") for picture in container.decode(video=0)]


def test_seeking_serves_the_same_frames_as_decoding_from_the_start(shared: Path) -> None:
    """Every 10th frame (what the loaders sample) and the last, of every real ultrasound clip."""
    folder = shared / "jannisborn-covid19_ultrasound/data/pocus_videos"
    videos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mp4", ".mov", ".avi", ".mpeg"))
    assert len(videos) >= 4
    for video in videos:
        count = probe_file(video).frames
        frames = _all_frames(video)
        assert count == len(frames), video.name
        for index in sorted({*range(0, count, 10), count - 1}):
            assert np.array_equal(decode_file(video, frame=index).pixels, frames[index]), (video.name, index)
        with pytest.raises(DecodeError, match="does not exist"):
            decode_file(video, frame=count)
