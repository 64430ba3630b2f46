"""Serve a portal source's miniature from the loopback portal, in that portal's wire format.

``catalog/<name>/miniature/`` holds the source as it looks once fetched (the upstream's own
layout). This turns it back into what the portal sends: the Zenodo files that ``source.yaml``
maps to folders (zipped when they are archives), a Kaggle dataset's zip (or its single files),
a TCIA collection's series (``<PatientID>/<StudyUID>/<SeriesUID>/`` folders, one zip each), and
the plain files listed with a ``url``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from covid19_images.sources.portal.extract import is_archive
from covid19_images.sources.registry import SourceSpec
from covid19_images.testing.miniature import MINIATURE_NOTES, miniature_dir
from covid19_images.testing.portal_server import PortalServer, deterministic_zip


def miniature_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in MINIATURE_NOTES
    }


def _under(files: dict[str, bytes], into: str) -> dict[str, bytes]:
    if not into:
        return dict(files)
    prefix = into.rstrip("/") + "/"
    return {k[len(prefix) :]: v for k, v in files.items() if k.startswith(prefix)}


def portal_payloads(spec: SourceSpec, files: dict[str, bytes]) -> dict[str, bytes]:
    """File name on the portal -> its bytes, for the ``files:`` of ``spec`` (archives zipped)."""
    out: dict[str, bytes] = {}
    for item in spec.files:
        name, into = str(item["name"]), str(item.get("into", "") or "")
        if is_archive(name) and item.get("extract", True):
            out[name] = deterministic_zip(_under(files, into))
        else:
            out[name] = files[f"{into}/{PurePosixPath(name).name}" if into else name]
    return out


def _tcia_series(spec: SourceSpec, files: dict[str, bytes]) -> list[dict]:
    series: dict[tuple[str, str, str], dict[str, bytes]] = {}
    for name, data in files.items():
        parts = PurePosixPath(name).parts
        if len(parts) == 4:
            series.setdefault(parts[:3], {})[parts[3]] = data
    modality = str(spec.options.get("modality", "CR")) if spec.options else "CR"
    return [
        {"PatientID": p, "StudyInstanceUID": st, "SeriesInstanceUID": se, "Modality": modality, "files": content}
        for (p, st, se), content in sorted(series.items())
    ]


def serve_miniature(server: PortalServer, spec: SourceSpec, folder: Path | None = None) -> None:
    """Register ``spec``'s miniature (or ``folder``) with ``server`` as its portal would serve it."""
    files = miniature_files(folder or miniature_dir(spec.name))
    extra = [item for item in spec.files if item.get("url")]
    for item in extra:
        into = str(item.get("into", "") or "")
        name = str(item["name"])
        server.add_url(str(item["url"]), files.pop(f"{into}/{name}" if into else name))
    own = SourceSpec(**{**vars(spec), "files": tuple(i for i in spec.files if not i.get("url"))})
    if spec.portal == "zenodo":
        server.add_zenodo_record(spec.version or spec.dataset, portal_payloads(own, files))
    elif spec.portal == "kaggle":
        if own.files:
            server.add_kaggle_dataset(spec.dataset, spec.version, portal_payloads(own, files))
        else:
            server.add_kaggle_dataset(spec.dataset, spec.version, files)
    elif spec.portal == "kaggle-competition":
        url = f"https://www.kaggle.com/api/v1/competitions/data/download-all/{spec.dataset}"
        server.add_url(url, deterministic_zip(files))
    elif spec.portal == "tcia":
        server.add_tcia_collection(spec.dataset, _tcia_series(spec, files))
