"""The folder a miniature is written to, with its attribution and synthetic bookkeeping.

Used by ``build_miniatures.py``: ``Miniature.real`` embeds a downscaled real picture and records
it for ``ATTRIBUTION.md``; ``Miniature.fake`` writes a synthetic stand-in and records it for the
folder's ``SYNTHETIC.md``; ``trim_csv`` keeps chosen metadata records byte for byte.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from miniature_media import real_downscaled, synthetic_like

PROJECT = Path(__file__).resolve().parents[1]
CATALOG = PROJECT / "src/covid19_images/sources/catalog"
REDISTRIBUTABLE = re.compile(r"^(cc by(-sa)?( [0-9.]+)?|cc0.*|apache[- ]2\.0|public domain)$", re.I)


def allowed(licence: str) -> bool:
    """Redistribution of a (downscaled) copy with attribution: CC BY / BY-SA / CC0 / Apache-2.0, not NC, not ND."""
    return bool(REDISTRIBUTABLE.match(licence.strip()))


class Miniature:
    """One source's miniature folder being written, with its attribution and synthetic lists."""

    def __init__(self, package: str, sample: Path, subfolder: str = "") -> None:
        self.root = CATALOG / package / "miniature"
        self.out = self.root / subfolder if subfolder else self.root
        self.sample = sample
        self.source = package
        self.synthetic: list[tuple[str, str]] = []

    def copy(self, relative: str) -> None:
        """A small text file byte for byte (README, LICENSE, pointer files)."""
        target = self.out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.sample / relative, target)

    def write(self, relative: str, data: bytes) -> None:
        target = self.out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def real(self, relative: str, licence: str, credit: str, max_side: int = 256, *, mask: bool = False) -> None:
        self.write(relative, real_downscaled(self.sample / relative, max_side, mask=mask))
        ATTRIBUTION.append((self.source, relative, licence, credit))

    def fake(self, relative: str, kind: str, why: str, max_side: int = 256) -> None:
        self.write(relative, synthetic_like(self.sample / relative, relative, kind, max_side))
        self.note(relative, why)

    def note(self, relative: str, why: str) -> None:
        prefix = self.out.relative_to(self.root).as_posix()
        self.synthetic.append((relative if prefix == "." else f"{prefix}/{relative}", why))

    def trim_csv(self, relative: str, keep: Callable[[int, dict[str, str]], bool]) -> None:
        """Header + the records ``keep`` accepts, each record's original bytes unchanged."""
        raw = (self.sample / relative).read_bytes()
        text = raw.decode("latin-1")  # bijective: every byte survives, CSV syntax is ASCII
        lines = re.findall(r"[^\n]*\n|[^\n]+$", text)
        reader = csv.reader(iter(lines))
        header = [h.replace("\xef\xbb\xbf", "").strip() for h in next(reader)]
        kept, start = lines[: reader.line_num], reader.line_num
        for index, record in enumerate(reader):
            row = dict(zip(header, (v.strip() for v in record), strict=False))
            if keep(index, row):
                kept.extend(lines[start : reader.line_num])
            start = reader.line_num
        self.write(relative, "".join(kept).encode("latin-1"))

    def finish(self, extra: str = "") -> None:
        if not self.synthetic:
            return
        lines = [
            "# Synthetic files in this miniature",
            "",
            "Invented pictures with the upstream file's name, format, mode, aspect ratio and JPEG flavour,",
            "made by `scripts/build_miniatures.py` where the upstream licence does not allow redistribution.",
            "Not medical images: never train or evaluate on them.",
            "",
        ]
        if extra:
            lines += [extra, ""]
        lines += ["| file | why synthetic |", "|---|---|"]
        lines += [f"| `{name}` | {why} |" for name, why in sorted(self.synthetic)]
        (self.root / "SYNTHETIC.md").write_text("\n".join(lines) + "\n")


ATTRIBUTION: list[tuple[str, str, str, str]] = []
#: real annotation texts (not pictures) kept in a miniature: (source, path, licence, what / credit)
ANNOTATION_TEXTS: list[tuple[str, str, str, str]] = []


def fresh(package: str) -> None:
    folder = CATALOG / package / "miniature"
    if folder.exists():
        shutil.rmtree(folder)


def write_attribution() -> None:
    lines = [
        "# Attribution: real files embedded in the miniatures",
        "",
        "The miniatures under `src/covid19_images/sources/catalog/<source>/miniature/` (the demo and",
        "test data used when `../shared/upstream` is absent) hold the files below as real pictures,",
        "downscaled (longest side <= 256 px) and re-encoded by `scripts/build_miniatures.py`, because",
        "their licences allow redistribution with attribution. Every other picture in a miniature is",
        "synthetic (listed in that folder's `SYNTHETIC.md`). Metadata files are the upstreams' own,",
        "trimmed to a few rows; they remain under their upstreams' terms (see `sources.yaml`).",
        "",
        "| source | original path (upstream) | licence | author / citation |",
        "|---|---|---|---|",
    ]
    for source, relative, licence, credit in sorted(ATTRIBUTION):
        lines.append(f"| {source} | `{relative}` | {licence} | {credit.replace('|', '/')} |")
    if ANNOTATION_TEXTS:
        lines += [
            "",
            "## Real annotation files",
            "",
            "Annotation files kept with real content (trimmed or adapted as stated), under their own licences:",
            "",
        ]
        for source, relative, licence, what in sorted(ANNOTATION_TEXTS):
            lines.append(f"- {source}: `{relative}`, {licence}: {what}")
    (PROJECT / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n")
