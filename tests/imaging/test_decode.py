"""The one reader: every format and quirk, on inputs generated here and on real sample files.

Generated inputs are built at test time (PIL, numpy, PyAV, nibabel, and pydicom starting
from the real covid-19-pos-case DICOM with its pixels replaced), so nothing is copied into
the project. Expected pixels are computed here from the standards' formulas, not by the
code under test.
"""

from __future__ import annotations

import copy
import io
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covid19_images.imaging.decode import LUNG_WINDOW, DecodeError, decode_file, read_pixels, to_uint8
from covid19_images.imaging.formats import LFS_POINTER_PREFIX, read_head, sniff_format
from covid19_images.imaging.probe import ProbeError, fingerprints, probe_file

POS_CASE = "coyotespike-covid-19-pos-case/COVID-19-pos-case"
AXIAL = "IM000118"  # series 2, 512x512, window 50/350, intercept -1024, padding -2000
LOCALIZER = "IM000116"  # series 1, 1302x835


# --- helpers ----------------------------------------------------------------------------


def gradient(height: int = 64, width: int = 96) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return ((x * 255 // (width - 1) + y) % 256).astype(np.uint8)


def dicom(shared: Path, name: str = AXIAL):
    import pydicom

    return pydicom.dcmread(shared / POS_CASE / name)


def with_pixels(ds, pixels: np.ndarray):
    """A copy of ``ds`` whose pixel data is ``pixels`` (same dtype semantics as the original)."""
    out = copy.deepcopy(ds)
    out.Rows, out.Columns = pixels.shape[:2]
    out.PixelData = np.ascontiguousarray(pixels).tobytes()
    return out


def dicom_linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 LINEAR, written out independently, onto 0..255."""
    low = center - 0.5 - (width - 1) / 2
    high = center - 0.5 + (width - 1) / 2
    out = (values - (center - 0.5)) / (width - 1) + 0.5
    out = np.where(values <= low, 0.0, np.where(values > high, 1.0, out))
    return out * 255


def encode_jpeg_lossless(image: np.ndarray, precision: int = 16) -> bytes:
    """A minimal JPEG lossless (process 14, selection value 1) encoder, since pydicom has none.

    Predictor 1 (left neighbour; above for the first column; 2^(P-1) for the first
    sample), one Huffman table covering difference categories 0..16.
    """
    lengths = [3] * 6 + [4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9]
    codes, code = {}, 0
    for size in range(1, 17):
        for symbol, symbol_size in enumerate(lengths):
            if symbol_size == size:
                codes[symbol] = (code, size)
                code += 1
        code <<= 1
    x = image.astype(np.int64) & ((1 << precision) - 1)
    pred = np.empty_like(x)
    pred[:, 1:] = x[:, :-1]
    pred[1:, 0] = x[:-1, 0]
    pred[0, 0] = 1 << (precision - 1)
    diff = (x - pred) % 65536
    diff = np.where(diff > 32768, diff - 65536, diff).ravel()
    bits: list[str] = []
    for d in diff.tolist():
        ssss = 16 if d == 32768 else abs(d).bit_length()
        value, size = codes[ssss]
        bits.append(format(value, f"0{size}b"))
        if 0 < ssss < 16:
            bits.append(format(d if d > 0 else d + (1 << ssss) - 1, f"0{ssss}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    data = int(stream, 2).to_bytes(len(stream) // 8, "big").replace(b"\xff", b"\xff\x00")

    def segment(marker: bytes, body: bytes) -> bytes:
        return marker + (len(body) + 2).to_bytes(2, "big") + body

    rows, cols = image.shape
    sof = bytes([precision]) + rows.to_bytes(2, "big") + cols.to_bytes(2, "big") + bytes([1, 1, 0x11, 0])
    dht = bytes([0x00, *[lengths.count(n) for n in range(1, 17)], *sorted(range(17), key=lambda s: (lengths[s], s))])
    sos = bytes([1, 1, 0x00, 1, 0, 0])
    return (
        b"\xff\xd8"
        + segment(b"\xff\xc3", sof)
        + segment(b"\xff\xc4", dht)
        + segment(b"\xff\xda", sos)
        + data
        + b"\xff\xd9"
    )


def encapsulated(ds, frames: list[bytes], syntax):
    from pydicom.encaps import encapsulate

    out = copy.deepcopy(ds)
    out.PixelData = encapsulate(frames)
    out["PixelData"].VR = "OB"
    out["PixelData"].is_undefined_length = True
    out.file_meta.TransferSyntaxUID = syntax
    return out


def write_video(path: Path, codec: str, frames: int = 5, size: tuple[int, int] = (64, 48)) -> list[int]:
    """Frames of uniform gray 40, 80, 120 ...; returns the levels."""
    import av

    levels = [40 * (k + 1) % 256 for k in range(frames)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(10, 1))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for level in levels:
            picture = np.full((size[1], size[0], 3), level, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return levels


# --- formats ----------------------------------------------------------------------------


def test_sniff_names_containers_from_bytes() -> None:
    assert sniff_format(b"\xff\xd8\xff\xe0" + b"\0" * 20) == "jpeg"
    assert sniff_format(b"\x89PNG\r\n\x1a\n" + b"\0" * 20) == "png"
    assert sniff_format(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert sniff_format(b"RIFF\0\0\0\0AVI LIST") == "avi"
    assert sniff_format(b"\0" * 128 + b"DICM" + b"\0" * 10) == "dicom"
    assert sniff_format(LFS_POINTER_PREFIX + b"v1\noid sha256:00\nsize 1\n") == "lfs-pointer"
    assert sniff_format(b"\0\0\0\x18ftypqt  \0\0\0\0") == "mov"
    assert sniff_format(b"\0\0\0\x18ftypisom\0\0\0\0") == "mp4"
    assert sniff_format(b"\0\0\x01\xba" + b"\0" * 20) == "mpeg"
    assert sniff_format(b"PK\x03\x04" + b"\0" * 20) == "zip"
    assert sniff_format(b"<!DOCTYPE html><html>") == "html"
    assert sniff_format(b"# covid-19-pos-case\n\nThe origin") == "unknown"
    assert sniff_format(b"") == "unknown"


def test_sniff_gzipped_nifti_and_nifti2(tmp_path: Path) -> None:
    import nibabel

    data = np.zeros((4, 5, 3), dtype=np.int16)
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), tmp_path / "a.nii.gz")
    nibabel.save(nibabel.Nifti2Image(data, np.eye(4)), tmp_path / "b.nii")
    assert sniff_format(read_head(tmp_path / "a.nii.gz")) == "nifti"
    assert sniff_format(read_head(tmp_path / "b.nii")) == "nifti"
    assert read_pixels(tmp_path / "b.nii", frame=2).shape == (5, 4)


# --- PIL images -------------------------------------------------------------------------


def test_jpeg_gray_rgb_progressive_and_cmyk(tmp_path: Path) -> None:
    gray = gradient()
    Image.fromarray(gray).save(tmp_path / "g.jpg", quality=98)
    Image.fromarray(gray).save(tmp_path / "p.jpg", quality=98, progressive=True)
    rgb = np.stack([gray, 255 - gray, np.full_like(gray, 90)], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=98)
    Image.new("CMYK", (32, 16), (0, 255, 255, 0)).save(tmp_path / "k.jpg", quality=98)  # pure red in CMYK

    for name in ("g.jpg", "p.jpg"):
        out = read_pixels(tmp_path / name)
        assert out.shape == gray.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - gray).mean() < 2
    colour = read_pixels(tmp_path / "c.jpg")
    assert colour.shape == (*gray.shape, 3)
    assert np.abs(colour.astype(int) - rgb).mean() < 3
    red = read_pixels(tmp_path / "k.jpg")
    assert red.shape == (16, 32, 3)
    assert red[..., 0].mean() > 200 and red[..., 1].mean() < 50 and red[..., 2].mean() < 50


def test_jpeg_draft_decodes_smaller_but_reports_full_size(tmp_path: Path) -> None:
    Image.fromarray(np.tile(gradient(256, 256), (4, 4))).save(tmp_path / "big.jpg")
    full = decode_file(tmp_path / "big.jpg")
    small = decode_file(tmp_path / "big.jpg", draft_size=(256, 256))
    assert full.pixels.shape == (1024, 1024)
    assert 256 <= small.pixels.shape[0] < 1024 and 256 <= small.pixels.shape[1] < 1024
    assert (small.width, small.height) == (1024, 1024)


def test_png_16bit_stretched_over_its_range(tmp_path: Path) -> None:
    values = np.linspace(1000, 5000, 64 * 32).reshape(64, 32).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "x16.png")
    with Image.open(tmp_path / "x16.png") as image:
        assert image.mode.startswith("I")  # really a 16-bit PNG
    out = read_pixels(tmp_path / "x16.png")
    expected = np.floor((values.astype(np.float64) - 1000) * 255 / 4000)
    assert out.min() == 0 and out.max() == 255
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_transparency_composited_on_black(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = [[0, 64, 128, 255]] * 4
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    la = np.stack([np.full((4, 4), 200, np.uint8), rgba[..., 3]], axis=-1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    out = read_pixels(tmp_path / "a.png").astype(int)
    expected = (rgba[..., :3].astype(int) * rgba[..., 3:4] / 255).astype(int)
    assert np.abs(out - expected).max() <= 1
    gray = read_pixels(tmp_path / "la.png").astype(int)
    assert np.abs(gray - 200 * rgba[..., 3].astype(int) / 255).max() <= 1


def test_webp_named_png_is_read_by_its_bytes(tmp_path: Path) -> None:
    Image.fromarray(gradient()).save(tmp_path / "fake.png", "WEBP", lossless=True)
    assert sniff_format(read_head(tmp_path / "fake.png")) == "webp"
    out = read_pixels(tmp_path / "fake.png")  # WebP has no gray mode: three equal channels
    assert out.shape == (*gradient().shape, 3)
    assert all(np.array_equal(out[..., c], gradient()) for c in range(3))
    assert probe_file(tmp_path / "fake.png").format == "webp"


def test_gif_and_tiff_frames(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((8, 12), level, np.uint8)) for level in (30, 120, 240)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(tmp_path / "a.tif", save_all=True, append_images=frames[1:])
    for name in ("a.gif", "a.tif"):
        means = [float(np.mean(read_pixels(tmp_path / name, frame=k))) for k in range(3)]
        assert means == pytest.approx([30, 120, 240], abs=2)
        with pytest.raises(DecodeError, match="frame 3"):
            read_pixels(tmp_path / name, frame=3)
        assert probe_file(tmp_path / name).frames == 3


def test_bmp_and_16bit_tiff(tmp_path: Path) -> None:
    Image.fromarray(gradient()).save(tmp_path / "a.bmp")
    assert np.array_equal(read_pixels(tmp_path / "a.bmp"), gradient())
    values = (gradient().astype(np.uint16) * 16 + 100).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "a.tif")
    out = read_pixels(tmp_path / "a.tif")
    assert out.min() == 0 and out.max() == 255
    assert np.array_equal(np.argsort(out.ravel(), kind="stable"), np.argsort(values.ravel(), kind="stable"))


def test_exif_orientation_applied(tmp_path: Path) -> None:
    image = Image.fromarray(gradient(20, 40))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    image.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=98)
    out = read_pixels(tmp_path / "r.jpg")
    assert out.shape == (40, 20)
    facts = probe_file(tmp_path / "r.jpg")
    assert (facts.width, facts.height) == (20, 40)


def test_broken_inputs_fail_clearly(tmp_path: Path) -> None:
    Image.fromarray(gradient()).save(tmp_path / "ok.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "ok.jpg").read_bytes()[:300])
    (tmp_path / "ptr.nii").write_bytes(LFS_POINTER_PREFIX + b"v1\noid sha256:ab\nsize 209715552\n")
    (tmp_path / "page.png").write_bytes(b"<!DOCTYPE html><html><body>404</body></html>")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "a.zip").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(DecodeError):
        read_pixels(tmp_path / "cut.jpg")
    with pytest.raises(DecodeError, match="git lfs pull"):
        read_pixels(tmp_path / "ptr.nii")
    with pytest.raises(ProbeError, match="git lfs install && git lfs pull"):
        probe_file(tmp_path / "ptr.nii")
    with pytest.raises(ProbeError, match="HTML"):
        probe_file(tmp_path / "page.png")
    with pytest.raises(ProbeError, match="empty"):
        probe_file(tmp_path / "empty.png")
    with pytest.raises(ProbeError, match="zip"):
        probe_file(tmp_path / "a.zip")
    with pytest.raises(DecodeError, match="not found"):
        read_pixels(tmp_path / "missing.png")


def test_to_uint8_maps_range_and_handles_flat_and_nan() -> None:
    assert to_uint8(np.array([0.0, 5.0, 10.0])).tolist() == [0, 127, 255]
    assert to_uint8(np.array([-2000.0, 0.0, 2000.0]), -1000, 1000).tolist() == [0, 127, 255]
    assert to_uint8(np.full((2, 2), 7.0)).tolist() == [[0, 0], [0, 0]]
    assert to_uint8(np.array([np.nan, 1.0, 3.0])).tolist() == [0, 0, 255]


# --- DICOM ------------------------------------------------------------------------------


@pytest.mark.upstream
def test_dicom_modality_lut_and_file_window(shared: Path, tmp_path: Path) -> None:
    ds = dicom(shared)
    stored = np.arange(512 * 512, dtype=np.int64).reshape(512, 512) % 1400 + 400  # 400..1799 stored
    path = tmp_path / "w.dcm"
    with_pixels(ds, stored.astype(np.int16)).save_as(path)
    hu = stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = dicom_linear_window(hu, float(ds.WindowCenter), float(ds.WindowWidth))
    out = read_pixels(path)
    assert np.abs(out.astype(float) - expected).max() <= 1.0


@pytest.mark.upstream
def test_dicom_ct_without_window_gets_lung_window(shared: Path, tmp_path: Path) -> None:
    ds = dicom(shared)
    for keyword in ("WindowCenter", "WindowWidth"):
        delattr(ds, keyword)
    hu = np.array([[-2000, -1350, -600, 150, 1000]], dtype=np.int64)
    stored = (hu - int(ds.RescaleIntercept)).astype(np.int16)
    path = tmp_path / "nowin.dcm"
    with_pixels(ds, stored).save_as(path)
    assert LUNG_WINDOW == (-1350.0, 150.0)
    assert read_pixels(path).tolist() == [[0, 0, 127, 255, 255]]
    assert read_pixels(path, window=(-1000, 1000)).tolist() == [[0, 0, 51, 146, 255]]


@pytest.mark.upstream
def test_dicom_monochrome1_and_padding(shared: Path, tmp_path: Path) -> None:
    ds = dicom(shared)
    real = ds.pixel_array
    assert (real == int(ds.PixelPaddingValue)).any(), "the real slice has padding outside the FOV"
    normal = read_pixels(shared / POS_CASE / AXIAL)
    padded = real == int(ds.PixelPaddingValue)
    assert (normal[padded] == 0).all()
    inverted = copy.deepcopy(ds)
    inverted.PhotometricInterpretation = "MONOCHROME1"
    inverted.save_as(tmp_path / "m1.dcm")
    out = read_pixels(tmp_path / "m1.dcm")
    assert np.array_equal(out[~padded], 255 - normal[~padded])
    assert (out[padded] == 0).all()


@pytest.mark.upstream
def test_dicom_without_pixel_data_is_a_clear_error(shared: Path, tmp_path: Path) -> None:
    ds = dicom(shared)
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm")
    with pytest.raises(DecodeError, match="no pixel data"):
        read_pixels(tmp_path / "nopix.dcm")
    with pytest.raises(ProbeError, match="no pixel data"):
        probe_file(tmp_path / "nopix.dcm")


@pytest.mark.upstream
def test_dicom_without_preamble(shared: Path, tmp_path: Path) -> None:
    import pydicom

    ds = dicom(shared)
    ds.preamble = None
    pydicom.dcmwrite(tmp_path / "bare", ds, enforce_file_format=False)
    head = read_head(tmp_path / "bare")
    assert head[128:132] != b"DICM"
    assert sniff_format(head) == "dicom"
    assert np.array_equal(read_pixels(tmp_path / "bare"), read_pixels(shared / POS_CASE / AXIAL))


@pytest.mark.upstream
@pytest.mark.parametrize("syntax_name", ["RLELossless", "JPEG2000Lossless", "JPEGLosslessSV1"])
def test_dicom_lossless_compressed_equals_uncompressed(shared: Path, tmp_path: Path, syntax_name: str) -> None:
    import pydicom.uid

    ds = dicom(shared)
    syntax = getattr(pydicom.uid, syntax_name)
    if syntax_name == "JPEGLosslessSV1":
        compressed = encapsulated(ds, [encode_jpeg_lossless(ds.pixel_array)], syntax)
    else:
        compressed = copy.deepcopy(ds)
        compressed.compress(syntax)
    compressed.save_as(tmp_path / "c.dcm")
    assert str(pydicom.dcmread(tmp_path / "c.dcm").file_meta.TransferSyntaxUID) == str(syntax)
    assert np.array_equal(read_pixels(tmp_path / "c.dcm"), read_pixels(shared / POS_CASE / AXIAL))


@pytest.mark.upstream
def test_dicom_lossy_jpeg2000_and_jpeg_baseline(shared: Path, tmp_path: Path) -> None:
    from pydicom.uid import JPEG2000, JPEGBaseline8Bit

    ds = dicom(shared)
    lossy = copy.deepcopy(ds)
    lossy.compress(JPEG2000, j2k_cr=[10])
    lossy.save_as(tmp_path / "j2k.dcm")
    reference = read_pixels(shared / POS_CASE / AXIAL).astype(int)
    assert np.abs(read_pixels(tmp_path / "j2k.dcm").astype(int) - reference).mean() < 2

    # 8-bit JPEG baseline: what a secondary-capture export of the same slice looks like
    gray = reference.astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, "JPEG", quality=95)
    eight = encapsulated(ds, [buffer.getvalue()], JPEGBaseline8Bit)
    eight.BitsAllocated, eight.BitsStored, eight.HighBit, eight.PixelRepresentation = 8, 8, 7, 0
    for keyword in ("RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth", "PixelPaddingValue"):
        delattr(eight, keyword)
    eight.Modality = "OT"
    eight.save_as(tmp_path / "jpg.dcm")
    out = read_pixels(tmp_path / "jpg.dcm").astype(int)
    assert out.shape == gray.shape
    assert np.abs(out - gray).mean() < 2


@pytest.mark.upstream
def test_dicom_colour_ybr_jpeg_is_rgb(shared: Path, tmp_path: Path) -> None:
    from pydicom.uid import JPEGBaseline8Bit

    ds = dicom(shared)
    rgb = np.stack([gradient(64, 64), np.full((64, 64), 200, np.uint8), 255 - gradient(64, 64)], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=95, subsampling=0)
    colour = encapsulated(ds, [buffer.getvalue()], JPEGBaseline8Bit)
    colour.Rows, colour.Columns = 64, 64
    colour.SamplesPerPixel, colour.PlanarConfiguration = 3, 0
    colour.PhotometricInterpretation = "YBR_FULL_422"
    colour.BitsAllocated, colour.BitsStored, colour.HighBit, colour.PixelRepresentation = 8, 8, 7, 0
    colour.save_as(tmp_path / "rgb.dcm")
    out = read_pixels(tmp_path / "rgb.dcm")
    assert out.shape == (64, 64, 3)
    assert np.abs(out.astype(int) - rgb).mean() < 4


@pytest.mark.upstream
def test_dicom_multiframe(shared: Path, tmp_path: Path) -> None:
    ds = dicom(shared)
    base = ds.pixel_array
    stack = np.stack([base, base // 2, np.zeros_like(base)]).astype(np.int16)
    multi = with_pixels(ds, stack[0])
    multi.NumberOfFrames = 3
    multi.PixelData = stack.tobytes()
    multi.save_as(tmp_path / "mf.dcm")
    assert np.array_equal(read_pixels(tmp_path / "mf.dcm", frame=0), read_pixels(shared / POS_CASE / AXIAL))
    with pytest.raises(DecodeError, match="frame 3"):
        read_pixels(tmp_path / "mf.dcm", frame=3)
    facts = probe_file(tmp_path / "mf.dcm")
    assert facts.frames == 3
    assert facts.pixel_sha256 == fingerprints(read_pixels(tmp_path / "mf.dcm", frame=1))[0]


@pytest.mark.upstream
def test_real_pos_case_probe(shared: Path) -> None:
    import pydicom

    for name in (AXIAL, LOCALIZER):
        ds = pydicom.dcmread(shared / POS_CASE / name, stop_before_pixels=True)
        facts = probe_file(shared / POS_CASE / name)
        assert (facts.format, facts.width, facts.height, facts.frames) == ("dicom", ds.Columns, ds.Rows, 1)
        assert read_pixels(shared / POS_CASE / name).shape == (ds.Rows, ds.Columns)


# --- NIfTI ------------------------------------------------------------------------------


def test_nifti_orientation_follows_the_affine(tmp_path: Path) -> None:
    import nibabel

    data = np.zeros((6, 4, 3), dtype=np.float32)  # i (6) x j (4) x slices (3)
    data[0, 0, 1] = 1.0  # one marked voxel at i=0, j=0 on slice 1
    # Without sform/qform nibabel uses its base affine (i -> patient left, j -> anterior),
    # which must display like np.rot90, the convention MedSeg users rely on.
    nibabel.save(nibabel.Nifti1Image(data, None), tmp_path / "plain.nii")
    plain = read_pixels(tmp_path / "plain.nii", frame=1)
    assert plain.shape == (4, 6)
    assert np.array_equal(plain, to_uint8(np.rot90(data[:, :, 1])))
    # RAS identity: i -> patient right, j -> anterior; displayed with patient right on the
    # image left and anterior at the top, voxel (0, 0) lands at the bottom right.
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), tmp_path / "ras.nii")
    ras = read_pixels(tmp_path / "ras.nii", frame=1)
    assert ras.shape == (4, 6)
    assert ras[3, 5] == 255 and ras.sum() == 255
    with pytest.raises(DecodeError, match="frame 3"):
        read_pixels(tmp_path / "ras.nii", frame=3)
    facts = probe_file(tmp_path / "ras.nii")
    assert (facts.width, facts.height, facts.frames) == (6, 4, 3)


def test_nifti_hu_gets_lung_window_and_masks_their_range(tmp_path: Path) -> None:
    import nibabel

    hu = np.array([[-1350, -600], [150, -2000]], dtype=np.int16)[:, :, None]
    nibabel.save(nibabel.Nifti1Image(hu, None), tmp_path / "hu.nii.gz")
    out = read_pixels(tmp_path / "hu.nii.gz")
    assert sorted(out.ravel().tolist()) == [0, 0, 127, 255]
    mask = np.array([[0, 1], [2, 3]], dtype=np.uint8)[:, :, None]
    nibabel.save(nibabel.Nifti1Image(mask, None), tmp_path / "mask.nii")
    assert sorted(read_pixels(tmp_path / "mask.nii").ravel().tolist()) == [0, 85, 170, 255]


# --- video ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "codec", "fmt"),
    [
        ("v.mp4", "libx264", "mp4"),
        ("v.avi", "mpeg4", "avi"),
        ("v.mpeg", "mpeg2video", "mpeg"),
        ("v.mov", "libx264", "mov"),
    ],
)
def test_video_frames_and_count(tmp_path: Path, name: str, codec: str, fmt: str) -> None:
    levels = write_video(tmp_path / name, codec)
    assert sniff_format(read_head(tmp_path / name)) == fmt
    for k in (0, 2, 4):
        frame = read_pixels(tmp_path / name, frame=k)
        assert frame.shape == (48, 64, 3)
        assert abs(float(frame.mean()) - levels[k]) < 6
    with pytest.raises(DecodeError, match="frame 5"):
        read_pixels(tmp_path / name, frame=5)
    facts = probe_file(tmp_path / name)
    assert (facts.format, facts.width, facts.height, facts.frames) == (fmt, 64, 48, 5)


@pytest.mark.upstream
def test_real_ultrasound_videos_frame_counts(shared: Path) -> None:
    import av

    videos = sorted((shared / "jannisborn-covid19_ultrasound/data/pocus_videos").rglob("*"))
    videos = [v for v in videos if v.is_file() and v.suffix.lower() != ".gif"]
    assert len(videos) >= 5
    for video in videos:
        with av.open(str(video)) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        facts = probe_file(video)
        assert facts.frames == len(decoded), video.name
        assert (facts.height, facts.width) == decoded[0].shape[:2]
        assert np.array_equal(read_pixels(video), decoded[0])


# --- real sample images -----------------------------------------------------------------


@pytest.mark.upstream
def test_real_progressive_jpegs_decode_and_draft(shared: Path) -> None:
    progressive = []
    for path in sorted((shared / "zhanglab-kermany-chest-xray").rglob("*.jpeg")):
        with Image.open(path) as image:
            if image.info.get("progressive") or image.info.get("progression"):
                progressive.append((path, image.size, image.mode))
    assert progressive, "the Kermany sample has progressive JPEGs"
    for path, (width, height), mode in progressive:
        full = read_pixels(path)
        assert full.shape[:2] == (height, width)
        assert full.ndim == (2 if mode == "L" else 3)
        side = min(224, width // 2, height // 2)  # 224 on the real files; the miniature's are <= 256 px
        small = decode_file(path, draft_size=(side, side))
        assert small.pixels.shape[0] >= side and small.pixels.shape[1] >= side
        assert small.pixels.shape[0] <= height and (small.width, small.height) == (width, height)


@pytest.mark.upstream
def test_real_rgba_pngs_composited_on_black(shared: Path) -> None:
    checked = 0
    for path in sorted((shared / "ieee8023-covid-chestxray-dataset/images").glob("*.png")):
        with Image.open(path) as image:
            if image.mode != "RGBA":
                continue
            rgba = np.asarray(image).astype(np.float64)
        expected = np.floor(rgba[..., :3] * rgba[..., 3:4] / 255 + 0.5)
        out = read_pixels(path).astype(np.float64)
        assert out.shape == (*rgba.shape[:2], 3)
        assert np.abs(out - expected).max() <= 1, path.name
        checked += 1
    assert checked, "the ieee8023 sample has RGBA PNGs"


@pytest.mark.upstream
def test_dicom_voi_lut_sequence_wins_over_window(shared: Path, tmp_path: Path) -> None:
    from pydicom.dataset import Dataset

    ds = dicom(shared)
    stored = (np.arange(64 * 64) % 256).reshape(64, 64).astype(np.int16)
    lut_ds = with_pixels(ds, stored)
    lut_ds.RescaleIntercept, lut_ds.RescaleSlope = 0, 1
    del lut_ds.PixelPaddingValue
    item = Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.LUTData = np.arange(255, -1, -1, dtype="<u2").tobytes()  # an inverting LUT, stored as OW
    item["LUTData"].VR = "OW"
    lut_ds.VOILUTSequence = [item]
    lut_ds.save_as(tmp_path / "lut.dcm")
    assert np.array_equal(read_pixels(tmp_path / "lut.dcm"), (255 - stored).astype(np.uint8))


def test_jpeg2000_image_file(tmp_path: Path) -> None:
    Image.fromarray(gradient()).save(tmp_path / "a.jp2", irreversible=False)
    assert sniff_format(read_head(tmp_path / "a.jp2")) == "jpeg2000"
    assert np.array_equal(read_pixels(tmp_path / "a.jp2"), gradient())
