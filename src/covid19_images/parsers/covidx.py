"""lindawangg/COVID-Net: COVIDx split definitions, not images.

The repository holds ``labels/{train,test}_COVIDx<version>.txt`` files naming images of other
sources, so it contributes no manifest rows. Its parser only checks that the label files are
there and readable (each unreadable line, unknown source name or unpaired train/test file is
reported), so a schema change upstream shows up in ``sync`` rather than as silently empty
COVIDx splits. Applying a version to the manifest is :func:`covid19_images.covidx.covidx_split`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import PurePosixPath

from ..covidx import KNOWN_SOURCES, LABELS_DIR, SPLIT_NAMES, read_label_file, split_and_version
from ..schema import Entry, Problem
from ._common import SourceContext

MAX_LINE_PROBLEMS = 20


def label_files(ctx: SourceContext) -> dict[str, dict[str, str]]:
    """``version -> {split: relative path}`` from the checkout's file list."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for relative in ctx.files_under(LABELS_DIR):
        path = PurePosixPath(relative)
        named = split_and_version(path.name) if path.parent.as_posix() == LABELS_DIR else None
        if named:
            split, version = named
            found[version][split] = relative
    return dict(found)


def _file_problems(ctx: SourceContext, name: str, split: str) -> Iterator[Problem]:
    parsed = read_label_file(ctx.directory / name, split, display=name)
    for where, message in parsed.errors[:MAX_LINE_PROBLEMS]:
        yield ctx.problem(f"unreadable COVIDx line: {message}", path=name, row=where)
    if len(parsed.errors) > MAX_LINE_PROBLEMS:
        yield ctx.problem(f"{len(parsed.errors) - MAX_LINE_PROBLEMS} more unreadable lines not listed", path=name)
    unknown = sorted({e.source for e in parsed.entries if e.source and e.source not in KNOWN_SOURCES})
    if unknown:
        yield ctx.problem(f"unknown COVIDx source names {unknown}; their entries stay unresolved", path=name)
    if not parsed.entries:
        yield ctx.problem("label file has no readable entries", path=name)


def parse(ctx: SourceContext) -> Iterator[Entry | Problem]:
    files = label_files(ctx)
    if not files:
        yield ctx.problem(f"no {LABELS_DIR}/{{train,test}}_COVIDx*.txt in checkout", path=LABELS_DIR, level="error")
        return
    for version, pair in sorted(files.items()):
        for split in SPLIT_NAMES:
            if split not in pair:
                yield ctx.problem(
                    f"COVIDx{version or ' v1'} has no {split} file", path=f"{LABELS_DIR}/{split}_COVIDx{version}.txt"
                )
                continue
            yield from _file_problems(ctx, pair[split], split)
