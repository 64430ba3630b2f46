"""The manifest sync last wrote, kept beside the caches as an Arrow file that the next sync reads.

Every sync that builds starts from the previous manifest. Reading ``manifests/manifest.csv`` costs
its SHA-256 (the integrity check) and a CSV parse of every cell: 0.46-0.59 s at 200,000 rows
(121 MB), whatever changed. Sync writes that file itself, so right after writing it, it keeps the
same frame as a zstd-compressed Arrow IPC file in the root's cache folder (30 MB at 200,000 rows,
read in about 0.06 s), with the manifest's digest and its file identity then (device, inode, size,
modification and change times: :func:`~covid19_images.manifest.integrity.file_identity`, the facts
git's index trusts to skip reading a file).

The next sync takes the copy only while the manifest on disk keeps that identity (nobody replaced,
edited or restored it), was last changed before the state file was written (git's rule for "racily
clean" files: a change within the same clock tick would keep the timestamps) and its integrity
record still vouches for that digest. Anything else - a
``git checkout -- manifests/``, a hand edit, a root copied elsewhere, a missing, torn or unreadable
copy, another code's schema - reads the CSV as before. The state file is removed before a new copy
is written and written after it, so a sync killed in between leaves no copy that is believed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from covid19_images.core.atomic import write_atomic
from covid19_images.core.schema import MANIFEST_COLUMNS
from covid19_images.manifest import integrity
from covid19_images.manifest.io import MANIFEST_IDENTITY, MANIFEST_SHA256, in_manifest_order, text_dtype

COPY_FILE = "manifest-copy.arrow"
STATE_FILE = "manifest-copy.json"
#: Bump when the copy's layout changes.
VERSION = 1


def save_copy(cache_dir: Path, manifest: Path, frame: pd.DataFrame, digest: str) -> None:
    """Keep ``frame`` (just written to ``manifest`` as bytes hashing to ``digest``) for the next sync.

    A copy that cannot be written costs the next sync a CSV read, never this sync its manifest.
    """
    import pyarrow as pa
    import pyarrow.feather as feather

    state = Path(cache_dir) / STATE_FILE
    try:
        state.unlink(missing_ok=True)
        written = in_manifest_order(frame[list(MANIFEST_COLUMNS)]).reset_index(drop=True)
        sink = pa.BufferOutputStream()
        feather.write_feather(pa.Table.from_pandas(written, preserve_index=False), sink, compression="zstd")
        write_atomic(Path(cache_dir) / COPY_FILE, sink.getvalue().to_pybytes())
        facts = {
            "version": VERSION,
            "sha256": digest,
            "identity": list(integrity.file_identity(Path(manifest).stat())),
            "rows": len(written),
            "columns": list(MANIFEST_COLUMNS),
        }
        write_atomic(state, json.dumps(facts, sort_keys=True).encode("utf-8"))
    except (OSError, pa.ArrowException, ValueError, TypeError):
        state.unlink(missing_ok=True)


def load_copy(cache_dir: Path | None, manifest: Path) -> pd.DataFrame | None:
    """The frame :func:`~covid19_images.manifest.io.read_manifest` would give for ``manifest``, from
    the copy, or None when the copy is not this very file's (then read the CSV)."""
    if cache_dir is None:
        return None
    import pyarrow as pa
    import pyarrow.feather as feather

    try:
        state = Path(cache_dir) / STATE_FILE
        facts = json.loads(state.read_bytes())
        # the state file is written after the identity is taken: a manifest whose timestamps are not
        # older than it could have changed since within one clock tick, unseen (git's "racy" rule)
        status = Path(manifest).stat()
        if max(status.st_mtime_ns, status.st_ctime_ns) >= state.stat().st_mtime_ns:
            return None
        identity = integrity.file_identity(status)
        if not _matches(facts, identity):
            return None
        if not integrity.vouches_for(Path(manifest), facts["sha256"]):
            return None
        table = feather.read_table(Path(cache_dir) / COPY_FILE, memory_map=False)  # a sync may replace it
        text = text_dtype()
        frame = table.to_pandas(types_mapper=lambda kind: text if kind in (pa.string(), pa.large_string()) else None)
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None
    if len(frame) != facts["rows"] or list(frame.columns) != list(MANIFEST_COLUMNS):
        return None
    if any(dtype != text for dtype in frame.dtypes):
        return None
    frame.attrs[MANIFEST_SHA256] = facts["sha256"]
    frame.attrs[MANIFEST_IDENTITY] = identity
    return frame


def _matches(facts: object, identity: tuple[int, ...]) -> bool:
    """Whether the state file is this version's, for this code's columns, and for the file as it is now."""
    return (
        isinstance(facts, dict)
        and facts.get("version") == VERSION
        and facts.get("columns") == list(MANIFEST_COLUMNS)
        and isinstance(facts.get("sha256"), str)
        and isinstance(facts.get("rows"), int)
        and facts.get("identity") == list(identity)
    )
