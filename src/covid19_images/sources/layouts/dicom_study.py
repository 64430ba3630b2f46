"""A folder of DICOM studies (covid19-pos-case, ahp-ct): one entry per DICOM instance.

Why it looks the way it does:

* No metadata file exists; everything comes from the DICOM headers, read with
  ``stop_before_pixels`` (the probe decodes the pixels later, once).
* covid19-pos-case stores ``COVID-19-pos-case/IM000000`` ... without an extension; AH Paris
  mixes ``*.dcm`` (Anonymized/, Thorax/) with extension-less files elsewhere. So a file is
  DICOM when its bytes say so (``DICM`` at byte 128, or a bare data set), never by name.
  Other files (README, LICENSE) are ignored silently; a ``.dcm`` that is not DICOM, or a
  ``DICM`` file pydicom cannot parse, is reported with its path.
* A CT study is more than the axial stack: the pos-case study has a localizer (scout),
  three axial series and three DERIVED\\SECONDARY\\REFORMATTED series whose first image is
  a coronal reference with burned-in slice lines. ``extra.series_role`` (axial, localizer,
  reformat, other) lets loaders keep only the axial acquisitions; ``view`` comes from
  ImageOrientationPatient per instance. File order is not slice order, so entries are
  sorted by series, then InstanceNumber, then position along the slice normal.
* Privacy: no identifying tag (PatientName, PatientID, PatientBirthDate, InstitutionName,
  StationName, dates ...) is copied. ``patient_id`` is the keyed per-source pseudonym of
  PatientID (of StudyInstanceUID when PatientID is empty), see
  :mod:`covid19_images.core.pseudonyms` for what it does and does not protect. PatientAge
  and PatientSex are kept (not identifying on their own). UIDs are kept: they identify
  the data, not the person, and let overlapping sources (AH Paris vs pos-case, both from
  Arterys) be matched.
* The label comes from the registry (``options: {label: ...}``): these upstreams are
  collections of COVID-19 positive studies with no per-image label.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from covid19_images.core.pseudonyms import pseudonym
from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_finding, harmonise_sex, parse_age
from covid19_images.imaging.formats import is_lfs_pointer, lfs_pointer_message, sniff_format
from covid19_images.sources.parsing import SourceContext

#: Header fields read per file; everything else (names, dates, institution) is never loaded.
TAGS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "InstanceNumber",
    "Modality",
    "ImageType",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "ConvolutionKernel",
    "SliceThickness",
    "PatientID",
    "PatientAge",
    "PatientSex",
)
_DICOM_MODALITIES = {
    "CT": "ct",
    "CR": "xray",
    "DX": "xray",
    "DR": "xray",
    "RG": "xray",
    "US": "ultrasound",
}
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_REFORMAT_TYPES = {"DERIVED", "SECONDARY", "REFORMATTED"}


@dataclass
class Instance:
    """What one DICOM file tells us, already stripped of anything identifying."""

    path: str
    modality: str
    study_uid: str
    series_uid: str
    sop_uid: str
    series_number: int | None
    instance_number: int | None
    image_type: tuple[str, ...]
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    geometry: tuple[int, int]
    patient_key: str
    age: float | None
    sex: str
    kernel: str = ""
    slice_thickness: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def view(self) -> str:
        return view_from_orientation(self.orientation)

    def slice_coordinate(self) -> float | None:
        """Position along the slice normal (z for axial), for ordering within a series."""
        if self.position is None:
            return None
        normal = _normal(self.orientation)
        if normal is None:
            return self.position[2]
        return sum(p * n for p, n in zip(self.position, normal, strict=True))


def _normal(orientation: tuple[float, ...] | None) -> tuple[float, float, float] | None:
    if orientation is None or len(orientation) != 6:
        return None
    rx, ry, rz, cx, cy, cz = orientation
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    length = math.sqrt(sum(v * v for v in normal))
    return None if length < 1e-6 else (normal[0] / length, normal[1] / length, normal[2] / length)


def view_from_orientation(orientation: tuple[float, ...] | None) -> str:
    """axial / coronal / sagittal from ImageOrientationPatient; ``unknown`` if missing or oblique (> ~37 degrees)."""
    normal = _normal(orientation)
    if normal is None:
        return "unknown"
    axis = max(range(3), key=lambda i: abs(normal[i]))
    if abs(normal[axis]) < 0.8:
        return "unknown"
    return ("sagittal", "coronal", "axial")[axis]


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _vector(value: Any, size: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == size and all(math.isfinite(v) for v in numbers) else None


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def looks_like_dicom(head: bytes, name: str) -> bool:
    """Worth opening as DICOM: the magic, a bare data set, or a ``.dcm`` name (checked later)."""
    return sniff_format(head) == "dicom" or name.lower().endswith((".dcm", ".dicom"))


def read_instance(ctx: SourceContext, relative: str) -> Instance | None:
    """Header of one file as an :class:`Instance`; None to skip it (reported if it should be DICOM but is not)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    full = ctx.directory / relative
    try:
        with open(full, "rb") as handle:
            head = handle.read(512)
    except OSError as err:
        ctx.report(f"cannot read file: {err}", path=relative)
        return None
    if not looks_like_dicom(head, PurePosixPath(relative).name):
        return None
    if is_lfs_pointer(head):
        ctx.report(lfs_pointer_message(ctx.spec.path), path=relative)
        return None
    try:
        ds = pydicom.dcmread(full, stop_before_pixels=True, specific_tags=list(TAGS), force=head[128:132] != b"DICM")
        if "SOPClassUID" not in ds and "Rows" not in ds and "Modality" not in ds:
            raise InvalidDicomError("no DICOM elements found")
    except Exception as err:  # noqa: BLE001 - pydicom raises anything on a damaged file; report it, go on
        ctx.report(f"looks like DICOM but pydicom cannot read it: {type(err).__name__}: {err}", path=relative)
        return None
    return _instance(ctx, relative, ds)


