"""Generated upstreams for the hardening tests: messy files, hostile metadata, real git repos.

Everything is derived from the real samples in ``../shared/upstream`` where possible (a real
ieee8023 JPEG truncated, re-saved as WebP or CMYK, a real CT slice with identifying tags
added), and published through real bare repositories that ``sync`` fetches like any
upstream: ``<mirror>/<owner>/<name>.git`` standing in for ``https://github.com/<owner>/<name>.git``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from covid19_images.testing.miniature import sample_root

SHARED = sample_root()
IEEE = SHARED / "ieee8023-covid-chestxray-dataset"
POS_CASE = SHARED / "coyotespike-covid-19-pos-case"
MEDSEG = SHARED / "coyotespike-medseg_ct_dataset"

#: ieee8023's June 2020 header (trailing empty column included), minus the clinical columns.
IEEE_HEADER = (
    "patientid,offset,sex,age,finding,survival,view,modality,date,location,folder,filename,doi,url,license,"
    "clinical_notes,other_notes,"
)
IEEE_COLUMNS = IEEE_HEADER.split(",")

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "upstream",
    "GIT_AUTHOR_EMAIL": "upstream@example.invalid",
    "GIT_COMMITTER_NAME": "upstream",
    "GIT_COMMITTER_EMAIL": "upstream@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def run_git(*args: str, cwd: Path, env: Mapping[str, str] | None = None, check: bool = True) -> str:
    full = {**os.environ, **_GIT_ENV, **(env or {})}
    out = subprocess.run(["git", *args], cwd=cwd, env=full, capture_output=True, text=True, check=False)
    if check and out.returncode:
        raise RuntimeError(f"git {' '.join(args)} failed: {out.stderr}")
    return out.stdout.strip()


# ---------------------------------------------------------------- upstream repositories


class Upstream:
    """One fake upstream: a bare repo in the mirror, plus a work repo to commit from.

    Commits get fixed, increasing dates so the same content always gives the same ids.
    """

    def __init__(self, mirror_root: Path, owner: str, name: str, branch: str = "master") -> None:
        self.mirror_root = Path(mirror_root)
        self.owner, self.name, self.branch = owner, name, branch
        self.bare = self.mirror_root / owner / f"{name}.git"
        self.work = self.mirror_root / "_work" / owner / name
        self._tick = 0
        self.work.mkdir(parents=True)
        run_git("init", "-q", "-b", branch, cwd=self.work)
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        run_git("init", "-q", "--bare", "-b", branch, str(self.bare), cwd=self.mirror_root)
        run_git("remote", "add", "origin", str(self.bare), cwd=self.work)

    @property
    def url(self) -> str:
        return f"https://github.com/{self.owner}/{self.name}.git"

    def publish(self, tree: Path, message: str = "update", *, force: bool = False) -> str:
        """Make the branch tip hold exactly ``tree`` (symlinks kept as symlinks) and push it."""
        for child in self.work.iterdir():
            if child.name == ".git":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        for item in sorted(Path(tree).iterdir()):
            target = self.work / item.name
            if item.is_dir() and not item.is_symlink():
                shutil.copytree(item, target, symlinks=True)
            elif item.is_symlink():
                os.symlink(os.readlink(item), target)
            else:
                shutil.copy2(item, target)
        run_git("add", "-A", ".", cwd=self.work)
        self._tick += 1
        date = f"2020-02-{self._tick:02d}T00:00:00+00:00"
        run_git(
            "commit", "-q", "--allow-empty", "-m", message, cwd=self.work,
            env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
        )  # fmt: skip
        run_git(
            "push", "-q", *(["--force"] if force else []), "origin", f"HEAD:refs/heads/{self.branch}", cwd=self.work
        )
        return run_git("rev-parse", "HEAD", cwd=self.work)

    def rewrite(self, tree: Path, message: str = "rewritten history") -> str:
        """Force-push a new root commit: the old tip is no longer in the branch's history."""
        run_git("checkout", "-q", "--orphan", f"rewrite-{self._tick}", cwd=self.work)
        return self.publish(tree, message, force=True)

    def delete_branch(self, successor: str = "main") -> None:
        """What a default-branch rename looks like from outside: ``successor`` appears, the branch is gone."""
        run_git("push", "-q", "origin", f"HEAD:refs/heads/{successor}", cwd=self.work)
        run_git("symbolic-ref", "HEAD", f"refs/heads/{successor}", cwd=self.bare)
        run_git("update-ref", "-d", f"refs/heads/{self.branch}", cwd=self.bare)

    def make_unreachable(self) -> Path:
        hidden = self.bare.with_name(self.bare.name + ".offline")
        self.bare.rename(hidden)
        return hidden


