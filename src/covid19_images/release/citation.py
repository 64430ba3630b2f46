"""``CITATION.cff`` (Citation File Format 1.2.0) and ``manifests/croissant.json`` of a release.

GitHub's "Cite this repository" button and Zenodo's GitHub import read ``CITATION.cff``: the
collection itself at this version, and every source the manifest holds as a reference (a
paper using the collection must cite the upstreams too; their licences require it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from covid19_images.core.annotation import ANNOTATION_COLUMNS
from covid19_images.core.schema import MANIFEST_COLUMNS
from covid19_images.export import croissant
from covid19_images.manifest.io import ANNOTATIONS_FILE, MANIFEST_FILE, PROBLEMS_FILE
from covid19_images.sources.registry import SourceSpec

CITATION_FILE = "CITATION.cff"
COLLECTION_CROISSANT = f"manifests/{croissant.CROISSANT_FILE}"
TITLE = "covid19-images: public COVID-19 lung-imaging datasets as one leak-free, citable collection"
AUTHOR = "covid19-images contributors"
REPOSITORY = "https://github.com/covid19-images/covid19-images"
MESSAGE = (
    "If you use this collection, cite this version of it and every upstream dataset you used (the references "
    "below; their licences, per image in the manifest's license column, require it)."
)


def _authors_of(citation: str, fallback: str) -> str:
    """The author part of a free-text citation ("Cohen JP, Morrison P. Title ..." -> "Cohen JP, Morrison P")."""
    text = " ".join(citation.split())
    head = re.split(r"\.\s+(?=[A-Z0-9\"'“(])", text, maxsplit=1)[0].strip(" .")
    return head if head and len(head) <= 200 else fallback


def _reference(spec: SourceSpec, images: int) -> dict[str, Any]:
    reference: dict[str, Any] = {
        "type": "data",  # CFF's reference type for a dataset ("dataset" is only a top-level type)
        "title": f"{spec.name}: {spec.description.strip() or spec.name}"[:300],
        "authors": [{"name": _authors_of(spec.citation, f"{spec.name} contributors")}],
        "repository": spec.url,
        "notes": (f"{spec.citation.strip()} " if spec.citation.strip() else "")
        + f"({images} images in this version; licence {spec.license})",
    }
    if spec.homepage.startswith("http"):
        reference["url"] = spec.homepage
    if spec.license_url.startswith("http"):
        reference["license-url"] = spec.license_url
    return reference


def citation_cff(version: str, date: str, manifest: pd.DataFrame, registry: Mapping[str, SourceSpec]) -> str:
    """The text of ``CITATION.cff`` for ``version`` released on ``date`` (ISO)."""
    counts = manifest["source"].value_counts().to_dict()
    cited = [name for name in registry if name in counts or registry[name].citation.strip()]
    data: dict[str, Any] = {
        "cff-version": "1.2.0",
        "message": MESSAGE,
        "type": "dataset",
        "title": TITLE,
        "version": version,
        "date-released": date,
        "authors": [{"name": AUTHOR}],
        "repository-code": REPOSITORY,
        "abstract": (
            f"Version {version}: {len(manifest)} images from {len(counts)} public upstream datasets, each pinned by "
            "commit, with content hashes, harmonised labels, duplicate groups and patient-level splits."
        ),
        "keywords": ["COVID-19", "chest X-ray", "CT", "lung ultrasound", "dataset"],
        "references": [_reference(registry[name], int(counts.get(name, 0))) for name in cited],
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def cite_as(version: str, date: str) -> str:
    """A BibTeX entry for the collection at ``version`` (Croissant's ``citeAs``)."""
    key = "covid19images" + version.replace(".", "")
    return (
        f"@misc{{{key}, title={{{TITLE}}}, author={{{{{AUTHOR}}}}}, year={{{date[:4]}}}, "
        f"version={{{version}}}, howpublished={{\\url{{{REPOSITORY}}}}}}}"
    )


def collection_croissant(
    root: Path, version: str, date: str, manifest: pd.DataFrame, registry: Mapping[str, SourceSpec]
) -> dict[str, Any]:
    """``manifests/croissant.json``: the manifest, annotations and problems files with their sha256, typed."""
    folder = Path(root) / "manifests"
    files = [croissant.data_file(folder, Path(MANIFEST_FILE).name, "text/csv", "One row per image file.")]
    record_sets = [
        croissant.rows_record_set("images", files[0].id, MANIFEST_COLUMNS, "One record per image file, typed."),
        croissant.labels_record_set(),
    ]
    if (Path(root) / ANNOTATIONS_FILE).is_file():
        files.append(croissant.data_file(folder, Path(ANNOTATIONS_FILE).name, "text/csv", "Masks, boxes, scores."))
        record_sets.append(
            croissant.rows_record_set("annotations", files[-1].id, ANNOTATION_COLUMNS, "One record per annotation.")
        )
    if (Path(root) / PROBLEMS_FILE).is_file():
        files.append(croissant.data_file(folder, Path(PROBLEMS_FILE).name, "text/csv", "Inputs skipped or doubtful."))
    cited = {n: s.citation.strip() for n, s in registry.items()}  # annotation-only sources have no rows
    return croissant.document(
        name="covid19-images",
        description=(
            "Public COVID-19 lung-imaging datasets (chest X-ray, CT, lung ultrasound) as one collection: one row per "
            "image with provenance (source and commit), content hash, harmonised label, duplicate group and a "
            "patient-level split. The images stay in their upstream checkouts under datasets/ (paths in `path`)."
        ),
        version=version,
        date_published=date,
        files=files,
        record_sets=record_sets,
        manifest=manifest,
        citations=cited,
        cite_as=cite_as(version, date),
        url=REPOSITORY,
    )