def _instance(ctx: SourceContext, relative: str, ds: Any) -> Instance | None:
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if sop_class == _DICOMDIR_SOP_CLASS:
        return None  # a DICOMDIR is an index of the other files, not an image
    if "Rows" not in ds or "Columns" not in ds:
        name = getattr(ds.get("SOPClassUID"), "name", "") or sop_class or "unknown SOP class"
        ctx.report(f"DICOM object without an image ({name}); skipped", path=relative)
        return None
    raw_modality = _text(ds, "Modality").upper()
    modality = _DICOM_MODALITIES.get(raw_modality)
    if modality is None:
        if raw_modality or len(ctx.spec.modalities) != 1:
            ctx.report(f"DICOM modality {raw_modality or '(empty)'!r} is not one we index; skipped", path=relative)
            return None
        modality = ctx.spec.modalities[0]
    patient = _text(ds, "PatientID")
    study_uid = _text(ds, "StudyInstanceUID")
    patient_key = pseudonym(patient or study_uid, ctx.spec.name) if patient or study_uid else ""
    frames = _integer(ds.get("NumberOfFrames"))
    return Instance(
        path=relative,
        modality=modality,
        study_uid=study_uid,
        series_uid=_text(ds, "SeriesInstanceUID"),
        sop_uid=_text(ds, "SOPInstanceUID"),
        series_number=_integer(ds.get("SeriesNumber")),
        instance_number=_integer(ds.get("InstanceNumber")),
        image_type=tuple(v.strip().upper() for v in _text(ds, "ImageType").split("\\") if v.strip()),
        position=_vector(ds.get("ImagePositionPatient"), 3),
        orientation=_vector(ds.get("ImageOrientationPatient"), 6),
        geometry=(int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)),
        patient_key=patient_key,
        age=parse_age(_text(ds, "PatientAge")),
        sex=harmonise_sex(_text(ds, "PatientSex")),
        kernel=_text(ds, "ConvolutionKernel"),
        slice_thickness=_number(ds.get("SliceThickness")),
        extra={"frames_in_header": frames} if frames and frames > 1 else {},
    )


