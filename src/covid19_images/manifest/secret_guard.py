"""Tell whether a text may hold a source's identifying values without keeping the values.

Why: a source whose DICOM headers carry identifying values (``privacy.scrub_rows`` finds them)
used to be read again at every build that changed anything. Its rows are scrubbed in the
manifest, but :func:`covid19_images.manifest.privacy.redact_problems` removes those values from
*every* problem of the build, so they had to be known, and they must never be written down.
Reading them again cost 0.2 s of a one-image sync at any size, most of it importing pydicom.

A :class:`Guard` is what the source cache keeps instead: one 64-bit digest per value (a
polynomial hash under a random odd base, modulo 2**64) and that base. :func:`guard_hits` hashes
every window of the build's problem texts of each guarded length and looks the digests up. A
text that holds a value always hits (no false negative), so a build whose problems hit reads
the source again and redacts for real; a hit without the value (a collision) only costs that
re-read. The digests hold no value; like any hash of a short string they let someone who
holds the cache confirm a guess, which the source's files next to the cache give away anyway.

Matching is case-insensitive as ``redact`` is (``re.IGNORECASE``): every ASCII character is
hashed as its lower case, and every non-ASCII character, together with the ASCII letters
``i``, ``k`` and ``s`` (which Python's case folding also matches to ``İ``, ``ı``, ``K``
(Kelvin) and ``ſ``), as one wildcard code. That only adds collisions, never misses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_MASK = (1 << 64) - 1
#: the code of every character whose case folding reaches beyond ASCII
_WILD = 128
#: the code between two texts (and of NUL): no window across two texts matches a value
_BREAK = 129
_CODES = np.array(
    [_BREAK if c == 0 else _WILD if chr(c) in "iIkKsS" else ord(chr(c).lower()) for c in range(128)], dtype=np.uint64
)


def _codes(text: str) -> np.ndarray:
    """``text`` as the codes the digests are taken over (see the module docstring)."""
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return np.where(points < 128, _CODES[np.minimum(points, 127)], np.uint64(_WILD)).astype(np.uint64)


def _digest(codes: Sequence[int], base: int) -> int:
    value = 0
    for code in codes:
        value = (value * base + code + 1) & _MASK
    return value


@dataclass(frozen=True)
class Guard:
    """Digests of one source's identifying values: ``digests[length]`` for values of that length."""

    base: int
    digests: Mapping[int, frozenset[int]]

    def to_json(self) -> dict:
        return {"base": self.base, "digests": {str(n): sorted(d) for n, d in sorted(self.digests.items())}}

    @classmethod
    def from_json(cls, data: object) -> Guard | None:
        """The guard saved by :meth:`to_json`; None for anything else (the source is then read again)."""
        try:
            base = int(data["base"])  # type: ignore[index]
            digests = {int(n): frozenset(int(d) for d in items) for n, items in data["digests"].items()}  # type: ignore[index]
        except (TypeError, KeyError, ValueError, AttributeError):
            return None
        if not base & 1 or not 0 < base <= _MASK or not digests or min(digests) < 1:
            return None
        if not all(0 <= d <= _MASK for items in digests.values() for d in items):
            return None  # numpy could not hold it: refused here, never a crash in the build
        return cls(base, digests)


def guard_of(secrets: Iterable[str]) -> Guard:
    """A guard of ``secrets`` under a fresh random base."""
    base = int.from_bytes(os.urandom(8), "little") | 1
    digests: dict[int, set[int]] = {}
    for secret in {s for s in secrets if s}:
        digests.setdefault(len(secret), set()).add(_digest(_codes(secret).tolist(), base))
    return Guard(base, {n: frozenset(d) for n, d in digests.items()})


def _window_digests(codes: np.ndarray, base: int) -> Callable[[int], np.ndarray]:
    """``length ->`` the digest of every window of that many codes (modulo 2**64: numpy wraps).

    With ``y[j] = (codes[j] + 1) * base**-j`` and ``S`` its running sum, the window starting at
    ``i`` is ``(S[i + length] - S[i]) * base**(i + length - 1)``: the digest of those codes. The
    sums and powers depend on the base only, so they are made once for all of a guard's lengths.
    """
    count = len(codes)
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(count, base, dtype=np.uint64))  # base**1 .. base**count
        inverse = np.cumprod(np.full(count, pow(base, -1, 1 << 64), dtype=np.uint64))
        scaled = (codes + np.uint64(1)) * np.concatenate(([np.uint64(1)], inverse[:-1]))
        running = np.concatenate(([np.uint64(0)], np.cumsum(scaled, dtype=np.uint64)))
        powers = np.concatenate(([np.uint64(1)], powers))

    def windows(length: int) -> np.ndarray:
        with np.errstate(over="ignore"):
            return (running[length:] - running[:-length]) * powers[length - 1 : count]

    return windows


def guard_hits(texts: Iterable[str], guards: Mapping[str, Guard]) -> set[str]:
    """The names of the guards whose values may occur in any of ``texts`` (each text on its own)."""
    if not guards:
        return set()
    codes = _codes("\0".join(texts))
    hits: set[str] = set()
    for name, guard in guards.items():
        windows = _window_digests(codes, guard.base)
        for length, digests in guard.digests.items():
            wanted = np.fromiter(digests, dtype=np.uint64, count=len(digests))
            if length <= len(codes) and np.isin(windows(length), wanted).any():
                hits.add(name)
                break
    return hits
