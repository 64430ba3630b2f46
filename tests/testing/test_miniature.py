"""The miniatures shipped in the package: complete, small, licence-accounted, and usable as samples."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from covid19_images.testing.miniature import catalog_dir, is_miniature, materialize_miniatures, miniature_dir
from covid19_images.testing.mirrors import SAMPLE_FOLDERS

PROJECT = Path(__file__).resolve().parents[2]
PICTURES = (".jpg", ".jpeg", ".png", ".gif", ".mp4", ".avi", ".mov", ".mpeg", ".nii")
#: licences that allow redistributing a downscaled copy with attribution (no NC, no ND)
REDISTRIBUTABLE = re.compile(r"^(CC BY(-SA)?( [0-9.]+)?|CC0.*|Apache[- ]2\.0)\b", re.I)


def miniature_files() -> list[Path]:
    return sorted(p for p in catalog_dir().glob("*/miniature/**/*") if p.is_file())


def listed(markdown: Path) -> set[str]:
    return set(re.findall(r"`([^`]+)`", markdown.read_text()))


def test_every_registered_source_has_a_miniature_and_all_fit_in_5_mb(registry) -> None:
    for name, spec in registry.items():
        # a portal source's miniature is served by the loopback portal, not mirrored from samples
        assert spec.is_portal or name in SAMPLE_FOLDERS, f"{name}: no sample folder mapping"
        assert miniature_dir(name).is_dir(), f"{name}: no miniature at {miniature_dir(name)}"
    assert sum(p.stat().st_size for p in miniature_files()) <= 5 * 1024 * 1024


def test_every_picture_is_either_attributed_or_marked_synthetic() -> None:
    attribution = PROJECT / "ATTRIBUTION.md"
    rows = [line.split("|") for line in attribution.read_text().splitlines() if line.startswith("| ")][1:]
    real = {(cells[1].strip(), cells[2].strip().strip("`")): cells[3].strip() for cells in rows}
    for (_source, _path), licence in real.items():
        assert REDISTRIBUTABLE.match(licence), licence
    for path in miniature_files():
        if path.suffix.lower() not in PICTURES and "COVID-19-pos-case" not in path.parts:
            continue
        if path.read_bytes().startswith(b"version https://git-lfs"):
            continue  # a pointer text, not a picture
        package_dir = path.relative_to(catalog_dir()).parts[0]
        miniature = catalog_dir() / package_dir / "miniature"
        relative = path.relative_to(miniature).as_posix()
        synthetic = miniature / "SYNTHETIC.md"
        marked = synthetic.is_file() and relative in listed(synthetic)
        in_snapshot = relative.split("/", 1)[-1]
        attributed = (package_dir, relative) in real or (package_dir, in_snapshot) in real
        assert marked != attributed, f"{relative}: must be exactly one of attributed ({attributed}) / synthetic"


def test_real_ieee8023_pictures_carry_a_redistributable_licence_in_their_row() -> None:
    """Read the miniature's own metadata (csv module): every real picture's row licence allows it."""
    mini = miniature_dir("ieee8023-covid-chestxray")
    synthetic = listed(mini / "SYNTHETIC.md")
    for snapshot in ("548bb58", "584034a"):
        with open(mini / snapshot / "metadata.csv", newline="", encoding="utf-8") as handle:
            rows = [
                {(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(handle)
            ]
        licences = {f"{r.get('folder') or 'images'}/{r['filename']}": r["license"] for r in rows}
        for picture in sorted((mini / snapshot / "images").iterdir()):
            relative = f"images/{picture.name}"
            if f"{snapshot}/{relative}" in synthetic:
                continue
            assert REDISTRIBUTABLE.match(licences[relative]), (snapshot, relative, licences[relative])


def test_materialized_miniatures_look_like_the_shared_samples(tmp_path: Path) -> None:
    folder = materialize_miniatures(tmp_path / "upstream")
    assert is_miniature(folder) and (folder / "INDEX.md").is_file()
    for name, sample_folders in SAMPLE_FOLDERS.items():
        for sample in sample_folders:
            assert (folder / sample).is_dir(), (name, sample)
    assert not list(folder.rglob("SYNTHETIC.md")), "notes about the miniature are not upstream files"
    # ieee8023 keeps its history: the old schema in March, the new one in June
    march = (folder / "ieee8023-covid-chestxray-dataset__pinned-548bb58" / "metadata.csv").read_text().split(",")[0]
    june = (folder / "ieee8023-covid-chestxray-dataset" / "metadata.csv").read_text().split(",")[0]
    assert (march, june) == ("Patientid", "patientid")


def test_package_data_ships_the_miniatures() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    data = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["covid19_images"]
    package = PROJECT / "src" / "covid19_images"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    assert set(miniature_files()) <= shipped


def test_miniatures_cover_every_format_and_flavour_the_reader_handles() -> None:
    """Checked with PIL / pydicom / nibabel / PyAV directly, not with the project's reader."""
    import av
    import nibabel
    import pydicom
    from PIL import Image

    found: set[str] = set()
    for path in miniature_files():
        head = path.read_bytes()[:132]
        if head.startswith(b"version https://git-lfs"):
            found.add("lfs pointer")
        elif head[128:132] == b"DICM":
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            found.add(f"dicom {ds.PhotometricInterpretation}")
            if ds.file_meta.TransferSyntaxUID.is_compressed:
                found.add("dicom compressed")
        elif path.suffix == ".nii":
            found.add(f"nifti {len(nibabel.load(path).shape)}d")
        elif path.suffix.lower() in (".mp4", ".avi", ".mov", ".mpeg"):
            with av.open(str(path)) as container:
                found.add(f"video {path.suffix.lower()}" if container.streams.video[0].frames != 1 else "still")
        elif path.suffix.lower() in (".jpg", ".jpeg", ".png", ".gif"):
            with Image.open(path) as image:
                progressive = image.info.get("progressive") or image.info.get("progression")
                found.add(f"{image.format} {image.mode}" + (" progressive" if progressive else ""))
                if image.format == "GIF" and getattr(image, "n_frames", 1) > 1:
                    found.add("GIF animated")
    needed = {
        "JPEG L", "JPEG RGB", "JPEG L progressive", "PNG L", "PNG RGB", "PNG RGBA", "PNG I;16", "GIF animated",
        "dicom MONOCHROME1", "dicom MONOCHROME2", "dicom compressed", "nifti 3d", "lfs pointer",
        "video .mp4", "video .avi", "video .mov", "video .mpeg",
    }  # fmt: skip
    assert needed <= found, needed - found
