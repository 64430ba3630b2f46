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

from covid19_images.core.schema import LABELS, MANIFEST_COLUMNS, SPLITS

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


#: encodingFormat of the files an export writes, by extension
ENCODINGS = {
    ".tar": "application/x-tar",
    ".parquet": "application/x-parquet",
    ".tfrecord": "application/x-tfrecord",
    ".csv": "text/csv",
    ".json": "application/json",
    ".md": "text/markdown",
}
IMAGE_ENCODINGS = {"png": "image/png", "jpg": "image/jpeg"}


def image_files(out: Path, format: str, shard_ids: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The exported pictures as a FileSet and a record set ``image_files`` (the decoded image and its path).

    ImageFolder: ``<split>/<class>/<key>.<ext>`` on disk; WebDataset: the members of the tar shards
    (``mlcroissant`` extracts them). Other formats hold the pictures inside Parquet/TFRecord rows.
    """
    if format == "imagefolder":
        present = {p.suffix.lstrip(".") for p in out.glob("*/*/*") if p.is_file()}
        includes = [f"*/*/*.{ext}" for ext in sorted(present & set(IMAGE_ENCODINGS))]
        contained: dict[str, Any] = {}
    elif format == "webdataset" and shard_ids:
        includes = [f"*.{ext}" for ext in sorted(IMAGE_ENCODINGS)]
        contained = {"containedIn": [{"@id": shard} for shard in shard_ids]}
    else:
        return [], []
    if not includes:
        return [], []
    file_set = {
        "@type": "cr:FileSet",
        "@id": "pictures",
        "name": "pictures",
        "description": "The exported pictures (PNG, or the original JPEG when not resized)."
        + (
            " mlcroissant 1.1 extracts the shards into $CROISSANT_CACHE/extract under a name made from the "
            "shard's file name only: clear it (or set CROISSANT_CACHE per export) before reading another export, "
            "or it serves the previous export's pictures."
            if contained
            else ""
        ),
        **contained,
        "encodingFormat": sorted(set(IMAGE_ENCODINGS.values())),
        "includes": includes,
    }
    record_set = {
        "@type": "cr:RecordSet",
        "@id": "image_files",
        "name": "image_files",
        "description": "One record per exported picture: the decoded image and its file name (key of manifest.csv).",
        "field": [
            {
                "@type": "cr:Field",
                "@id": f"image_files/{name}",
                "name": name,
                "dataType": data_type,
                "source": {"fileSet": {"@id": "pictures"}, "extract": {"fileProperty": prop}},
            }
            for name, data_type, prop in (("image", "sc:ImageObject", "content"), ("file_name", "sc:Text", "filename"))
        ],
    }
    return [file_set], [record_set]


def write_export_croissant(
    out: Path, request_meta: Mapping[str, Any], items: pd.DataFrame, citations: Mapping[str, str]
) -> Path:
    """``<export>/croissant.json``: every file written (shards with their sha256), the rows of manifest.csv typed.

    Called last by :func:`covid19_images.export.export`, so it lists what is really on disk.
    """
    from covid19_images.export.common import EXTRA_COLUMNS, MANIFEST_NAME

    out = Path(out)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    files = [
        data_file(out, name, ENCODINGS[Path(name).suffix])
        for name in written
        if "/" not in name and Path(name).suffix in ENCODINGS and name != CROISSANT_FILE
    ]
    distribution: list[Any] = list(files)
    record_sets = [
        rows_record_set(
            "images",
            MANIFEST_NAME,
            (*MANIFEST_COLUMNS, *EXTRA_COLUMNS),
            "One record per exported item: the manifest row, its frame, class index and path in the export.",
        ),
        labels_record_set(),
    ]
    doc = document(
        name=f"covid19-images-{request_meta['modality']}-{request_meta['format']}",
        description=(
            f"A {request_meta['format']} export of the covid19-images {request_meta['modality']} images "
            f"(split scheme {request_meta['split_scheme']}, filters {json.dumps(request_meta['filters'])}): "
            "the loaders' selection, one image per duplicate group, unknown labels left out."
        ),
        version=request_meta.get("version"),
        files=distribution,
        record_sets=record_sets,
        manifest=items,
        citations=citations,
        cite_as="@misc{covid19images, title={covid19-images}, howpublished={\\url{https://github.com/covid19-images/covid19-images}}}",
    )
    shard_ids = [f.id for f in files if f.encoding == ENCODINGS[".tar"]]
    file_sets, picture_sets = image_files(out, request_meta["format"], shard_ids)
    doc["distribution"] += file_sets
    doc["recordSet"] += picture_sets
    path = out / CROISSANT_FILE
    path.write_bytes(to_bytes(doc))
    return path
