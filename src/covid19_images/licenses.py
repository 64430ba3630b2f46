"""Per-image licences normalised to SPDX-like ids, so ``licenses=`` filters mean one thing."""

from __future__ import annotations

import re

_KNOWN: dict[str, str] = {
    "cc by-nc-sa": "CC-BY-NC-SA-4.0",
    "cc by-nc-sa 4.0": "CC-BY-NC-SA-4.0",
    "cc by-nc-sa 3.0": "CC-BY-NC-SA-3.0",
    "cc by-nc-nd": "CC-BY-NC-ND-4.0",
    "cc by-nc-nd 4.0": "CC-BY-NC-ND-4.0",
    "cc by-nc-nd 3.0": "CC-BY-NC-ND-3.0",
    "cc by-nc": "CC-BY-NC-4.0",
    "cc by-nc 4.0": "CC-BY-NC-4.0",
    "cc by-nc -sa 4.0": "CC-BY-NC-SA-4.0",
    "cc by": "CC-BY-4.0",
    "cc by 4.0": "CC-BY-4.0",
    "cc by 3.0": "CC-BY-3.0",
    "cc by-sa": "CC-BY-SA-4.0",
    "cc by-sa 4.0": "CC-BY-SA-4.0",
    "cc0": "CC0-1.0",
    "cc0 1.0": "CC0-1.0",
    "apache 2.0": "Apache-2.0",
    "apache-2.0": "Apache-2.0",
    "unlicense": "Unlicense",
    "the unlicense": "Unlicense",
    "listed as authorized for everyone": "custom-authorized-for-everyone",
    "covid-19 emergency license": "custom-covid19-emergency",
    "research-only": "research-only",
    "per-image": "unknown",
    "none": "unknown",
    "unknown": "unknown",
    "": "unknown",
}


def normalise_license(raw: str, default: str = "") -> str:
    """SPDX-like id for an upstream licence string; the source default when the row has none."""
    key = re.sub(r"\s+", " ", raw.strip().lower())
    if not key or key in ("none", "?", "unknown"):
        return normalise_license(default) if default and default.strip().lower() != raw.strip().lower() else "unknown"
    if key in _KNOWN:
        return _KNOWN[key]
    if re.fullmatch(r"[A-Za-z0-9.+-]+", raw.strip()):
        return raw.strip()  # already an SPDX-like id
    return "other:" + re.sub(r"[^a-z0-9.+-]+", "-", key).strip("-")
