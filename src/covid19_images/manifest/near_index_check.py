"""Whether a stored near index agrees with what it summarises, before a sync reuses it.

The index (:mod:`covid19_images.manifest.near_index`) is an input like any other: files in the
root's git folder that anyone can edit or damage. What can be re-derived cheaply from the index
itself is checked here, on whole columns (Arrow text, NumPy); what cannot (a pair missing from
the index) is ``verify``'s job, which searches afresh.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from covid19_images.imaging.fingerprints import PHASH_BITS, PHASH_HEX
from covid19_images.manifest.near_index import _POPCOUNT, EDGE_COLUMNS, NearIndex, key_index, packed_bits

#: a whole value that is the lowercase hex of a 256-bit hash (RE2: ``$`` is the end of the text)
_HASH_PATTERN = f"^[0-9a-f]{{{PHASH_HEX}}}$"


def _all_strings(values: np.ndarray) -> bool:
    return pd.api.types.infer_dtype(values, skipna=False) in ("string", "empty")


def _arrow_text(values: np.ndarray):
    """``values`` (all ``str``) as one pyarrow string array, or None when one cannot be encoded (a lone surrogate)."""
    import pyarrow as pa

    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowException, UnicodeError):
        return None


def _not_hashes(values: np.ndarray) -> int | None:
    """Position of the first value that is not a lowercase hex string of a 256-bit hash, or None.

    One regular-expression pass in C over the values as Arrow text (0.03 s for 200,000 hashes; the
    fixed-width NumPy strings used before cost 0.25 s on a first call, most of it faulting in 50 MB
    of code points). Values that are not all strings, or that
    cannot be encoded, are tested one by one.
    """
    if not len(values):
        return None
    text = _arrow_text(values) if _all_strings(values) else None
    if text is None:
        return next((i for i, v in enumerate(values) if not _is_hash(v)), None)
    import pyarrow.compute as pc

    matches = pc.match_substring_regex(text, _HASH_PATTERN).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(~matches.astype(bool))
    return int(rows[0]) if len(rows) else None


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) == PHASH_HEX and all(c in "0123456789abcdef" for c in value)


def _unprefixed(keys: np.ndarray, phashes: np.ndarray) -> np.ndarray:
    """Positions of the keys that do not start with their hash (``phashes`` are checked hashes)."""
    text = _arrow_text(keys) if _all_strings(keys) else None
    if text is not None:  # each key cut to the hash's width and compared, in C
        import pyarrow.compute as pc

        starts = pc.utf8_slice_codeunits(text, 0, PHASH_HEX)
        same = pc.equal(starts, _arrow_text(phashes)).to_numpy(zero_copy_only=False)
        return np.flatnonzero(~same.astype(bool))
    starts = np.array([key[:PHASH_HEX] if isinstance(key, str) else None for key in keys], dtype=object)
    return np.flatnonzero(starts != phashes)


def stored_index_problem(index: NearIndex, accept: int, candidate: int, confirm_mse: float) -> str | None:
    """Why a stored index disagrees with what it summarises, or None when it can be reused.

    The index is an input like any other (a file in the git folder that anyone can edit or
    damage): every fingerprint must be a 256-bit hash that its key starts with, every edge
    must join two fingerprints of the index at the distance their hashes really have (within
    the search radius), once, and its outcome must be the one the settings give for that
    distance and pixel check. What cannot be re-derived cheaply (a pair missing from the
    index) is ``verify``'s job, which searches afresh.
    """
    keys = key_index(index.fingerprints)
    phashes = index.fingerprints.to_numpy(dtype=object)
    bad = _not_hashes(phashes)
    if bad is not None:
        return f"fingerprint {str(keys[bad])[:16]}… is not a {PHASH_BITS}-bit hash"
    wrong = _unprefixed(keys.to_numpy(dtype=object), phashes)
    if len(wrong):
        return f"fingerprint key {str(keys[wrong[0]])[:16]}… does not start with its hash"
    if not keys.is_unique:
        return "a fingerprint is listed twice"
    edges = index.edges
    if list(edges.columns) != list(EDGE_COLUMNS):
        return f"edge columns {list(edges.columns)} are not {list(EDGE_COLUMNS)}"
    if edges.empty:
        return None
    ends = [keys.get_indexer(edges[end].to_numpy(dtype=object)) for end in ("a", "b")]
    if not all((found >= 0).all() for found in ends):
        return "an edge names a fingerprint the index does not hold"
    pairs = pd.DataFrame({"low": edges[["a", "b"]].min(axis=1), "high": edges[["a", "b"]].max(axis=1)})
    if (pairs["low"] == pairs["high"]).any() or pairs.duplicated().any():
        return "an edge joins a fingerprint to itself, or is listed twice"
    words_a = packed_bits(phashes[ends[0]].tolist())
    words_b = packed_bits(phashes[ends[1]].tolist())
    real = _POPCOUNT[words_a ^ words_b].sum(axis=1).astype(np.int64)
    stated = pd.to_numeric(edges["distance"], errors="coerce").to_numpy(dtype=float)
    if not np.array_equal(real.astype(float), stated) or (real > max(accept, candidate)).any():
        return "an edge's distance is not the distance between its hashes"
    status = edges["status"].astype(object).to_numpy()
    mse = pd.to_numeric(edges["mse"], errors="coerce").to_numpy(dtype=float)
    close = real <= accept
    checked = ~np.isnan(mse)
    expected = np.where(
        close, "near", np.where(~checked, "unconfirmed", np.where(mse <= confirm_mse, "near", "rejected"))
    )
    if not np.array_equal(status, expected.astype(object)) or (close & checked).any():
        return "an edge's outcome is not what its distance and pixel check give"
    return None