def series_roles(instances: list[Instance]) -> dict[str, str]:
    """Role of every series (keyed by SeriesInstanceUID, or path when it has none)."""
    by_series: dict[str, list[Instance]] = defaultdict(list)
    for item in instances:
        by_series[_series_key(item)].append(item)
    # the study's usual geometry and view: what a 1-2 image series is compared against
    usual_geometry: dict[str, tuple[int, int]] = {}
    usual_view: dict[str, str] = {}
    for study in {i.study_uid for i in instances}:
        members = [i for i in instances if i.study_uid == study]
        usual_geometry[study] = Counter(i.geometry for i in members).most_common(1)[0][0]
        usual_view[study] = Counter(i.view for i in members).most_common(1)[0][0]
    return {key: _role(members, usual_geometry, usual_view) for key, members in by_series.items()}


def _role(members: list[Instance], usual_geometry: dict[str, tuple[int, int]], usual_view: dict[str, str]) -> str:
    types = {value for item in members for value in item.image_type}
    if "LOCALIZER" in types:
        return "localizer"
    if types & _REFORMAT_TYPES:
        return "reformat"
    if len(members) <= 2 and all(
        i.geometry != usual_geometry[i.study_uid] or i.view != usual_view[i.study_uid] for i in members
    ):
        return "localizer"
    views = Counter(i.view for i in members)
    if views.most_common(1)[0][0] == "axial" or ("AXIAL" in types and views.get("unknown") == len(members)):
        return "axial"
    return "other"


def _series_key(item: Instance) -> str:
    return item.series_uid or f"path:{item.path}"


def _sort_key(item: Instance) -> tuple:
    coordinate = item.slice_coordinate()
    return (
        item.study_uid,
        item.series_number if item.series_number is not None else math.inf,
        item.series_uid,
        item.instance_number if item.instance_number is not None else math.inf,
        coordinate if coordinate is not None else math.inf,
        item.path,
    )


def to_entry(item: Instance, role: str, finding: str) -> Entry:
    label, detail, _known = harmonise_finding(finding)
    extra: dict[str, Any] = {
        "series_uid": item.series_uid,
        "series_number": item.series_number,
        "instance_number": item.instance_number,
        "slice_position": item.position[2] if item.position else None,
        "image_type": "\\".join(item.image_type),
        "series_role": role,
        "study_uid": item.study_uid,
        "sop_instance_uid": item.sop_uid,
        "convolution_kernel": item.kernel,
        "slice_thickness": item.slice_thickness,
        **item.extra,
    }
    return Entry(
        path=item.path,
        modality=item.modality,
        finding=finding,
        label=label,
        label_detail=detail,
        view=item.view,
        patient_id=item.patient_key,
        age=item.age,
        sex=item.sex,
        extra={k: v for k, v in extra.items() if v not in (None, "")},
    )


#: registry options (``options:`` of sources.yaml) and their types, checked when the registry loads
OPTIONS = {"label": str}


def parse(ctx: SourceContext) -> Iterator[Entry]:
    finding = str(ctx.option("label", "") or "")
    if finding:
        _label, _detail, known = harmonise_finding(finding)
        if not known:
            ctx.report(f"registry option label {finding!r} is not in the vocabulary -> unknown", level="error")
    instances: list[Instance] = []
    for relative in ctx.files:
        instance = read_instance(ctx, relative)
        if instance is not None:
            instances.append(instance)
    if not instances:
        ctx.report("no DICOM files found in the checkout", level="error")
        return
    roles = series_roles(instances)
    for item in sorted(instances, key=_sort_key):
        yield to_entry(item, roles[_series_key(item)], finding)
