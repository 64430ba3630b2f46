"""Zhang Lab / Kermany et al. (2018) paediatric chest X-rays: labels live in the layout.

There is no metadata file. The Kaggle/Mendeley release is ``chest_xray/{train,test,val}/
{NORMAL,PNEUMONIA}/``; some copies drop the ``chest_xray/`` prefix (the shared sample) and the
Kaggle zip nests it twice (``chest_xray/chest_xray/...``, a second copy of the same files) next to
``__MACOSX/`` resource forks. Every such prefix is accepted, but only one copy is indexed (the
one with most images) so the same picture is not listed twice; the others are reported.

The pneumonia subtype exists only in the file name (``personN_bacteria_M.jpeg``,
``personN_virus_M.jpeg``), so it is read from there into ``label_detail``. Patient ids are in
the names too, in three numbering series:

* ``personN``: one counter shared by bacterial and viral files (both series use the same
  range, and half of the people carry both kinds), so ``person500_bacteria_*`` and
  ``person500_virus_*`` are kept as one patient: over-grouping cannot leak, under-grouping can.
* ``IM-XXXX``: normal cases; ``IM-XXXX-0001-0002`` is a further image of ``IM-XXXX``.
* ``NORMAL2-IM-XXXX``: a second normal batch whose numbers overlap the first series' range
  (0383-1423 vs 0115-0766, with 211 numbers in both), so it is a separate namespace and
  ``NORMAL2-IM-0744`` is not ``IM-0744``.

The children were aged one to five (per the paper) but per-image age is not published, so
``age`` stays empty and ``extra`` says the source is paediatric. The projection is not
documented, so ``view`` is ``unknown``. The upstream train/test/val folders are kept as
``official_split``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.files import JPEG_PNG_SUFFIXES, is_image_name, largest_copy
from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_finding
from covid19_images.sources.parsing import SourceContext

SPLITS = {"train": "train", "test": "test", "val": "val"}
CLASSES = ("NORMAL", "PNEUMONIA")
NESTING = "chest_xray"
EXTRA = {"paediatric": True, "age_range_years": "1-5"}

_PERSON = re.compile(r"^(person\d+)_(bacteria|virus)_\d+(?:_\d+)?$", re.IGNORECASE)
_IM = re.compile(r"^((?:NORMAL\d+-)?IM-\d+)-\d+(?:-\d+)?$", re.IGNORECASE)


def _layout(relative: str) -> tuple[str, str, str] | None:
    """``(prefix, split folder, class folder)`` if the file sits in a known layout, else None."""
    parts = PurePosixPath(relative).parts
    if len(parts) < 3 or not is_image_name(relative, JPEG_PNG_SUFFIXES):
        return None
    split, klass = parts[-3], parts[-2]
    prefix = parts[:-3]
    if split.lower() not in SPLITS or klass.upper() not in CLASSES:
        return None
    if any(part != NESTING for part in prefix):
        return None
    return "/".join(prefix), split, klass


def patient_from_name(name: str) -> tuple[str, str]:
    """``(patient id, subtype word)`` from a file name; ``("", "")`` when it follows no known pattern."""
    stem = PurePosixPath(name).stem
    person = _PERSON.match(stem)
    if person:
        return person.group(1).lower(), person.group(2).lower()
    image = _IM.match(stem)
    if image:
        return image.group(1).upper(), ""
    return "", ""


def _entry(ctx: SourceContext, relative: str, split: str, klass: str) -> Iterator[Entry]:
    name = PurePosixPath(relative).name
    patient, subtype = patient_from_name(name)
    if not patient:
        ctx.report("file name has no personN_ / IM- patient id; grouped by file", path=relative, row=relative)
    folder = klass.upper()
    if folder == "NORMAL" and subtype:
        ctx.report(f"NORMAL folder holds a {subtype} file name; folder label kept", path=relative, row=relative)
        subtype = ""
    if folder == "PNEUMONIA" and not subtype:
        ctx.report("PNEUMONIA file name says neither bacteria nor virus", path=relative, row=relative)
    finding = f"{folder}/{subtype}" if subtype else folder
    label, detail, _known = harmonise_finding(finding)
    yield Entry(
        path=relative,
        modality="xray",
        finding=finding,
        label=label,
        label_detail=detail,
        patient_id=patient,
        official_split=SPLITS[split.lower()],
        row=relative,
        extra=dict(EXTRA),
    )


def _stray_images(files: list[str]) -> list[str]:
    """Images outside the layout, ignoring macOS zip debris (``__MACOSX/``, ``._*``)."""
    return [f for f in files if is_image_name(f, JPEG_PNG_SUFFIXES) and _layout(f) is None]


def parse(ctx: SourceContext) -> Iterator[Entry]:
    by_prefix: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for relative in ctx.files:
        found = _layout(relative)
        if found is not None:
            prefix, split, klass = found
            by_prefix[prefix].append((relative, split, klass))
    stray = _stray_images(ctx.files)
    if stray:
        examples = ", ".join(stray[:3])
        ctx.report(f"{len(stray)} images outside the split/class layout not indexed (e.g. {examples})")
    if not by_prefix:
        ctx.report("no images under [chest_xray/]{train,test,val}/{NORMAL,PNEUMONIA}/; nothing to index", level="error")
        return
    chosen = largest_copy(by_prefix)
    for prefix, files in sorted(by_prefix.items()):
        if prefix != chosen:
            ctx.report(
                f"second copy of the dataset ({len(files)} images) skipped; indexed {chosen or '.'}/ instead",
                path=prefix or ".",
            )
    for relative, split, klass in by_prefix[chosen]:
        yield from _entry(ctx, relative, split, klass)
