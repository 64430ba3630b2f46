"""MLCommons Croissant metadata (JSON-LD) for the collection and for every export.

Croissant is what Hugging Face, Kaggle, OpenML and TFDS publish about a dataset and what
dataset venues ask for: the files with their checksums (``distribution``), the records they
hold and their types (``recordSet``), licences, citations, and the responsible-AI (RAI)
fields. The documents written here validate with MLCommons' own ``mlcroissant`` and it can
iterate their records (tests/release/ proves both, for the collection and an export).

The document is built from the manifest alone plus the registry (licences, citations) and
``report``'s confounding findings, in a fixed order with no clock, so two writes of the same
inputs are byte-identical. Files are named relative to the document's own folder, as
``mlcroissant`` resolves them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from covid19_images.core.schema import LABELS, SPLITS

CROISSANT_FILE = "croissant.json"
CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileObject": "cr:fileObject",
    "fileProperty": "cr:fileProperty",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
#: manifest columns that are numbers (blank = unknown); every other column is text
NUMERIC_COLUMNS = {
    "width": "sc:Integer",
    "height": "sc:Integer",
    "frames": "sc:Integer",
    "age": "sc:Float",
    "frame": "sc:Integer",
    "label_index": "sc:Integer",
}
FIELD_DESCRIPTIONS = {
    "image_id": "Stable id of the image: 16 hex digits of SHA-1 of <source>/<path in source>.",
    "source": "Registry name of the upstream dataset the image comes from.",
    "source_commit": "Commit of the upstream checkout the row was built from.",
    "path": "File path relative to the collection root (datasets/<source>/...).",
    "git_blob": "Git blob id of the file in its upstream repository.",
    "sha256": "SHA-256 of the file's bytes.",
    "pixel_sha256": "SHA-256 of the decoded grayscale pixels (equal for re-saves of one image).",
    "phash": "256-bit perceptual hash used for the near-duplicate search.",
    "format": "Real file format detected from the bytes.",
    "width": "Pixels of one frame or slice, horizontally.",
    "height": "Pixels of one frame or slice, vertically.",
    "frames": "Frames of a video or GIF, slices of a volume; 1 otherwise.",
    "modality": "Imaging modality: xray, ct or ultrasound.",
    "view": "Projection, plane or probe (PA, AP, lateral, axial, convex, ...; unknown).",
    "label": "Harmonised label (the labels record set); unknown is never a class by default.",
    "label_detail": "Subtype kept from the raw finding (bacterial, viral/sars, ...).",
    "finding": "The raw upstream finding, unchanged.",
    "patient_id": "Patient, namespaced by source; ids read from DICOM headers are keyed pseudonyms.",
    "age": "Age in years (blank if unknown).",
    "sex": "M, F or blank.",
    "license": "Licence of the image, SPDX-like.",
    "official_split": "The upstream's own split where it has one.",
    "dup_group": "Duplicate group (same bytes, same pixels or confirmed near-duplicate); blank for a singleton.",
    "split_group": "Connected component of same patient and same duplicate group; one split per group.",
    "split": "Stable patient-level split of the split group: train, val or test (80/10/10).",
    "extra": "Per-source details as compact JSON.",
    "frame": "Frame of a multi-frame file this item is (0 for single images).",
    "label_index": "Class index of the label in the export's classes.",
    "export_path": "Where the item's image is inside the export.",
}
LABEL_MEANINGS = {
    "covid-19": "COVID-19 according to the upstream (PCR or clinical diagnosis as the upstream states).",
    "pneumonia": "Pneumonia other than COVID-19 (subtype in label_detail).",
    "normal": "No finding according to the upstream; a normal scan does not rule COVID-19 out.",
    "other": "Another finding (effusion, nodule, tuberculosis, ...).",
    "unknown": "Blank, todo or inconclusive upstream finding; never served as a class unless asked.",
}
MEDICAL_LIMITATION = (
    "Research use only. A positive scan can suggest COVID-19; a negative scan means nothing: a normal-looking "
    "image does not rule COVID-19 out. Labels are the upstreams' own, harmonised, not re-read by radiologists."
)
KNOWN_BIASES = (
    "Public COVID-19 image sets are known for duplicated images across sources, the same patient in train and "
    "test, and labels predictable from the source alone (Roberts et al. 2021; DeGrave et al. 2021). Duplicates "
    "share a dup_group and patients a split_group, so neither crosses splits; source-label confounding is "
    "measured by `covid19-images report` (below) and can be tested with split_scheme='loso:<source>'."
)
PRIVACY = (
    "No identifying DICOM header values are carried: patient ids read from headers are keyed per-source "
    "pseudonyms; `covid19-images report` lists DICOM files whose headers still hold identifying values."
)


@dataclass(frozen=True)
class DataFile:
    """One file of the distribution: its id in the document, path relative to the document, format, bytes' hash."""

    id: str
    path: str
    encoding: str
    sha256: str
    description: str = ""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_file(folder: Path, relative: str, encoding: str, description: str = "", *, id: str | None = None) -> DataFile:
    """A :class:`DataFile` for ``folder/relative``, hashed now."""
    return DataFile(id or relative, relative, encoding, sha256_of(Path(folder) / relative), description)


