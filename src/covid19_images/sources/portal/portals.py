"""What each portal's documented API says: the files of a pinned version, and the newest version.

* Zenodo REST API: ``GET /api/records/<id>`` lists ``files[]`` with ``key``, ``size`` and
  ``checksum`` (``md5:<hex>``); ``/api/records/<id>/versions/latest`` is the newest record.
* figshare API v2: ``GET /v2/articles/<id>/versions/<v>`` lists ``files[]`` with ``name``,
  ``size``, ``computed_md5``, ``download_url``.
* Kaggle public API (the one the ``kaggle`` CLI calls): ``/api/v1/datasets/download/<owner>/<slug>``
  (``?datasetVersionNumber=N``; one file with ``/<file>`` appended), ``/api/v1/datasets/view/...``
  for ``currentVersionNumber``, ``/api/v1/competitions/data/download-all/<name>`` for a
  competition; HTTP basic auth with the user's API token.
* TCIA NBIA REST API v1: ``getSeries?Collection=`` lists the series (``PatientID``,
  ``StudyInstanceUID``, ``SeriesInstanceUID``), ``getImage?SeriesInstanceUID=`` is one series as a zip.
* AWS Open Data (``s3``, anonymous): ``GET https://<bucket>.s3.amazonaws.com/?list-type=2&prefix=``
  (ListObjectsV2, XML, ``Key`` and ``Size`` per object, ``NextContinuationToken`` while
  ``IsTruncated``); each object is ``https://<bucket>.s3.amazonaws.com/<key>``. The ``ETag`` is
  an md5 only for single-part uploads, so it is not taken as a checksum: the lock pins size and
  our sha256 (STOIC2021 publishes no checksum).
* ``https``: the URLs listed under ``files:``; ``manual``: nothing to request (``fetch --from DIR``).

Every locator is the canonical https URL; :class:`~covid19_images.sources.portal.mirror.UrlRewriter`
rewrites it when requested.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import requests
from requests.auth import HTTPBasicAuth

from covid19_images.core.paths import lexical_problem
from covid19_images.sources.portal.http import PortalError, get_json
from covid19_images.sources.portal.mirror import UrlRewriter
from covid19_images.sources.registry import SourceSpec

ZENODO = "https://zenodo.org/api/records/"
FIGSHARE = "https://api.figshare.com/v2/articles/"
KAGGLE = "https://www.kaggle.com/api/v1/"
NBIA = "https://services.cancerimagingarchive.net/nbia-api/services/v1/"
KAGGLE_TOKEN_HELP = (
    "Kaggle needs your API token: on https://www.kaggle.com/settings choose 'Create New Token' and save the "
    "kaggle.json it gives you as ~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY"
)


@dataclass(frozen=True)
class RemoteFile:
    """One file or series of a portal version, before we hashed it."""

    path: str
    locator: str
    size: int | None = None
    portal_hash: str = ""


def _spec_files(spec: SourceSpec) -> list[str]:
    """Names under ``files:`` that select the portal's own files (entries with a ``url`` are extra downloads)."""
    return [str(item["name"]) for item in spec.files if not item.get("url")]


def _extra_urls(spec: SourceSpec) -> list[RemoteFile]:
    return [RemoteFile(str(i["name"]), str(i["url"]), i.get("size")) for i in spec.files if i.get("url")]