def make_root(path: Path, sources: Sequence[Mapping[str, object]]) -> Path:
    """A covid19-images root: a git repo whose ``sources.yaml`` lists exactly ``sources``."""
    path.mkdir(parents=True)
    run_git("init", "-q", "-b", "main", cwd=path)
    run_git("config", "user.name", "Test", cwd=path)
    run_git("config", "user.email", "test@example.invalid", cwd=path)
    entries = []
    for source in sources:
        entry = {
            "branch": "master",
            "parser": "ieee8023-covid-chestxray",
            "modalities": ["xray", "ct"],
            "license": "CC-BY-4.0",
        }
        entry.update(source)
        entries.append(entry)
    (path / "sources.yaml").write_text(yaml.safe_dump({"sources": entries}, sort_keys=False))
    run_git("add", "sources.yaml", cwd=path)
    run_git("commit", "-q", "-m", "init", cwd=path)
    return path


# ---------------------------------------------------------------- ieee8023-shaped trees


def csv_line(cells: Iterable[str]) -> str:
    out = []
    for cell in cells:
        cell = str(cell)
        out.append('"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\r\n') else cell)
    return ",".join(out)


def ieee_row(filename: str, *, folder: str = "images", patientid: str = "1", finding: str = "COVID-19", **more) -> str:
    values = {"patientid": patientid, "finding": finding, "folder": folder, "filename": filename}
    values.setdefault("view", "PA")
    values.setdefault("modality", "X-ray")
    values.update(more)
    return csv_line(values.get(column, "") for column in IEEE_COLUMNS)


def real_image(name: str) -> bytes:
    return (IEEE / "images" / name).read_bytes()


def write_ieee_tree(folder: Path, images: Mapping[str, bytes], rows: Sequence[str]) -> Path:
    """A plain ieee8023-shaped tree (UTF-8, LF): ``metadata.csv`` plus ``images/``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in images.items():
        target = folder / "images" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (folder / "metadata.csv").write_text("\n".join([IEEE_HEADER, *rows]) + "\n", encoding="utf-8")
    return folder


#: Small real ieee8023 images (RGB JPEGs) for trees where the content does not matter.
SMALL_REAL = (
    "000005-5-b.jpg",
    "000002-11-b.jpg",
    "000002-14.jpg",
    "yxppt-2020-02-19_00-51-27_287214-day8.jpg",
    "yxppt-2020-02-19_00-51-27_287214-day10.jpg",
    "yxppt-2020-02-19_00-51-27_287214-day12.jpg",
    "1-s2.0-S1684118220300608-main.pdf-001.jpg",
)


def small_tree(folder: Path, names: Sequence[str], *, finding: str = "COVID-19") -> Path:
    """An ieee8023-shaped tree holding the given real sample images, one patient each."""
    rows = [ieee_row(n, patientid=str(i + 1), finding=finding) for i, n in enumerate(names)]
    return write_ieee_tree(folder, {n: real_image(n) for n in names}, rows)


# ---------------------------------------------------------------- file formats


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def webp_bytes(name: str) -> bytes:
    with Image.open(IEEE / "images" / name) as image:
        return _save(image.convert("RGB"), "WEBP", quality=80)


def png16_bytes(name: str) -> bytes:
    with Image.open(IEEE / "images" / name) as image:
        gray = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    return _save(Image.fromarray(gray), "PNG")


def cmyk_jpeg_bytes(name: str) -> bytes:
    with Image.open(IEEE / "images" / name) as image:
        return _save(image.convert("CMYK"), "JPEG", quality=90)


def _gray(name: str) -> np.ndarray:
    with Image.open(IEEE / "images" / name) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


def dicom_dataset(pixels: np.ndarray | None, *, modality: str = "CR", **tags: str):
    """A minimal, valid secondary-capture DICOM data set (explicit VR little endian)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[modality, *tags.values(), str(pixels is None)])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["study", *tags.values()])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series", *tags.values()])
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    for key, value in tags.items():
        setattr(ds, key, value)
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape[:2]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 8
        ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.PixelData = pixels.tobytes()
    else:
        ds.Rows, ds.Columns = 256, 256
    return ds


