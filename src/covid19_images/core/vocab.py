"""One label / view vocabulary across sources.

A raw finding is matched case-insensitively after trimming. Anything not in the table
becomes ``unknown`` and is reported by ``sync``: unknown is never silently turned into
``normal`` (a negative scan means nothing, an unlabelled one even less).
"""

from __future__ import annotations

import re

#: raw finding (lower-case) -> (label, label_detail). Documented in manifests/README.md.
FINDING_LABELS: dict[str, tuple[str, str]] = {
    # COVID-19 in every spelling seen upstream
    "covid-19": ("covid-19", ""),
    "covid19": ("covid-19", ""),
    "cov": ("covid-19", ""),
    "covid-19, ards": ("covid-19", "ards"),
    "pneumonia/viral/covid-19": ("covid-19", ""),
    "positive": ("covid-19", ""),
    # non-COVID pneumonia, subtype kept in label_detail
    "pneumonia": ("pneumonia", ""),
    "viral pneumonia": ("pneumonia", "viral"),
    "viralpneumonia": ("pneumonia", "viral"),
    "virus": ("pneumonia", "viral"),
    "vir": ("pneumonia", "viral"),
    "bacterial pneumonia": ("pneumonia", "bacterial"),
    "bacterialpneumonia": ("pneumonia", "bacterial"),
    "bacteria": ("pneumonia", "bacterial"),
    "bacterial": ("pneumonia", "bacterial"),
    "viral": ("pneumonia", "viral"),
    "fungal": ("pneumonia", "fungal"),
    "pneu": ("pneumonia", "bacterial"),
    "sars": ("pneumonia", "viral/sars"),
    "mers": ("pneumonia", "viral/mers"),
    "mers-cov": ("pneumonia", "viral/mers"),
    "influenza": ("pneumonia", "viral/influenza"),
    "varicella": ("pneumonia", "viral/varicella"),
    "herpes": ("pneumonia", "viral/herpes"),
    "streptococcus": ("pneumonia", "bacterial/streptococcus"),
    "klebsiella": ("pneumonia", "bacterial/klebsiella"),
    "legionella": ("pneumonia", "bacterial/legionella"),
    "mycoplasma": ("pneumonia", "bacterial/mycoplasma"),
    "mycoplasma bacterial pneumonia": ("pneumonia", "bacterial/mycoplasma"),
    "e.coli": ("pneumonia", "bacterial/e.coli"),
    "staphylococcus": ("pneumonia", "bacterial/staphylococcus"),
    "staphylococcus/mrsa": ("pneumonia", "bacterial/mrsa"),
    "chlamydophila": ("pneumonia", "bacterial/chlamydophila"),
    "nocardia": ("pneumonia", "bacterial/nocardia"),
    "tuberculosis": ("pneumonia", "bacterial/tuberculosis"),
    "pneumocystis": ("pneumonia", "fungal/pneumocystis"),
    "aspergillosis": ("pneumonia", "fungal/aspergillosis"),
    "lipoid": ("pneumonia", "lipoid"),
    "aspiration": ("pneumonia", "aspiration"),
    # RSNA's "Lung Opacity" (read as pneumonia, as COVID-Net does) and the Radiography DB's
    # Lung_Opacity folder ("non-COVID lung infection", drawn from RSNA)
    "lung opacity": ("pneumonia", "lung opacity"),
    "lung_opacity": ("pneumonia", "lung opacity"),
    # normal: only where the source says so explicitly
    "no finding": ("normal", ""),
    "normal": ("normal", ""),
    "regular": ("normal", ""),
    "reg": ("normal", ""),
    "negative": ("normal", ""),
    # other, not pneumonia
    "ards": ("other", "ards"),
    # RSNA: abnormal, but no opacity suspicious for pneumonia
    "no lung opacity / not normal": ("other", "not normal"),
    # UCSD COVID-CT's CT_NonCOVID: normal scans and other lung diseases, not told apart
    "noncovid": ("other", "non-covid"),
    "non-covid": ("other", "non-covid"),
    # NIH ChestX-ray14's 14 findings besides Pneumonia and "No Finding" (radiological signs,
    # text-mined from reports; consolidation/infiltration are kept apart from pneumonia as NIH does)
    "atelectasis": ("other", "atelectasis"),
    "cardiomegaly": ("other", "cardiomegaly"),
    "consolidation": ("other", "consolidation"),
    "edema": ("other", "edema"),
    "effusion": ("other", "effusion"),
    "emphysema": ("other", "emphysema"),
    "fibrosis": ("other", "fibrosis"),
    "hernia": ("other", "hernia"),
    "infiltration": ("other", "infiltration"),
    "mass": ("other", "mass"),
    "nodule": ("other", "nodule"),
    "pleural_thickening": ("other", "pleural_thickening"),
    "pleural thickening": ("other", "pleural_thickening"),
    "pneumothorax": ("other", "pneumothorax"),
    # no usable label
    "": ("unknown", ""),
    "todo": ("unknown", ""),
    "unknown": ("unknown", ""),
    "inconclusive": ("unknown", ""),
}