def kaggle_auth() -> HTTPBasicAuth | None:
    """``KAGGLE_USERNAME``/``KAGGLE_KEY``, else ``kaggle.json`` in ``$KAGGLE_CONFIG_DIR`` or ``~/.kaggle``."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return HTTPBasicAuth(os.environ["KAGGLE_USERNAME"], os.environ["KAGGLE_KEY"])
    folder = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    try:
        token = json.loads((folder / "kaggle.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(token, dict) and token.get("username") and token.get("key"):
        return HTTPBasicAuth(str(token["username"]), str(token["key"]))
    return None


def auth_for(spec: SourceSpec) -> tuple[HTTPBasicAuth | None, str]:
    """The credentials a portal needs (never printed) and the hint a 401 shows."""
    if spec.portal in ("kaggle", "kaggle-competition"):
        auth = kaggle_auth()
        if auth is None:
            terms = f"; then accept the terms at {spec.terms_url}" if spec.terms_url else ""
            raise PortalError(f"{spec.name}: {KAGGLE_TOKEN_HELP}{terms}.")
        return auth, f"Check or renew your Kaggle API token. {KAGGLE_TOKEN_HELP}."
    return None, ""


def _plain(spec: SourceSpec, value: str, what: str) -> str:
    problem = lexical_problem(value)
    if problem:
        raise PortalError(f"{spec.name}: the portal's {what} {value!r} cannot be a path: {problem}")
    return value


def _zenodo(spec: SourceSpec, session, rewriter: UrlRewriter, version: str) -> tuple[str, list[RemoteFile]]:
    record = version or spec.version or spec.dataset
    data = get_json(session, rewriter.rewrite(f"{ZENODO}{record}"), what=f"{spec.name}: Zenodo record {record}")
    wanted = set(_spec_files(spec))
    found = []
    for item in data.get("files", []):
        key = str(item.get("key", ""))
        if wanted and key not in wanted:
            continue
        checksum = str(item.get("checksum", ""))
        found.append(
            RemoteFile(
                _plain(spec, key, "file name"),
                f"{ZENODO}{record}/files/{quote(key)}/content",
                int(item["size"]) if str(item.get("size", "")).isdigit() else None,
                checksum if checksum.startswith("md5:") else "",
            )
        )
    return str(data.get("id", record)), found


def _figshare(spec: SourceSpec, session, rewriter: UrlRewriter, version: str) -> tuple[str, list[RemoteFile]]:
    number = version or spec.version
    url = f"{FIGSHARE}{spec.dataset}" + (f"/versions/{number}" if number else "")
    data = get_json(session, rewriter.rewrite(url), what=f"{spec.name}: figshare article {spec.dataset}")
    wanted = set(_spec_files(spec))
    found = [
        RemoteFile(
            _plain(spec, str(item["name"]), "file name"),
            str(item["download_url"]),
            int(item["size"]) if str(item.get("size", "")).isdigit() else None,
            f"md5:{item['computed_md5']}" if item.get("computed_md5") else "",
        )
        for item in data.get("files", [])
        if not wanted or item.get("name") in wanted
    ]
    return str(data.get("version", number)), found


def _kaggle(spec: SourceSpec, version: str) -> tuple[str, list[RemoteFile]]:
    number = version or spec.version
    owner_slug = spec.dataset.strip("/")
    query = f"?{urlencode({'datasetVersionNumber': number})}" if number else ""
    slug = owner_slug.rsplit("/", 1)[-1]
    if not _spec_files(spec):
        return number, [RemoteFile(f"{slug}.zip", f"{KAGGLE}datasets/download/{owner_slug}{query}"), *_extra_urls(spec)]
    return number, [
        RemoteFile(name, f"{KAGGLE}datasets/download/{owner_slug}/{quote(name)}{query}") for name in _spec_files(spec)
    ] + _extra_urls(spec)


def _competition(spec: SourceSpec) -> tuple[str, list[RemoteFile]]:
    name = spec.dataset
    if not _spec_files(spec):
        whole = RemoteFile(f"{name}.zip", f"{KAGGLE}competitions/data/download-all/{name}")
        return spec.version, [whole, *_extra_urls(spec)]
    return spec.version, [
        RemoteFile(item, f"{KAGGLE}competitions/data/download/{name}/{quote(item)}") for item in _spec_files(spec)
    ] + _extra_urls(spec)


def tcia_series(spec: SourceSpec, session, rewriter: UrlRewriter) -> list[dict]:
    url = f"{NBIA}getSeries?{urlencode({'Collection': spec.dataset})}"
    data = get_json(session, rewriter.rewrite(url), what=f"{spec.name}: TCIA series of {spec.dataset}")
    return data if isinstance(data, list) else []


def _tcia(spec: SourceSpec, session, rewriter: UrlRewriter) -> tuple[str, list[RemoteFile]]:
    wanted = set(_spec_files(spec))
    found = []
    for series in tcia_series(spec, session, rewriter):
        uid = str(series.get("SeriesInstanceUID", ""))
        if not uid or (wanted and uid not in wanted):
            continue
        path = "/".join(
            _plain(spec, str(series.get(key, "")), key)
            for key in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")
        )
        found.append(RemoteFile(f"{path}.zip", f"{NBIA}getImage?{urlencode({'SeriesInstanceUID': uid})}"))
    return spec.version, found


S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
#: ListObjectsV2 pages followed at most (1,000 keys each): a bound for a listing that never ends
MAX_S3_PAGES = 1000


def s3_base(bucket: str) -> str:
    return f"https://{bucket}.s3.amazonaws.com/"


def _s3(spec: SourceSpec, session, rewriter: UrlRewriter) -> tuple[str, list[RemoteFile]]:
    """Every object of the bucket under the prefixes ``files:`` names (default: the whole bucket)."""
    import xml.etree.ElementTree as ET

    base = s3_base(spec.dataset)
    found: list[RemoteFile] = []
    for prefix in _spec_files(spec) or [""]:
        token = ""
        for _page in range(MAX_S3_PAGES):
            query = {"list-type": "2", "prefix": prefix, **({"continuation-token": token} if token else {})}
            url = rewriter.rewrite(f"{base}?{urlencode(query)}")
            what = f"{spec.name}: S3 listing of {spec.dataset}/{prefix}"
            try:
                response = session.get(url, timeout=60)
            except requests.RequestException as err:
                raise PortalError(f"{what}: cannot reach {url}: {type(err).__name__}") from err
            if response.status_code != 200:
                raise PortalError(f"{what}: HTTP {response.status_code}")
            try:
                tree = ET.fromstring(response.content)
            except ET.ParseError as err:
                raise PortalError(f"{what}: not a ListObjectsV2 answer ({err})") from err
            for item in tree.iter(f"{S3_NS}Contents"):
                key = item.findtext(f"{S3_NS}Key", "")
                size = item.findtext(f"{S3_NS}Size", "")
                if key and not key.endswith("/"):
                    found.append(RemoteFile(_plain(spec, key, "object key"), f"{base}{quote(key)}",
                                            int(size) if size.isdigit() else None))  # fmt: skip
            token = tree.findtext(f"{S3_NS}NextContinuationToken", "")
            if tree.findtext(f"{S3_NS}IsTruncated", "false") != "true" or not token:
                break
        else:
            raise PortalError(
                f"{spec.name}: S3 listing of {spec.dataset}/{prefix} still truncated after {MAX_S3_PAGES} pages"
            )
    return spec.version, found + _extra_urls(spec)


def listing(
    spec: SourceSpec, session: requests.Session, rewriter: UrlRewriter, version: str = ""
) -> tuple[str, list[RemoteFile]]:
    """``(version, files)`` of ``spec`` at ``version`` (default: the pinned one) as the portal lists them."""
    if spec.portal == "zenodo":
        return _zenodo(spec, session, rewriter, version)
    if spec.portal == "figshare":
        return _figshare(spec, session, rewriter, version)
    if spec.portal == "kaggle":
        return _kaggle(spec, version)
    if spec.portal == "kaggle-competition":
        return _competition(spec)
    if spec.portal == "tcia":
        version, series = _tcia(spec, session, rewriter)
        return version, series + _extra_urls(spec)
    if spec.portal == "s3":
        return _s3(spec, session, rewriter)
    if spec.portal == "https":
        return spec.version, _extra_urls(spec)
    if spec.portal == "manual":
        return spec.version, [RemoteFile(str(i["name"]), f"manual:{i['name']}", i.get("size")) for i in spec.files]
    raise PortalError(f"{spec.name}: unknown portal {spec.portal!r}")


def newest_version(spec: SourceSpec, session: requests.Session, rewriter: UrlRewriter) -> str | None:
    """The portal's newest version id of ``spec`` (None where the portal has no versions)."""
    if spec.portal == "zenodo":
        url = rewriter.rewrite(f"{ZENODO}{spec.version or spec.dataset}/versions/latest")
        return str(get_json(session, url, what=f"{spec.name}: newest Zenodo version").get("id", "")) or None
    if spec.portal == "kaggle":
        auth, hint = auth_for(spec)
        url = rewriter.rewrite(f"{KAGGLE}datasets/view/{spec.dataset.strip('/')}")
        data = get_json(
            session, url, what=f"{spec.name}: Kaggle dataset", terms_url=spec.terms_url, auth=auth, hint=hint
        )
        return str(data.get("currentVersionNumber", "")) or None
    if spec.portal == "figshare":
        url = rewriter.rewrite(f"{FIGSHARE}{spec.dataset}")
        return str(get_json(session, url, what=f"{spec.name}: figshare article").get("version", "")) or None
    return None
