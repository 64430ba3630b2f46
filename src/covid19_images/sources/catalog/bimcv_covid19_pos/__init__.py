"""BIMCV-COVID19+ (Valencian Region Medical ImageBank): a manual source, never redistributed.

The research-use agreement forbids redistribution (clause 5) and derivative works (clause 6),
so the user downloads the archives from the B2DROP share after accepting it, and ``fetch
--from DIR`` checks them against the lock. **Written from the documented layout** (the owner's
README, the MIDS/BIDS convention and third-party loaders; no real metadata could be copied):

* images ``[<archive>/]sub-S<n>/ses-E<n>/mod-rx/sub-S<n>_ses-E<n>_run-<n>_bp-chest_vp-<pa|ap|ll>_<cr|dx>.png``
  (CT: ``..._ct.nii.gz`` under ``mod-ct/``), each with a ``.json`` sidecar;
* ``participants.tsv`` (``participant``, ``modality_dicom``, ``age``, ``gender``);
* ``derivatives/labels/labels_covid19_posi.tsv``: one row per report (session), findings as
  UMLS CUIs (``labelCUIS``: ``['C3544344', 'C0521530']`` = ground glass, consolidation) beside
  their Spanish/English terms (``Labels``). The CUIs are kept in ``extra.umls_cuis``, the terms
  in ``extra.findings``; the label is ``covid-19`` for every image of the positive arm (a
  subject is in it for a positive PCR or antibody test, whatever the image shows).

View from the name's ``vp-`` (``ll`` = lateral), modality from ``_cr``/``_dx`` (xray) or
``_ct``. COVIDx lists BIMCV images by file name with ``-corrected`` before ``.png``
(``..._vp-pa_dx-corrected.png``); ``extra.covidx_name`` is the file name, and the COVIDx
matcher compares names without that suffix.
"""

from __future__ import annotations

import ast
import csv
import io
import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_sex, parse_age
from covid19_images.sources.parsing import SourceContext

_IMAGE = re.compile(
    r"^(?P<sub>sub-S\d+)_(?P<ses>ses-E\d+)_run-\d+_bp-chest_(?:vp-(?P<vp>[a-z]+)_)?(?P<mod>cr|dx|ct)"
    r"(?:-[a-z]+)?\.(?:png|nii\.gz)$",
    re.IGNORECASE,
)
VIEWS = {"pa": "PA", "ap": "AP", "ll": "lateral", "lat": "lateral"}
LABEL_FILES = ("labels_covid19_posi.tsv", "labels_covid_posi.tsv")
FINDING = "COVID-19"
MAX_TSV_BYTES = 256 * 1024 * 1024


def read_tsv(ctx: SourceContext, relative: str) -> list[tuple[int, dict[str, str]]]:
    """Rows of a TSV with their line numbers; an unreadable file is reported and yields nothing."""
    try:
        if (ctx.directory / relative).stat().st_size > MAX_TSV_BYTES:
            raise ValueError("larger than any BIMCV table")
        raw = (ctx.directory / relative).read_bytes().decode("utf-8-sig", errors="replace")
    except (OSError, ValueError) as err:
        ctx.report(f"cannot read table: {err}", path=relative, level="error")
        return []
    reader = csv.DictReader(io.StringIO(raw, newline=""), delimiter="\t")
    rows = []
    for row in reader:
        rows.append((reader.line_num, {str(k or "").strip().lower(): str(v or "").strip() for k, v in row.items()}))
    return rows


def cuis_of(raw: str) -> list[str]:
    """``['C3544344', 'C0521530']`` (a Python list literal, as PadChest writes it) -> the CUIs; tolerant of junk."""
    try:
        value = ast.literal_eval(raw) if raw.strip().startswith("[") else raw.split(",")
    except (ValueError, SyntaxError):
        value = re.findall(r"C\d{7}", raw)
    return [v.strip() for v in value if isinstance(v, str) and re.fullmatch(r"C\d{7}", v.strip())]


def read_labels(ctx: SourceContext) -> dict[str, dict]:
    """session (``ses-E<n>``) -> ``{"umls_cuis": [...], "findings": text, "row": where}``."""
    files = [f for f in ctx.files if PurePosixPath(f).name in LABEL_FILES]
    if not files:
        ctx.report(f"no {LABEL_FILES[0]}; images get no UMLS findings")
        return {}
    labels: dict[str, dict] = {}
    for relative in files:
        for line, row in read_tsv(ctx, relative):
            session = row.get("reportid") or row.get("session") or row.get("session_id") or ""
            session = session if session.startswith("ses-") or not session else f"ses-{session}"
            if not session:
                ctx.report("row names no session (ReportID/Session)", path=relative, row=f"{relative} line {line}")
                continue
            raw = row.get("labelcuis", "")
            cuis = cuis_of(raw)
            if raw and not cuis and raw not in ("[]", "nan"):
                ctx.report(f"labelCUIS {raw!r} holds no UMLS CUI", path=relative, row=f"{relative} line {line}")
            labels[session] = {"umls_cuis": cuis, "findings": row.get("labels", ""), "row": f"{relative} line {line}"}
    return labels


def read_participants(ctx: SourceContext) -> dict[str, dict[str, str]]:
    files = [f for f in ctx.files if PurePosixPath(f).name == "participants.tsv"]
    return {row.get("participant", ""): row for relative in files for _line, row in read_tsv(ctx, relative)}


def parse(ctx: SourceContext) -> Iterator[Entry]:
    labels, participants = read_labels(ctx), read_participants(ctx)
    for relative in ctx.files:
        name = PurePosixPath(relative).name
        match = _IMAGE.match(name)
        if not match:
            continue
        parts = PurePosixPath(relative).parts
        if len(parts) < 4 or parts[-4] != match["sub"] or parts[-3] != match["ses"]:
            ctx.report(f"image is not under {match['sub']}/{match['ses']}/; not indexed", path=relative)
            continue
        found = labels.get(match["ses"], {})
        person = participants.get(match["sub"], {})
        modality = "ct" if match["mod"].lower() == "ct" else "xray"
        extra = {"session": match["ses"], "covidx_name": name}
        extra.update({k: v for k, v in found.items() if k != "row" and v})
        label, detail = ctx.label(FINDING, relative, "")
        yield Entry(
            path=relative,
            modality=modality,
            finding=FINDING,
            label=label,
            label_detail=detail,
            view=VIEWS.get((match["vp"] or "").lower(), "axial" if modality == "ct" else "unknown"),
            patient_id=match["sub"],
            age=parse_age(person.get("age", "").strip("[]")),
            sex=harmonise_sex(person.get("gender", "")),
            row=found.get("row", ""),
            extra=extra,
        )
