"""NIH ChestX-ray14 (Kaggle 5% sample): ``sample_labels.csv`` plus ``sample/images/*.png``.

The labels file (CRLF, headers with spaces and ``#``) lists every image of the release, but a
checkout rarely holds them all: the sample repository is 2.25 GB and copies are often partial.
Absent images are therefore summarised in ONE problem instead of thousands; images that exist
but are not listed are summarised the same way.

Where the images sit differs between copies (Kaggle: ``sample/images/``; the NIH release:
``images/``; some re-uploads: anywhere), so a file is looked up at those two places first and
then by its unique base name anywhere in the checkout.

``Finding Labels`` is a ``|``-separated multi-label string mined from reports (15 values incl.
``No Finding``). It is kept whole in ``finding``; the label is ``normal`` only for ``No
Finding``, ``pneumonia`` whenever ``Pneumonia`` is one of the labels, ``other`` otherwise. The
data predate 2019, so a COVID-19 label can only be an error. ``Patient Age`` carries a unit
(``060Y``, ``013M``, ``001D``) and has implausible values (``411Y``), which are dropped and
reported. The full release's ``Data_Entry_2017.csv`` has the same columns and is accepted too.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.files import JPEG_PNG_SUFFIXES, is_image_name
from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_finding, harmonise_sex, harmonise_view, parse_age
from covid19_images.sources.parsing import SourceContext, column, column_name

LABEL_FILES = ("sample_labels.csv", "sample/sample_labels.csv", "Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv")
IMAGE_DIRS = ("sample/images", "images")
MAX_AGE_YEARS = 120.0
EXAMPLES = 3


#: registry options and their types (checked when the registry loads)
OPTIONS = {"labels": str}


def _labels_file(ctx: SourceContext) -> str | None:
    configured = ctx.option("labels")
    for candidate in ((configured,) if configured else ()) + LABEL_FILES:
        if ctx.exists(candidate):
            return candidate
    return None


def _locate(ctx: SourceContext, name: str) -> tuple[str, int]:
    """``(relative path, number of candidates)``; path empty if absent or ambiguous."""
    for folder in IMAGE_DIRS:
        if ctx.exists(f"{folder}/{name}"):
            return f"{folder}/{name}", 1
    candidates = [path for path in ctx.files_named(name) if is_image_name(path, JPEG_PNG_SUFFIXES)]
    return (candidates[0], 1) if len(candidates) == 1 else ("", len(candidates))


def harmonise_labels(finding: str) -> tuple[str, str, str]:
    """``(label, label_detail, why unknown)`` for a ``|``-separated NIH finding string."""
    parts = [p.strip() for p in finding.split("|") if p.strip()]
    if not parts:
        return "unknown", "", "empty finding"
    mapped = [harmonise_finding(p) for p in parts]
    unmapped = [p for p, (_label, _detail, known) in zip(parts, mapped, strict=True) if not known]
    if unmapped:
        return "unknown", "", f"unmapped {', '.join(map(repr, unmapped))}"
    labels = {label for label, _detail, _known in mapped}
    if "covid-19" in labels:
        return "unknown", "", "COVID-19 in pre-2020 data"
    if "unknown" in labels:
        return "unknown", "", "a part says the image is unlabelled"
    if "normal" in labels:
        return ("normal", "", "") if labels == {"normal"} else ("unknown", "", "No Finding combined with findings")
    if "pneumonia" in labels:
        return "pneumonia", "", ""
    return "other", "|".join(detail for _label, detail, _known in mapped), ""


def _age(raw: str) -> tuple[float | None, str]:
    """Age in years and, if it cannot be used, why."""
    age = parse_age(raw)
    if raw and age is None:
        return None, f"unreadable age {raw!r}"
    if age is not None and age > MAX_AGE_YEARS:
        return None, f"implausible age {raw!r}; left empty"
    return age, ""


def _row_entries(ctx: SourceContext, row: dict[str, str], labels: str) -> Iterator[Entry]:
    """The entry of one labels row whose image is in the checkout, one at a time through the row memo
    (absent images are summarised by :func:`parse`, ambiguous ones reported here)."""
    name = column(row, "Image Index")
    if not name:
        ctx.report("row has no Image Index", path=labels, row=row["_row"])
        return
    relative, candidates = _locate(ctx, name)
    if candidates > 1:
        ctx.report(f"{name} found in {candidates} places; skipped", path=labels, row=row["_row"])
        return
    if relative:
        yield from _entry(ctx, row, relative, labels)


def _entry(ctx: SourceContext, row: dict[str, str], relative: str, labels: str) -> Iterator[Entry]:
    where = row["_row"]
    finding = column(row, "Finding Labels")
    label, detail, why = harmonise_labels(finding)
    if why:
        ctx.report(f"finding {finding!r}: {why} -> unknown", path=labels, row=where)
    age, age_problem = _age(column(row, "Patient Age"))
    if age_problem:
        ctx.report(age_problem, path=labels, row=where)
    extra = {
        key: value
        for key, value in (
            ("follow_up", column(row, "Follow-up #")),
            ("age_raw", column(row, "Patient Age")),
            ("pixel_spacing_x", column(row, "OriginalImagePixelSpacing_x", "OriginalImagePixelSpacing[x")),
            ("pixel_spacing_y", column(row, "OriginalImagePixelSpacing_y", "y]")),
        )
        if value
    }
    yield Entry(
        path=relative,
        modality="xray",
        finding=finding,
        label=label,
        label_detail=detail,
        view=harmonise_view(column(row, "View Position")),
        patient_id=column(row, "Patient ID"),
        age=age,
        sex=harmonise_sex(column(row, "Patient Gender")),
        row=where,
        extra=extra,
    )


def _absent(ctx: SourceContext, names: list[str]) -> list[str]:
    """The names :func:`_locate` finds no image for, by set operations: every name was asked about in
    its row already (reported there if refused), so asking ``ctx.exists`` 100,000 times again adds
    nothing. A name is in an image folder when the folder's files, less its prefix, include it."""
    in_folders: set[str] = set()
    for folder in IMAGE_DIRS:
        prefix = f"{folder}/"
        in_folders.update(path[len(prefix) :] for path in ctx.files if path.startswith(prefix))
    return [
        name
        for name in names
        if name not in in_folders and not any(is_image_name(path, JPEG_PNG_SUFFIXES) for path in ctx.files_named(name))
    ]


def _report_summary(ctx: SourceContext, message: str, names: list[str], path: str) -> None:
    examples = ", ".join(names[:EXAMPLES])
    ctx.report(f"{message} (e.g. {examples})", path=path)


def parse(ctx: SourceContext) -> Iterator[Entry]:
    labels = _labels_file(ctx)
    if labels is None:
        ctx.report(f"none of {', '.join(LABEL_FILES)} in checkout; nothing to index", level="error")
        return
    frame = ctx.read_csv(labels)
    if frame is None:
        return
    yield from ctx.memoised_rows(frame, _row_entries, labels)
    key = column_name(frame.columns, "Image Index")
    names = [name for name in frame[key] if name] if key is not None else []
    listed = set(names)
    absent = _absent(ctx, names)
    if absent:
        _report_summary(ctx, f"{len(absent)} of {len(frame)} rows have no image in this checkout", absent, labels)
    unlisted = sorted(
        {
            name
            for relative in ctx.files
            if (name := relative.rpartition("/")[2]) not in listed and is_image_name(relative, JPEG_PNG_SUFFIXES)
        }
    )
    if unlisted:
        _report_summary(ctx, f"{len(unlisted)} images are not listed in {labels}; not indexed", unlisted, labels)
