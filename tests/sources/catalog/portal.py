"""What the portal sources' tests share: their registry entries, their miniatures, the real metadata.

A portal source's spec comes from a throw-away root that lists just the source (as a user's root
would), not from the project's root. Tests on the real metadata read ``../shared/upstream-portal`` and skip,
with the reason, where it is absent.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from covid19_images.sources.registry import SourceSpec, load_registry
from covid19_images.testing.miniature import MINIATURE_NOTES, miniature_dir

PROJECT = Path(__file__).resolve().parents[3]
PORTAL = PROJECT.parent / "shared" / "upstream-portal"
needs_portal = pytest.mark.skipif(not (PORTAL / "INDEX.md").is_file(), reason=f"no real portal metadata at {PORTAL}")


def portal_spec(name: str) -> SourceSpec:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "sources.yaml").write_text(yaml.safe_dump({"sources": [name]}))
        return load_registry(Path(folder))[name]


def miniature_copy(name: str, target: Path) -> Path:
    """The source's miniature as a download folder would be (without its notes about itself)."""
    shutil.copytree(miniature_dir(name), target, ignore=shutil.ignore_patterns(*MINIATURE_NOTES))
    return target


def tiny_dicom(path: Path, **header) -> None:
    """A real 8x8 DICOM file with ``header`` (keywords), for tests that need many files fast."""
    import numpy as np
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    for keyword, value in header.items():
        setattr(ds, keyword, value)
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.arange(64, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
