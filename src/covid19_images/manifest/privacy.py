"""Identifying DICOM header values: find them, and keep them out of everything we write.

DICOM headers can carry a patient's name, birth date and hospital IDs, the institution and
the staff involved. The manifest is what users export and share, so it must never copy
them. Three layers: the DICOM parser keeps only technical tags and a keyed pseudonym of the
patient ID; the builder (:mod:`covid19_images.manifest.build`) checks every DICOM row it writes
against the file's own identifying values and removes any that slipped in (replacing a
leaked patient ID with :func:`pseudonym`), and redacts them from problem messages; and
:func:`scan_identifying` tells the ``report`` command which files still carry them, by tag
name only. No function here ever returns or prints a value.

Pseudonyms: there is one pseudonymiser, :func:`covid19_images.core.pseudonyms.pseudonym`
(re-exported here), HMAC-SHA256 under a project key derived per source. It stops casual
re-identification from the manifest (the id is neither the record number nor its plain
SHA-256) and linking the same person across two published sources (per-source keys). It
does not stop someone who holds the hospital's list of record numbers from recomputing the
ids: the default key is public because splits must agree on every machine. A deployment
that needs more sets its own key in ``COVID19_IMAGES_PSEUDONYM_KEY``
(:data:`~covid19_images.core.pseudonyms.PSEUDONYM_KEY_ENV`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from covid19_images.core.paths import source_relative
from covid19_images.core.pseudonyms import PSEUDONYM_KEY_ENV, pseudonym  # noqa: F401 - re-exported

#: Header keywords whose non-empty value identifies a person or a place of care
#: (a subset of the DICOM PS3.15 basic de-identification profile).
IDENTIFYING_KEYWORDS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "IssuerOfPatientID",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "OperatorsName",
    "AccessionNumber",
    "StationName",
    "DeviceSerialNumber",
)
#: Flags that make a file identifying whatever the text tags say.
FLAG_KEYWORDS: tuple[str, ...] = ("BurnedInAnnotation",)
#: Keywords whose value may be replaced by a pseudonym (rather than deleted) in ``patient_id``.
PATIENT_KEYWORDS = ("PatientID", "OtherPatientIDs", "PatientName", "OtherPatientNames")
#: Values anonymisers put in place of the real one; they identify nobody.
ANONYMISED = frozenset(
    {
        "",
        "anon",
        "anonymous",
        "anonymised",
        "anonymized",
        "anonymisedname",
        "anonymizedname",
        "removed",
        "deidentified",
        "de-identified",
        "none",
        "unknown",
        "n/a",
        "na",
        "null",
        "patient",
        "anonymous^patient",
    }
)
_PLACEHOLDER = re.compile(r"^[\sx*0\-_.^=]*$", re.IGNORECASE)
REMOVED = "[removed]"


def is_anonymised(value: str) -> bool:
    """True for empty values and the usual anonymiser placeholders (``ANONYMOUS``, ``XXXX``, ``0``)."""
    text = value.strip()
    return text.lower() in ANONYMISED or bool(_PLACEHOLDER.match(text))


def _text(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [t for item in value for t in _text(item)]
    return [str(value).strip()]


def identifying_values(path: Path) -> dict[str, list[str]]:
    """``keyword -> [values]`` for the identifying tags of one DICOM file that are really filled in.

    Only the listed tags are parsed (fast enough to run on every DICOM row at every build).
    Unreadable files give ``{}``. ``BurnedInAnnotation`` is reported as ``["YES"]``.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            specific_tags=[*IDENTIFYING_KEYWORDS, *FLAG_KEYWORDS, "OtherPatientIDsSequence"],
        )
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
        return {}
    found: dict[str, list[str]] = {}
    try:
        for keyword in IDENTIFYING_KEYWORDS:
            values = [v for v in _text(ds.get(keyword)) if not is_anonymised(v)]
            if values:
                found[keyword] = values
        others = [
            v
            for item in ds.get("OtherPatientIDsSequence", None) or []
            for v in _text(item.get("PatientID"))
            if not is_anonymised(v)
        ]
        if others:
            found.setdefault("OtherPatientIDs", []).extend(others)
        if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES":
            found["BurnedInAnnotation"] = ["YES"]
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError):
        # a malformed element: report what we have; never let one header break a build
        pass
    return found


