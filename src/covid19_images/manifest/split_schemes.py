"""Named split schemes a loader can serve (``split_scheme=``).

* ``default``: the stable patient/duplicate-group split (80/10/10) stored in the manifest.
* ``official``: the upstream's own split where the source has one (``""`` elsewhere).
* ``loso:<source>``: leave one source out. Every row of ``<source>`` is ``test``; all other
  rows are ``train``/``val`` by the hash of their split group (8:1, the default ratio
  without its test share). A split group that holds rows of ``<source>`` *and* of other
  sources (a copy of a held-out picture in another source, or a shared patient) would leak
  the test set into training, so its rows from the other sources are dropped (split ``""``,
  served in no split); :func:`loso_dropped` counts them.
* ``covidx`` / ``covidx:<version>``: the COVIDx train/test lists (lindawangg/COVID-Net
  ``labels/``) matched to our rows by :mod:`covid19_images.manifest.covidx`; needs the
  ``covidx-splits`` source checked out. Rows COVIDx does not list get ``""``; there is no
  ``val``. Without a version the newest ``<n>A`` label set is used (versions compare by
  their leading number, so ``10A`` is newer than ``9A``). ``covidx:CXR-4`` (``CXR-3``, and
  COVIDx CT's ``CT-3A``) is a prebuilt release: its own train/val/test lists over the images of
  the catalog source that holds it (``covidx_release:`` in that source's source.yaml).

Every scheme returns one value per manifest row, in the manifest's order.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from covid19_images.core.paths import find_root
from covid19_images.manifest import covidx
from covid19_images.manifest.splits import DEFAULT_RATIOS, bucket

LOSO_PREFIX = "loso:"
COVIDX_SOURCE = "covidx-splits"


def _train_share() -> float:
    shares = dict(DEFAULT_RATIOS)
    return shares["train"] / (shares["train"] + shares["val"])


def loso_split(manifest: pd.DataFrame, source: str) -> pd.Series:
    """Leave-one-source-out split (see the module docstring).

    Args:
        manifest: the manifest (``source`` and ``split_group`` are used).
        source: registry name of the source served as ``test``.

    Raises:
        ValueError: the manifest holds no row of ``source``.
    """
    if source not in set(manifest["source"]):
        known = ", ".join(sorted(set(manifest["source"])))
        raise ValueError(f"split_scheme 'loso:{source}': no rows of source {source!r} (sources: {known})")
    held = manifest["source"] == source
    touched = set(manifest.loc[held, "split_group"])
    share = _train_share()
    split = manifest["split_group"].map(lambda key: "train" if bucket(str(key)) < share else "val").astype(object)
    split[held] = "test"
    split[~held & manifest["split_group"].isin(touched)] = ""
    return split


def loso_dropped(manifest: pd.DataFrame, source: str) -> pd.Series:
    """Rows of other sources dropped by ``loso:<source>`` because they share a split group with it, per source."""
    held = manifest["source"] == source
    touched = set(manifest.loc[held, "split_group"])
    dropped = manifest[~held & manifest["split_group"].isin(touched)]
    return dropped["source"].value_counts().sort_index()


def _version_order(version: str) -> tuple[int, str]:
    number = re.match(r"\d+", version)
    return (int(number.group()) if number else -1, version)


def release_sources() -> dict[str, str]:
    """COVIDx release (``CXR-4``) -> the catalog source holding its prebuilt images and label files."""
    from covid19_images.sources.catalog import catalog

    return {str(e["covidx_release"]): name for name, e in catalog().items() if e.get("covidx_release")}


def _covidx_checkout(version: str, root: Path | None) -> tuple[Path, str]:
    """(the folder holding the version's label files, the version: the newest ``<n>A`` when none is named)."""
    if covidx.is_release(version):
        holder = release_sources().get(version.upper())
        if holder is None:
            known = ", ".join(sorted(release_sources())) or "none"
            raise ValueError(f"split_scheme 'covidx:{version}': no catalog source holds that release (known: {known})")
        directory = find_root(root) / "datasets" / holder
        if not directory.is_dir() or not any(directory.iterdir()):
            raise ValueError(
                f"split_scheme 'covidx:{version}' needs the {holder} source fetched at {directory}; "
                f"run `covid19-images fetch {holder}`"
            )
        return directory, version.upper()
    directory = find_root(root) / "datasets" / COVIDX_SOURCE
    if not directory.is_dir() or not any(directory.iterdir()):
        raise ValueError(
            f"split_scheme 'covidx' needs the {COVIDX_SOURCE} source checked out at {directory}; "
            f"run `covid19-images sync {COVIDX_SOURCE}`"
        )
    if not version:
        versions = [v for v in covidx.label_files_in(directory) if v.endswith("A")]
        if not versions:
            raise ValueError(f"no COVIDx <n>A label files in {directory}; name a version: covidx:<version>")
        version = max(versions, key=_version_order)
    return directory, version


def covidx_split(manifest: pd.DataFrame, version: str = "", root: Path | None = None) -> pd.Series:
    """The COVIDx split (``"train"``/``"test"``/``""``) of every row.

    Args:
        manifest: the manifest (``source``, ``path``, ``label`` and ``patient_id`` are used).
        version: a COVIDx label-file version such as ``9A``; ``""`` picks the newest ``<n>A``.
        root: the project root holding ``datasets/covidx-splits`` (default: :func:`find_root`).

    Raises:
        ValueError: the source is not checked out, or has no such version.
    """
    directory, version = _covidx_checkout(version, root)
    try:
        series, _report = covidx.covidx_split(manifest, directory, version)
    except KeyError as err:
        raise ValueError(str(err).strip("'\"")) from err
    return series


def resolve_labels(manifest: pd.DataFrame, scheme: str = "default", *, root: Path | None = None) -> pd.Series | None:
    """The label a scheme serves each row with (``""``: the row's own), or None when the scheme keeps every label.

    Only COVIDx labels: a row it lists is served with COVIDx's label, so images we hold that
    have no upstream metadata row (manifest label ``unknown``) are served as COVIDx says.
    """
    if scheme != "covidx" and not scheme.startswith("covidx:"):
        return None
    directory, version = _covidx_checkout(scheme.partition(":")[2], root)
    try:
        return covidx.covidx_labels(manifest, directory, version)
    except KeyError as err:
        raise ValueError(str(err).strip("'\"")) from err


def resolve_split(manifest: pd.DataFrame, scheme: str = "default", *, root: Path | None = None) -> pd.Series:
    """The split (``"train"``/``"val"``/``"test"``/``""``) of every row under ``scheme``.

    Args:
        manifest: the manifest to split.
        scheme: ``default``, ``official``, ``loso:<source>``, ``covidx`` or ``covidx:<version>``.
        root: project root, only for ``covidx`` (where its label files are checked out).

    Raises:
        ValueError: an unknown scheme, or one that cannot be served (see each scheme).
    """
    if scheme == "default":
        return manifest["split"]
    if scheme == "official":
        return manifest["official_split"]
    if scheme.startswith(LOSO_PREFIX):
        return loso_split(manifest, scheme[len(LOSO_PREFIX) :])
    if scheme == "covidx" or scheme.startswith("covidx:"):
        return covidx_split(manifest, scheme.partition(":")[2], root)
    raise ValueError(
        f"unknown split_scheme {scheme!r}; use 'default', 'official', 'loso:<source>' or 'covidx[:<version>]'"
    )
