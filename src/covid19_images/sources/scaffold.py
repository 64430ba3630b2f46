"""``covid19-images new-source``: the three files a new source needs, so contributors start right.

A source is one parser module, one registry entry and one test; nothing else changes.
"""

from __future__ import annotations

import re
from pathlib import Path

from covid19_images.sources.registry import REGISTRY_FILE, check_url, load_registry

PARSER_TEMPLATE = '''"""{name}: <describe the upstream layout here and every quirk a reader must know>.

Say *why* the parser does what it does: where labels live, what a blank means (never
"negative"), how patients are identified, which files are not images.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.schema import Entry, Problem
from covid19_images.core.vocab import harmonise_view
from covid19_images.sources.parsing import SourceContext, column

METADATA = "metadata.csv"


def parse(ctx: SourceContext) -> Iterator[Entry | Problem]:
    for row in ctx.metadata_rows(METADATA) or ():
        relative = column(row, "filename")
        if not ctx.require(relative, row["_row"], METADATA):
            continue
        finding = column(row, "finding")
        label, detail = ctx.label(finding, METADATA, row["_row"])
        yield Entry(
            path=relative,
            modality="{modality}",
            finding=finding,
            label=label,
            label_detail=detail,
            view=harmonise_view(column(row, "view")),
            patient_id=column(row, "patientid"),
            row=row["_row"],
        )
'''

TEST_TEMPLATE = '''"""{name}: the parser on a small generated upstream; add checks against the real sample."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from covid19_images.sources.parsers import get_parser
from covid19_images.sources.parsing import SourceContext, list_files
from covid19_images.sources.registry import load_registry
from covid19_images.core.schema import Entry

PROJECT = Path(__file__).resolve().parents[1]


def test_parser_reads_generated_upstream(tmp_path: Path) -> None:
    Image.new("L", (64, 64), 128).save(tmp_path / "a.png")
    rows = ["patientid,filename,finding,view", "1,a.png,COVID-19,PA", "2,missing.png,,AP"]
    (tmp_path / "metadata.csv").write_text("\\n".join(rows) + "\\n")
    spec = load_registry(PROJECT)["{name}"]
    ctx = SourceContext(spec, tmp_path, list_files(tmp_path))
    items = [*get_parser(spec.parser)(ctx), *ctx.problems]
    entries = [i for i in items if isinstance(i, Entry)]
    assert [e.path for e in entries] == ["a.png"]
    assert entries[0].label == "covid-19"
    assert any("missing.png" in str(i) for i in items if not isinstance(i, Entry))
'''

REGISTRY_TEMPLATE = """
  - name: {name}
    url: {url}
    branch: {branch}
    parser: {parser}
    modalities: [{modality}]
    license: unknown
    homepage: {url}
    citation: "TODO: how the upstream asks to be cited"
    description: "TODO: one line on what the images are, and what they are not"
    pending: true
"""


def scaffold_source(root: Path, name: str, url: str, *, modality: str = "xray", branch: str = "master") -> list[Path]:
    """Write the parser, the test and the registry entry for a new source; refuse to overwrite."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
        raise ValueError(f"invalid source name {name!r}: lower-case letters, digits, '-' and '_'")
    if modality not in ("xray", "ct", "ultrasound"):
        raise ValueError(f"modality must be xray, ct or ultrasound, not {modality!r}")
    check_url(url)
    if name in load_registry(root):
        raise ValueError(f"source {name} is already registered")
    parser = name.replace("-", "_")
    parser_file = root / "src" / "covid19_images" / "sources" / "parsers" / f"{parser}.py"
    test_file = root / "tests" / f"test_source_{parser}.py"
    for path in (parser_file, test_file):
        if path.exists():
            raise FileExistsError(f"{path} exists already")
    registry_file = root / REGISTRY_FILE
    old_text = registry_file.read_text()
    new_text = (
        old_text.rstrip("\n")
        + "\n"
        + REGISTRY_TEMPLATE.format(name=name, url=url, branch=branch, parser=parser, modality=modality)
    )
    registry_file.write_text(new_text)
    try:
        load_registry(root)  # the new entry must parse before anything else is written
    except Exception:
        registry_file.write_text(old_text)
        raise
    parser_file.write_text(PARSER_TEMPLATE.format(name=name, modality=modality))
    test_file.write_text(TEST_TEMPLATE.format(name=name))
    return [parser_file, test_file, registry_file]