def dicom_bytes(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_without_pixels(**tags: str) -> bytes:
    return dicom_bytes(dicom_dataset(None, **tags))


def dicom_jpeg_baseline(name: str) -> bytes:
    """A real X-ray re-encoded as baseline JPEG and encapsulated (transfer syntax 1.2.840.10008.1.2.4.50)."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    gray = _gray(name)
    jpeg = _save(Image.fromarray(gray), "JPEG", quality=92, progressive=False)
    ds = dicom_dataset(gray, modality="CR")
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.LossyImageCompression = "01"
    return dicom_bytes(ds)


def dicom_jpeg2000(name: str) -> bytes:
    """A real X-ray compressed as JPEG 2000 lossless (1.2.840.10008.1.2.4.90) by pylibjpeg-openjpeg."""
    from pydicom.uid import JPEG2000Lossless

    gray = _gray(name)
    ds = dicom_dataset(gray, modality="CR")
    ds.compress(JPEG2000Lossless, gray)
    return dicom_bytes(ds)


def lfs_pointer() -> bytes:
    """The real Git LFS pointer medseg-ct publishes instead of its NIfTI volume."""
    return (MEDSEG / "dataset" / "val_im.nii").read_bytes()


# ---------------------------------------------------------------- the bad-input corpus


@dataclass(frozen=True)
class Case:
    """One row of the corpus: what it is, the file its row points at, and what must happen.

    ``format`` is the format the manifest must record when the image works; ``message`` a
    fragment of the problem it must raise otherwise (with the row's line).
    """

    what: str
    relative: str  # path inside the source, as the manifest shows it (after datasets/<name>/)
    works: bool
    format: str = ""
    message: str = ""
    line: int = 0


UNICODE_NAME = "Ünïcode scan (1) 50%+ +plus é.jpg"
#: The corpus cases by name (what ``write_bad_corpus`` returns, in order), for test parameters.
WORKING_CASES = (
    "real JPEG with a two-line quoted note (control)",
    "PNG named .jpg",
    "WebP named .png",
    "16-bit PNG",
    "CMYK JPEG (row with a cp1252 byte)",
    "DICOM, JPEG baseline transfer syntax",
    "DICOM, JPEG 2000 lossless transfer syntax",
    "file name with %, +, spaces, parentheses, non-ASCII",
)
FAILING_CASES = (
    "truncated JPEG",
    "zero-byte file",
    "DICOM without PixelData",
    "Git LFS pointer named .nii",
    "ragged row (unquoted comma)",
    "metadata path with ../",
    "absolute metadata path",
    "symlink to an absolute path outside",
    "relative symlink climbing out",
    "symlinked folder outside",
)


def write_bad_corpus(folder: Path, outside: Path) -> list[Case]:
    """Write the messy ieee8023-shaped tree; return its cases with the line of each row.

    ``metadata.csv`` itself is messy: UTF-8 BOM, CRLF line ends, a quoted note spanning
    two lines, a duplicated header column, one row with a Windows-1252 byte, a ragged row
    (an unquoted comma). ``outside`` is a folder beside the checkout holding a real image
    that the path tricks try to reach.
    """
    outside.mkdir(parents=True, exist_ok=True)
    secret = outside / "secret.jpg"
    secret.write_bytes(real_image("yxppt-2020-02-19_00-51-27_287214-day10.jpg"))
    images = folder / "images"
    images.mkdir(parents=True)
    (folder / "volumes").mkdir()

    files: dict[str, bytes] = {
        "images/good.jpg": real_image("000005-5-b.jpg"),
        "images/truncated.jpg": real_image("000002-11-b.jpg")[: len(real_image("000002-11-b.jpg")) // 2],
        "images/empty.jpg": b"",
        "images/png-named.jpg": real_image("ryct.2020003.fig2-a.png"),
        "images/webp-named.png": webp_bytes("000002-14.jpg"),
        "images/gray16.png": png16_bytes("6b3bdbc31f65230b8cdcc3cef5f8ba8a-40ac-0.jpg"),
        "images/cmyk.jpg": cmyk_jpeg_bytes("000002-19-b.jpg"),
        "images/no-pixels.dcm": dicom_without_pixels(),
        "images/jpeg-baseline.dcm": dicom_jpeg_baseline("ae6c954c0039de4b5edee53865ffee43-e6c8-0.jpg"),
        "images/jpeg2000.dcm": dicom_jpeg2000("6b3bdbc31f65230b8cdcc3cef5f8ba8a-40ac-0.jpg"),
        "volumes/lfs-pointer.nii": lfs_pointer(),
        f"images/{UNICODE_NAME}": real_image("yxppt-2020-02-19_00-51-27_287214-day8.jpg"),
        "images/ragged.jpg": real_image("yxppt-2020-02-19_00-51-27_287214-day12.jpg"),
    }
    for relative, data in files.items():
        (folder / relative).write_bytes(data)
    os.symlink(str(secret), images / "escape-absolute.jpg")
    os.symlink("../" * 40 + str(secret).lstrip("/"), images / "escape-relative.jpg")
    os.symlink(str(outside), images / "escape-dir")

    header = IEEE_HEADER.replace("other_notes", "clinical_notes")  # duplicated header column
    lines: list[bytes] = [header.encode()]
    cases: list[Case] = []

    def add(case: Case, row: str | bytes) -> None:
        line = sum(part.count(b"\n") + 1 for part in lines) + 1
        cases.append(Case(case.what, case.relative, case.works, case.format, case.message, line))
        lines.append(row if isinstance(row, bytes) else row.replace("\n", "\r\n").encode("utf-8"))

    def row(relative: str, **more) -> str:
        folder_name, _, filename = relative.rpartition("/")
        return ieee_row(filename, folder=folder_name, **more)

    add(
        Case("real JPEG with a two-line quoted note (control)", "images/good.jpg", True, "jpeg"),
        row("images/good.jpg", patientid="1", clinical_notes="Bilateral opacities.\nFollow-up in 3 days."),
    )
    add(Case("truncated JPEG", "images/truncated.jpg", False, message="truncated"), row("images/truncated.jpg"))
    add(Case("zero-byte file", "images/empty.jpg", False, message="empty (0 bytes)"), row("images/empty.jpg"))
    add(Case("PNG named .jpg", "images/png-named.jpg", True, "png"), row("images/png-named.jpg", patientid="4"))
    add(Case("WebP named .png", "images/webp-named.png", True, "webp"), row("images/webp-named.png", patientid="5"))
    add(Case("16-bit PNG", "images/gray16.png", True, "png"), row("images/gray16.png", patientid="6"))
    # this row also carries a Windows-1252 byte (0xF4, ô) in an otherwise UTF-8 file
    cmyk = row("images/cmyk.jpg", patientid="7", location="HOSPITAL_PLACEHOLDER").replace("\n", "\r\n")
    add(
        Case("CMYK JPEG (row with a cp1252 byte)", "images/cmyk.jpg", True, "jpeg"),
        cmyk.encode("utf-8").replace(b"HOSPITAL_PLACEHOLDER", b"H\xf4pital Saint-Louis"),
    )
    add(
        Case("DICOM without PixelData", "images/no-pixels.dcm", False, message="no pixel data"),
        row("images/no-pixels.dcm", modality="CT"),
    )
    add(
        Case("DICOM, JPEG baseline transfer syntax", "images/jpeg-baseline.dcm", True, "dicom"),
        row("images/jpeg-baseline.dcm", patientid="9"),
    )
    add(
        Case("DICOM, JPEG 2000 lossless transfer syntax", "images/jpeg2000.dcm", True, "dicom"),
        row("images/jpeg2000.dcm", patientid="10"),
    )
    add(
        Case("Git LFS pointer named .nii", "volumes/lfs-pointer.nii", False, message="git lfs pull"),
        row("volumes/lfs-pointer.nii", modality="CT"),
    )
    add(
        Case("file name with %, +, spaces, parentheses, non-ASCII", f"images/{UNICODE_NAME}", True, "jpeg"),
        row(f"images/{UNICODE_NAME}", patientid="12"),
    )
    add(
        Case("ragged row (unquoted comma)", "images/ragged.jpg", False, message="ragged row"),
        row("images/ragged.jpg", patientid="13").replace("COVID-19", "COVID-19, ARDS,extra", 1).replace('"', ""),
    )
    add(
        Case("metadata path with ../", "images/../../outside/secret.jpg", False, message="climbs out with '..'"),
        row("images/../../outside/secret.jpg"),
    )
    add(
        Case("absolute metadata path", str(secret), False, message="absolute path"),
        ieee_row(secret.name, folder=str(outside)),
    )
    add(
        Case("symlink to an absolute path outside", "images/escape-absolute.jpg", False, message="resolves outside"),
        row("images/escape-absolute.jpg"),
    )
    add(
        Case("relative symlink climbing out", "images/escape-relative.jpg", False, message="resolves outside"),
        row("images/escape-relative.jpg"),
    )
    add(
        Case("symlinked folder outside", "images/escape-dir/secret.jpg", False, message="not in the checkout"),
        row("images/escape-dir/secret.jpg"),
    )
    (folder / "metadata.csv").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    return cases
