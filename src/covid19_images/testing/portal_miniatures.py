"""Serve a portal source's miniature from the loopback portal, in that portal's wire format.

``catalog/<name>/miniature/`` holds the source as it looks once fetched (the upstream's own
layout). This turns it back into what the portal sends: the Zenodo files that ``source.yaml``
maps to folders (zipped when they are archives), a Kaggle dataset's zip (or its single files),
a TCIA collection's series (``<PatientID>/<StudyUID>/<SeriesUID>/`` folders, one zip each), and
the plain files listed with a ``url``; a ``manual`` source's archives become a folder to ``fetch --from``.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

from covid19_images.sources.portal.extract import ARCHIVE_SUFFIXES, is_archive
from covid19_images.sources.portal.lock import PortalLock
from covid19_images.sources.registry import SourceSpec
from covid19_images.testing.miniature import MINIATURE_NOTES, miniature_dir
from covid19_images.testing.portal_server import PortalServer, deterministic_zip, point_root_at


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


def archive_bytes(name: str, files: Mapping[str, bytes]) -> bytes:
    """``files`` as the archive ``name`` says: a tar.gz for ``.tgz``/``.tar.gz``, else a zip (same bytes each time)."""
    if not name.lower().endswith((".tgz", ".tar.gz")):
        return deterministic_zip(files)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as packed, tarfile.open(fileobj=packed, mode="w") as tf:
        for member in sorted(files):
            info = tarfile.TarInfo(member)
            info.size, info.mode, info.mtime = len(files[member]), 0o644, 1577836800  # 2020-01-01
            tf.addfile(info, io.BytesIO(files[member]))
    return out.getvalue()


def _members(files: dict[str, bytes], name: str, into: str) -> dict[str, bytes]:
    """What the archive ``name`` holds: the files under ``into``; without one, the folder named after the
    archive with its name kept (BIMCV's ``<stem>.tgz`` unpacks to ``<stem>/``), else everything."""
    if into:
        return _under(files, into)
    stem = next((name[: -len(s)] for s in ARCHIVE_SUFFIXES if name.lower().endswith(s)), name)
    own = {k: v for k, v in files.items() if k.startswith(f"{stem}/")}
    return own or dict(files)


def portal_payloads(spec: SourceSpec, files: dict[str, bytes]) -> dict[str, bytes]:
    """File name on the portal -> its bytes, for the ``files:`` of ``spec`` (archives packed)."""
    out: dict[str, bytes] = {}
    for item in spec.files:
        name, into = str(item["name"]), str(item.get("into", "") or "")
        if is_archive(name) and item.get("extract", True):
            out[name] = archive_bytes(name, _members(files, name, into))
        else:
            out[name] = files[f"{into}/{PurePosixPath(name).name}" if into else name]
    return out


def manual_download(spec: SourceSpec, folder: Path) -> Path:
    """``folder`` holding what a user of a ``manual`` source downloads by hand (for ``fetch --from``), made
    from its miniature: each file of its ``files:`` list (archives packed as the share has them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in portal_payloads(spec, miniature_files(miniature_dir(spec.name))).items():
        (folder / name).write_bytes(data)
    return folder


def _series_key(name: str, data: bytes) -> tuple[str, str, str, str] | None:
    """(PatientID, StudyUID, SeriesUID, Modality) of a miniature DICOM, from its header (None without the UIDs)."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError):
        return None
    keys = [str(ds.get(k, "") or "") for k in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality")]
    return tuple(keys) if all(keys[:3]) else None  # type: ignore[return-value]


def _tcia_series(spec: SourceSpec, files: dict[str, bytes]) -> list[dict]:
    """The collection's series: ``<PatientID>/<StudyUID>/<SeriesUID>/`` folders as they are, or (TCIA's
    Data Retriever layout ``<Collection>/<subject>/<study>/<series>/``) grouped by the DICOM headers."""
    modality = str(spec.options.get("modality", "CR")) if spec.options else "CR"
    series: dict[tuple[str, str, str, str], dict[str, bytes]] = {}
    for name, data in files.items():
        parts = PurePosixPath(name).parts
        if len(parts) == 4:
            series.setdefault((*parts[:3], modality), {})[parts[3]] = data
        elif name.lower().endswith(".dcm") and (key := _series_key(name, data)) is not None:
            series.setdefault(key, {})[parts[-1]] = data
    return [
        {"PatientID": p, "StudyInstanceUID": st, "SeriesInstanceUID": se, "Modality": m, "files": content}
        for (p, st, se, m), content in sorted(series.items())
    ]


def servable(spec: SourceSpec) -> bool:
    """Whether the loopback portal serves ``spec``'s miniature so that a fetch lands what its parser reads.

    Zenodo and Kaggle: always. TCIA: when every miniature DICOM names its patient, study and
    series (a fetch lands ``<PatientID>/<StudyUID>/<SeriesUID>/``). Manual sources: never (they are
    the user's download: :func:`manual_download` makes one for ``fetch --from``).
    """
    if spec.portal in SERVED_PORTALS:
        return True
    if spec.portal != "tcia":
        return False
    files = miniature_files(miniature_dir(spec.name))
    return all(_series_key(n, d) is not None for n, d in files.items() if n.lower().endswith(".dcm"))


def serve_miniature(server: PortalServer, spec: SourceSpec, folder: Path | None = None) -> None:
    """Register ``spec``'s miniature (or ``folder``) with ``server`` as its portal would serve it."""
    files = miniature_files(folder or miniature_dir(spec.name))
    extra = [item for item in spec.files if item.get("url")]
    for item in extra:
        into = str(item.get("into", "") or "")
        name = str(item["name"])
        if is_archive(name) and item.get("extract", True):  # an archive by URL (MosMed's zip): its folder, zipped
            inside = _under(files, into)
            for member in inside:
                files.pop(f"{into}/{member}" if into else member)
            server.add_url(str(item["url"]), deterministic_zip(inside))
            continue
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
    elif spec.portal == "s3":  # files: are key prefixes, the objects are the miniature's files as they are
        server.add_s3_bucket(spec.dataset, files)
    elif spec.portal == "figshare":
        server.add_figshare_article(spec.dataset, spec.version, portal_payloads(own, files) if own.files else files)


#: the portal kinds whose miniatures the loopback server serves in a layout the parsers read once fetched
SERVED_PORTALS = ("zenodo", "kaggle", "kaggle-competition", "s3", "figshare", "https")


def fetch_miniatures(
    root: Path,
    server: PortalServer,
    specs: list[SourceSpec],
    downloads: Path,
    report: Callable[[SourceSpec, PortalLock, Path | None], None] | None = None,
) -> list[SourceSpec]:
    """Serve, pin (at the catalog's version) and fetch each of ``specs`` through ``server``, as a user would.

    ``root`` must be a git root; it is pointed at ``server`` (:func:`point_root_at`) once every
    miniature is served, since the plain ``url`` files add hosts. A ``manual`` source is pinned and
    fetched ``--from`` a folder under ``downloads`` (:func:`manual_download`). ``report`` is told of
    each source fetched (its lock, and the folder for a manual one). Returns the specs this cannot
    fetch (a TCIA miniature whose DICOMs do not name their study and series).
    """
    from covid19_images.sources.portal.fetch import fetch_source
    from covid19_images.sources.portal.update import update_lock

    served = [spec for spec in specs if servable(spec)]
    for spec in served:
        serve_miniature(server, spec)
    point_root_at(root, server)
    for spec in specs:
        by_hand = manual_download(spec, downloads / spec.name) if spec.portal == "manual" else None
        if spec not in served and by_hand is None:
            continue
        _old, lock = update_lock(root, spec, version=spec.version, from_dir=by_hand, progress=False)
        fetch_source(root, spec, from_dir=by_hand, progress=False)
        if report is not None:
            report(spec, lock, by_hand)
    return [spec for spec in specs if spec not in served and spec.portal != "manual"]


def fetched_miniature_root(root: Path, server: PortalServer, names: list[str]) -> Path:
    """A git data root listing ``names``: git sources as miniature copies, portal sources fetched from
    ``server`` (manual ones ``--from`` their :func:`manual_download` beside ``root``)."""
    import shutil

    import git
    import yaml

    from covid19_images.sources.registry import load_registry

    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "test")
        config.set_value("user", "email", "test@example.invalid")
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": list(names)}))
    registry = load_registry(root)
    for name in names:
        if not registry[name].is_portal:
            target = root / "datasets" / name
            shutil.copytree(miniature_dir(name), target, ignore=shutil.ignore_patterns(*MINIATURE_NOTES))
    left = fetch_miniatures(
        root, server, [registry[n] for n in names if registry[n].is_portal], root.parent / "by-hand"
    )
    if left:
        raise ValueError(f"the loopback portal cannot serve {', '.join(s.name for s in left)}")
    return root