def identifying_tags(path: Path) -> list[str]:
    """Keywords of ``path``'s identifying tags that carry a value (never the values)."""
    return list(identifying_values(path))


def match_strings(values: Mapping[str, Iterable[str]]) -> set[str]:
    """Every spelling of the identifying values worth searching for in our own output.

    Whole values of three characters or more, the parts of a person name (``Doe^Jane`` is
    also written ``Jane Doe``) of four or more, and dates also as ``YYYY-MM-DD``. Short
    fragments are left out: they would match everywhere and protect nothing.
    """
    found: set[str] = set()
    for keyword, items in values.items():
        if keyword in FLAG_KEYWORDS:
            continue
        for value in items:
            if len(value) >= 3:
                found.add(value)
            for part in re.split(r"[\^=,]", value):
                part = part.strip()
                if len(part) >= 4 and not is_anonymised(part):
                    found.add(part)
            if re.fullmatch(r"\d{8}", value):
                found.add(f"{value[:4]}-{value[4:6]}-{value[6:]}")
    return found


def _pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not ordered:
        return None
    return re.compile("|".join(re.escape(s) for s in ordered), re.IGNORECASE)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of any secret replaced by ``[removed]``."""
    pattern = _pattern(secrets)
    return pattern.sub(REMOVED, text) if pattern and text else text


def contains(text: str, secrets: Iterable[str]) -> bool:
    """True when any secret occurs in ``text`` (case-insensitive), as :func:`redact` would find it."""
    pattern = _pattern(secrets)
    return bool(pattern and text and pattern.search(text))


def _scrub_json(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(REMOVED, value)
    if isinstance(value, list):
        return [_scrub_json(v, pattern) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_json(v, pattern) for k, v in value.items()}
    return value


#: Columns computed from bytes or git (hashes, ids, geometry), never from header text.
_COMPUTED = frozenset(
    {"image_id", "source", "source_commit", "path", "git_blob", "sha256", "pixel_sha256", "phash"}
    | {"format", "width", "height", "frames", "dup_group", "split_group", "split"}
)


def scrub_row(row: dict[str, str], values: Mapping[str, Iterable[str]]) -> list[str]:
    """Remove ``values`` from one manifest row in place; return the columns that held any.

    A ``patient_id`` that holds the patient's ID or name becomes ``<source>:pid-<hash>`` (the
    same patient still groups together); other text columns get ``[removed]``. ``path`` is
    not touched: the caller must drop a row whose path itself is identifying.
    """
    secrets = match_strings(values)
    pattern = _pattern(secrets)
    if pattern is None:
        return []
    changed: list[str] = []
    for column, cell in list(row.items()):
        if column in _COMPUTED or column.startswith("_") or not isinstance(cell, str) or not pattern.search(cell):
            continue
        changed.append(column)
        if column == "patient_id":
            source = row.get("source", "")
            raw = cell[len(source) + 1 :] if source and cell.startswith(f"{source}:") else cell
            row[column] = f"{source}:{pseudonym(raw, source)}" if source else pseudonym(raw, source)
        elif column == "extra":
            try:
                data = json.loads(cell)
            except ValueError:
                row[column] = pattern.sub(REMOVED, cell)
                continue
            row[column] = json.dumps(
                _scrub_json(data, pattern), sort_keys=True, ensure_ascii=False, separators=(",", ":")
            )
        else:
            row[column] = pattern.sub(REMOVED, cell)
    return changed


def scan_identifying(root: Path, manifest: pd.DataFrame) -> list[dict[str, str]]:
    """DICOM rows whose files still carry identifying header values: ``[{path, tags}]``.

    ``tags`` is a comma-separated list of DICOM keywords (``PatientName,PatientBirthDate``),
    never their values: the report that shows this must not become the leak. Files that
    are missing or unreadable are skipped (``verify`` reports those).
    """
    if manifest is None or manifest.empty or "format" not in manifest.columns:
        return []
    found: list[dict[str, str]] = []
    for path in manifest.loc[manifest["format"] == "dicom", "path"]:
        full = Path(root) / str(path)
        if not full.is_file():
            continue
        tags = identifying_tags(full)
        if tags:
            found.append({"path": str(path), "tags": ",".join(tags)})
    return found


#: the only header values a source may declare publisher-assigned (``options: {published_ids: [...]}``)
PUBLISHABLE_KEYWORDS = ("PatientID", "PatientName")


def scrub_rows(
    root: Path, frame: pd.DataFrame, failed: set[int], problems: list, published: Iterable[str] = ()
) -> set[str]:
    """Check every DICOM row of ``frame`` against its own file's identifying header values (layer 2).

    ``published`` names header keywords (only :data:`PUBLISHABLE_KEYWORDS`) whose values the
    dataset's publisher assigned while de-identifying it and uses as file and folder names: RSNA's
    ``PatientID`` is the random patientId of ``<patientId>.dcm``, TCIA's is the collection's own
    subject id (``A223587``, ``MIDRC-RICORD-1C-419639-000025``). Those values are not searched
    for; every other identifying value still is.

    A parser may copy a header value, or upstream metadata may repeat it (a CSV ``patientid``
    that is the hospital ID in the DICOM): either way it is removed here in place, a leaked
    patient ID becomes a pseudonym, and a row whose file name itself is identifying is added
    to ``failed`` (left out). Only DICOM rows (and failed rows whose bytes sniff as DICOM) are
    opened; every other row costs nothing. Returns the strings to redact from all problem
    messages; problems name the tags, never the values.
    """
    from covid19_images.core.schema import Problem
    from covid19_images.imaging.formats import read_head, sniff_format

    secrets: set[str] = set()
    published = {k for k in published if k in PUBLISHABLE_KEYWORDS}
    is_failed = frame.index.isin(list(failed))
    candidates = frame.index[(frame["format"].to_numpy() == "dicom") | is_failed]
    for index in candidates:
        full = Path(root) / frame.at[index, "path"]
        if index in failed:
            try:
                if sniff_format(read_head(full)) != "dicom":
                    continue
            except OSError:
                continue
        values = {k: v for k, v in identifying_values(full).items() if k not in published}
        if not values:
            continue
        found = match_strings(values)
        secrets |= found
        if index in failed:
            continue
        row = {str(k): v for k, v in frame.loc[index].items()}
        if contains(row["path"], found):
            failed.add(index)
            problems.append(
                Problem(
                    row["source"],
                    "left out of the manifest: the file path contains an identifying DICOM header value "
                    f"({', '.join(values)}); rename it upstream",
                    path=redact(source_relative(row["path"], row["source"]), found),
                    row=row["_row"],
                    level="error",
                )
            )
            continue
        changed = scrub_row(row, values)
        if changed:
            for column in changed:
                frame.at[index, column] = row[column]
            tags = ", ".join(k for k in values if k not in FLAG_KEYWORDS)
            problems.append(
                Problem(
                    row["source"],
                    f"identifying DICOM header values ({tags}) removed from column(s) {', '.join(changed)}",
                    path=source_relative(row["path"], row["source"]),
                    row=row["_row"],
                    level="error",
                )
            )
    return secrets


def redact_problems(problems: list, secrets: set[str]) -> None:
    """Remove ``secrets`` from every problem's message, path and row, in place."""
    if not secrets:
        return
    for problem in problems:
        problem.message = redact(problem.message, secrets)
        problem.path = redact(problem.path, secrets)
        problem.row = redact(problem.row, secrets)
