"""Per-image licences normalised to SPDX-like ids, so ``licenses=`` filters mean one thing.

Upstream spells the same licence many ways (``CC BY-NC-SA``, ``CC BY-NC -SA 4.0``,
``CC-BY-NC-ND``, a creativecommons.org URL). Creative Commons strings are parsed rather than
listed, so an unseen spelling still maps. A licence stated without a version stays without
one (``CC-BY-NC-SA``): ieee8023's unversioned "CC BY-NC-SA" rows come from Radiopaedia
(3.0) as well as from 4.0 papers, and guessing would misstate the terms. Anything we cannot
read is kept as ``other:<slug>`` (visible, filterable) and a missing licence is ``unknown``.
"""

from __future__ import annotations

import re

UNKNOWN = "unknown"
#: Values that mean "no licence stated" (pocus writes ``None``, ieee8023 leaves a blank or a space).
_MISSING = {"", "none", "n/a", "n.a.", "na", "?", "unknown", "not stated", "-", "per-image"}
_EXACT: dict[str, str] = {
    "cc0": "CC0-1.0",
    "cc0 1.0": "CC0-1.0",
    "cc-0": "CC0-1.0",
    "public domain": "public-domain",
    "apache 2.0": "Apache-2.0",
    "apache-2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "mit": "MIT",
    "unlicense": "Unlicense",
    "the unlicense": "Unlicense",
    "agpl-3.0": "AGPL-3.0",
    "listed as authorized for everyone": "custom-authorized-for-everyone",
    "covid-19 emergency license": "custom-covid19-emergency",
    "research-only": "research-only",
    "research only": "research-only",
}
_CC_TERMS = ("by", "nc", "nd", "sa")
_CC_TEXT = re.compile(
    r"^(?:cc|creative commons)[\s-]*(?P<terms>by(?:[\s-]*(?:nc|nd|sa))*)"
    r"(?:[\s-]*(?:v|version)?[\s-]*(?P<version>\d(?:\.\d)?))?"
    r"(?:[\s-]*(?:international|unported|generic))?$"
)
_CC_URL = re.compile(
    r"creativecommons\.org/(?:licenses/(?P<terms>by(?:-(?:nc|nd|sa))*)/(?P<version>\d\.\d)|publicdomain/zero/1\.0)"
)
_SPDX_LIKE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")


def _cc_id(terms: str, version: str | None) -> str | None:
    parts = [t for t in re.split(r"[\s-]+", terms) if t]
    if not parts or parts[0] != "by" or any(p not in _CC_TERMS for p in parts) or len(set(parts)) != len(parts):
        return None
    if "nd" in parts and "sa" in parts:
        return None  # no such licence
    ordered = ["by", *[t for t in ("nc", "nd", "sa") if t in parts]]
    version = version if version is None or "." in version else f"{version}.0"
    return "CC-" + "-".join(p.upper() for p in ordered) + (f"-{version}" if version else "")


def parse_license(raw: str) -> str:
    """SPDX-like id for one upstream licence string, ``unknown`` when it says nothing."""
    text = re.sub(r"\s+", " ", str(raw or "").strip())
    key = text.lower().rstrip(".")
    if key in _MISSING:
        return UNKNOWN
    if key in _EXACT:
        return _EXACT[key]
    url = _CC_URL.search(key)
    if url:
        return (
            "CC0-1.0" if url.group("terms") is None else (_cc_id(url.group("terms"), url.group("version")) or UNKNOWN)
        )
    match = _CC_TEXT.match(key)
    if match:
        cc = _cc_id(match.group("terms"), match.group("version"))
        if cc:
            return cc
    if _SPDX_LIKE.fullmatch(text) and any(c.isupper() or c.isdigit() for c in text):
        return text  # already an SPDX-like id such as CC-BY-4.0 or Unlicense
    return "other:" + re.sub(r"[^a-z0-9.+]+", "-", key).strip("-")


def normalise_license(raw: str, default: str = "") -> str:
    """The row's own licence if it states one, else the source's default from sources.yaml.

    ``per-image`` as a source default means "only the rows know", so a row without one is
    ``unknown`` rather than inheriting anything.
    """
    own = parse_license(raw)
    if own != UNKNOWN:
        return own
    return parse_license(default) if default else UNKNOWN


def license_terms(license_id: str) -> dict[str, bool | None]:
    """What an id allows, for reports: ``commercial``, ``derivatives``, ``share_alike`` (None = not known)."""
    if license_id.startswith("CC-BY"):
        parts = license_id.split("-")
        return {"commercial": "NC" not in parts, "derivatives": "ND" not in parts, "share_alike": "SA" in parts}
    if license_id in ("CC0-1.0", "public-domain", "Unlicense", "MIT", "Apache-2.0"):
        return {"commercial": True, "derivatives": True, "share_alike": False}
    if license_id == "AGPL-3.0":
        return {"commercial": True, "derivatives": True, "share_alike": True}
    if license_id == "research-only":
        return {"commercial": False, "derivatives": None, "share_alike": None}
    return {"commercial": None, "derivatives": None, "share_alike": None}


def is_unknown(license_id: str) -> bool:
    """True for rows whose licence nobody stated (custom and ``other:`` ids are stated, just unusual)."""
    return not license_id or license_id == UNKNOWN