_HIERARCHY_ROOTS = {"pneumonia", "viral", "bacterial", "fungal", "lipoid", "aspiration"}


def harmonise_finding(raw: str) -> tuple[str, str, bool]:
    """Map a raw upstream finding to ``(label, label_detail, known)``.

    Handles the hierarchical spelling the newest ieee8023 metadata uses
    (``Pneumonia/Viral/COVID-19``) by looking at its most specific known part, so the same
    image keeps its label when upstream changes schema.
    """
    key = " ".join(raw.strip().lower().split())
    if key in FINDING_LABELS:
        label, detail = FINDING_LABELS[key]
        return label, detail, True
    if "covid-19" in key or "covid19" in key:
        return "covid-19", "", True
    if "/" in key:
        parts = [p.strip() for p in key.split("/") if p.strip()]
        for part in reversed(parts):
            if part in FINDING_LABELS and part not in _HIERARCHY_ROOTS:
                label, detail = FINDING_LABELS[part]
                if label == "pneumonia" and not detail:
                    detail = "/".join(p for p in parts[1:])
                return label, detail, True
        if parts and parts[0] == "pneumonia":
            return "pneumonia", "/".join(parts[1:]), True
        if parts and parts[0] in FINDING_LABELS:
            label, detail = FINDING_LABELS[parts[0]]
            return label, detail or "/".join(parts[1:]), True
    return "unknown", "", False


#: raw view (lower-case, spaces collapsed) -> harmonised view.
VIEWS: dict[str, str] = {
    "pa": "PA",
    "ap": "AP",
    "ap supine": "AP supine",
    "ap erect": "AP",
    "ap semi erect": "AP",
    "l": "lateral",
    "ll": "lateral",
    "lateral": "lateral",
    "axial": "axial",
    "coronal": "coronal",
    "sagittal": "sagittal",
    "convex": "convex",
    "linear": "linear",
    "": "unknown",
    "?": "unknown",
    "unknown": "unknown",
}

VIEW_VOCABULARY = ("PA", "AP", "AP supine", "lateral", "axial", "coronal", "sagittal", "convex", "linear", "unknown")


def harmonise_view(raw: str) -> str:
    """Map an upstream view/projection spelling to the shared vocabulary (``unknown`` if unseen)."""
    key = " ".join(re.split(r"[\s_]+", raw.strip().lower()))
    return VIEWS.get(key, "unknown")


_AGE_UNIT = {"y": 1.0, "m": 1 / 12, "w": 1 / 52, "d": 1 / 365}


def parse_age(raw: str) -> float | None:
    """Age in years from the spellings upstreams use (``65``, ``060Y``, ``003M``, ``50+``); None if not a number."""
    text = raw.strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([ymwd]?)\+?", text)
    if not match:
        return None
    value = float(match.group(1)) * _AGE_UNIT.get(match.group(2) or "y", 1.0)
    return round(value, 3)


def harmonise_sex(raw: str) -> str:
    """``M``/``F`` or empty."""
    key = raw.strip().lower()
    return {"m": "M", "male": "M", "f": "F", "female": "F"}.get(key, "")