def _field(record_set: str, name: str, file_id: str, data_type: str | None = None) -> dict[str, Any]:
    return {
        "@type": "cr:Field",
        "@id": f"{record_set}/{name}",
        "name": name,
        "description": FIELD_DESCRIPTIONS.get(name, name),
        "dataType": data_type or NUMERIC_COLUMNS.get(name, "sc:Text"),
        "source": {"fileObject": {"@id": file_id}, "extract": {"column": name}},
    }


def rows_record_set(name: str, file_id: str, columns: Sequence[str], description: str) -> dict[str, Any]:
    """A record set over a CSV file: one field per column, typed, keyed by ``image_id``."""
    record_set = {
        "@type": "cr:RecordSet",
        "@id": name,
        "name": name,
        "description": description,
        "field": [_field(name, column, file_id) for column in columns],
    }
    if "image_id" in columns and "frame" not in columns:
        record_set["key"] = {"@id": f"{name}/image_id"}
    return record_set


def labels_record_set(labels: Iterable[str] = LABELS) -> dict[str, Any]:
    """The label vocabulary, inline, with what each label means."""
    return {
        "@type": "cr:RecordSet",
        "@id": "labels",
        "name": "labels",
        "description": "The harmonised label vocabulary of the `label` column.",
        "dataType": "sc:Enumeration",
        "key": {"@id": "labels/name"},
        "field": [
            {"@type": "cr:Field", "@id": "labels/name", "name": "name", "dataType": "sc:Text"},
            {"@type": "cr:Field", "@id": "labels/meaning", "name": "meaning", "dataType": "sc:Text"},
        ],
        "data": [{"labels/name": label, "labels/meaning": LABEL_MEANINGS.get(label, "")} for label in labels],
    }


def _file_object(item: DataFile) -> dict[str, Any]:
    node = {
        "@type": "cr:FileObject",
        "@id": item.id,
        "name": item.id,
        "contentUrl": item.path,
        "encodingFormat": item.encoding,
        "sha256": item.sha256,
    }
    if item.description:
        node["description"] = item.description
    return node


def confounding_findings(manifest: pd.DataFrame) -> list[str]:
    """``report``'s confounding warnings (source or age group predicting a label) for these rows."""
    from covid19_images.quality.report.compute import confounding_warnings

    return confounding_warnings(manifest)


def document(
    *,
    name: str,
    description: str,
    version: str | None,
    files: Sequence[DataFile],
    record_sets: Sequence[dict[str, Any]],
    manifest: pd.DataFrame,
    citations: Mapping[str, str],
    cite_as: str,
    date_published: str | None = None,
    url: str = "https://github.com/covid19-images/covid19-images",
    extra_biases: Sequence[str] = (),
) -> dict[str, Any]:
    """A complete Croissant 1.1 document (a dict ready for ``json.dumps``)."""
    licences = sorted({str(v) for v in manifest["license"]}) if "license" in manifest else []
    counts = manifest["split"].value_counts().to_dict() if "split" in manifest else {}
    splits = ", ".join(f"{s} {int(counts.get(s, 0))}" for s in SPLITS)
    biases = [KNOWN_BIASES, *confounding_findings(manifest), *extra_biases]
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": name,
        "description": description,
        "url": url,
        **({"version": version} if version else {}),
        **({"datePublished": date_published} if date_published else {}),
        "license": licences,
        "citeAs": cite_as,
        "citation": [f"{source}: {text}" for source, text in sorted(citations.items()) if text],
        "keywords": ["COVID-19", "chest X-ray", "CT", "lung ultrasound", "medical imaging"],
        "isLiveDataset": False,
        "distribution": [_file_object(f) for f in files],
        "recordSet": list(record_sets),
        "rai:dataCollection": (
            f"Assembled from {manifest['source'].nunique() if 'source' in manifest else 0} public upstream datasets "
            f"(each pinned by commit), {len(manifest)} rows; splits: {splits}. Patient-level splits that never "
            "change once assigned."
        ),
        "rai:dataBiases": biases,
        "rai:dataLimitations": [MEDICAL_LIMITATION],
        "rai:personalSensitiveInformation": [PRIVACY],
        "rai:dataUseCases": [
            "Research on COVID-19 lung imaging with leakage-free splits; not for clinical use or diagnosis."
        ],
    }


def to_bytes(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
