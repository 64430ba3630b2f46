"""COVIDx CXR-4 (Kaggle ``andyczhao/covidx-cxr2``): the prebuilt benchmark, images and label files.

The Kaggle dataset is re-versioned in place (COVIDx 9 -> CXR-3 -> CXR-4 under one slug), so the
version number is what pins CXR-4. Layout: ``train.txt``, ``val.txt``, ``test.txt`` (CXR-3:
no ``val``) beside ``train/``, ``val/``, ``test/``. A label line is space-separated
``patient_id filename class data_source`` with ``class`` ``positive``/``negative`` and
``data_source`` the origin (``rsna``, ``ricord``, ``sirm``, ``bimcv``, ``stonybrook``,
``cohen``, ...; ``rnsa`` is a typo of ``rsna``). Patient ids can hold spaces, so a line is read
from the right, as :func:`covid19_images.sources.catalog.covidx_splits.parse_line` does.

``positive`` is COVID-19; ``negative`` is "not COVID-19" (normal or non-COVID pneumonia), so it
becomes ``other``/``covid-negative`` rather than ``normal``. The split is the benchmark's own
(``official_split``; ``covidx:CXR-4`` serves it). ``extra.covidx_source`` keeps the origin and
``extra.covidx_name`` the file name, which is also how the origin source names the image: the
same picture in ``rsna-pneumonia`` or ``midrc-ricord-1c`` carries the same ``covidx_name``.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.schema import Entry
from covid19_images.sources.catalog.covidx_splits import SOURCE_ALIASES
from covid19_images.sources.parsing import SourceContext

SPLITS = ("train", "val", "test")
CLASSES = {"positive": ("COVID-19", "covid-19", ""), "negative": ("negative", "other", "covid-negative")}
MAX_LABEL_BYTES = 64 * 1024 * 1024


def parse_label_line(text: str) -> tuple[str, str, str, str]:
    """``(patient_id, filename, class, data_source)``; raises ValueError for a line that is not one."""
    tokens = text.split()
    if len(tokens) < 4:
        raise ValueError(f"{len(tokens)} fields, need patient_id filename class data_source")
    source, label, filename = tokens[-1].lower(), tokens[-2].lower(), tokens[-3]
    if label not in CLASSES:
        raise ValueError(f"class {tokens[-2]!r} is neither positive nor negative")
    if "/" in filename or "\\" in filename:
        raise ValueError(f"file name {filename!r} names a folder")
    return " ".join(tokens[:-3]), filename, label, SOURCE_ALIASES.get(source, source)


def label_lines(ctx: SourceContext, split: str) -> Iterator[tuple[str, str, str, str, str]]:
    """``(where, patient, filename, class, source)`` of ``<split>.txt``; bad lines are reported."""
    name = f"{split}.txt"
    try:
        if (ctx.directory / name).stat().st_size > MAX_LABEL_BYTES:
            raise ValueError("larger than any COVIDx label file")
        text = (ctx.directory / name).read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError) as err:
        ctx.report(f"cannot read label file: {err}", path=name, level="error")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            yield (where, *parse_label_line(line))
        except ValueError as err:
            ctx.report(f"unreadable label line: {err}", path=name, row=where)


def parse(ctx: SourceContext) -> Iterator[Entry]:
    present = [split for split in SPLITS if ctx.exists(f"{split}.txt")]
    if not present:
        ctx.report("no train.txt / val.txt / test.txt; nothing to index", level="error")
    for split in present:
        missing = 0
        for where, patient, filename, cls, source in label_lines(ctx, split):
            relative = f"{split}/{filename}"
            if not ctx.exists(relative, row=where):
                missing += 1
                continue
            finding, label, detail = CLASSES[cls]
            yield Entry(
                path=relative,
                modality="xray",
                finding=finding,
                label=label,
                label_detail=detail,
                patient_id=f"{source}:{patient}",
                official_split=split,
                row=where,
                extra={"covidx_source": source, "covidx_name": filename},
            )
        if missing:
            ctx.report(
                f"{missing} listed images are not in {split}/ (a partial download?); not indexed", path=f"{split}.txt"
            )
