"""``covid19-images new-source``: the whole home of a new source, so contributors start right.

A source is one catalog folder (parser, ``source.yaml``, a tiny ``miniature/`` upstream), one
test and one line in the root's ``sources.yaml``; nothing else changes (``.gitmodules`` is
written by the first ``sync``). The scaffold works out of the box: its parser indexes its
miniature, its test passes, and the source syncs through a mirror built from the miniature
(tests/sources/test_scaffold.py proves all three), so a contributor edits working code.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from covid19_images.core.paths import REGISTRY_FILE
from covid19_images.core.schema import MODALITIES
from covid19_images.core.yaml_text import safe_load
from covid19_images.sources.catalog import MINIATURE_DIR, SOURCE_FILE, catalog, package_name
from covid19_images.sources.registry import check_branch, check_name, check_url

CATALOG_DIR = Path("src/covid19_images/sources/catalog")
TESTS_DIR = Path("tests/sources/catalog")

PARSER_TEMPLATE = '''"""{name}: <describe the upstream layout here and every quirk a reader must know>.

Say *why* the parser does what it does: where labels live, what a blank means (never
"negative"), how patients are identified, which files are not images. Report anything
skipped with ``ctx.report(message, path=..., row=...)``; ``parse`` yields Entry rows only.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_view
from covid19_images.sources.parsing import SourceContext, column

METADATA = "metadata.csv"


def parse(ctx: SourceContext) -> Iterator[Entry]:
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

SOURCE_TEMPLATE = """# {name}: its registry entry (every field: CONTRIBUTING.md, "Adding a source").
name: {name}
url: {url}
branch: {branch}
modalities: [{modality}]
license: unknown
homepage: {url}
citation: "TODO: how the upstream asks to be cited"
description: "TODO: one line on what the images are, and what they are not"
pending: true
# samples: [<folder in ../shared/upstream>]  once a real sample exists; covidx: <name> if COVIDx lists it
"""

#: The miniature upstream: (patientid, file, finding, view, grey level of the generated image).
MINIATURE_ROWS = (
    ("p1", "images/p1-a.png", "COVID-19", "PA", 60),
    ("p2", "images/p2-a.png", "No finding", "AP", 190),
)

TEST_TEMPLATE = '''"""{name}: the parser over its miniature; add checks against the real sample."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import PROJECT, run_parser

SOURCE = "{name}"
MINIATURE = PROJECT / "{catalog}/{package}/miniature"


def test_parser_indexes_its_miniature(registry) -> None:
    entries, problems = run_parser(registry[SOURCE], MINIATURE)
    assert [(e.path, e.label, e.patient_id) for e in entries] == [
        ("images/p1-a.png", "covid-19", "p1"),
        ("images/p2-a.png", "normal", "p2"),
    ]
    assert problems == []


def test_a_row_without_its_image_is_reported(registry, tmp_path: Path) -> None:
    upstream = shutil.copytree(MINIATURE, tmp_path / "upstream")
    (upstream / "images/p2-a.png").unlink()
    entries, problems = run_parser(registry[SOURCE], upstream)
    assert [e.path for e in entries] == ["images/p1-a.png"]
    assert [(p.path, p.row) for p in problems] == [("metadata.csv", "metadata.csv line 3")]
    assert "images/p2-a.png" in problems[0].message
'''


def _listed(text: str) -> list[str]:
    """Names a ``sources.yaml`` text lists (plain names and mapping names)."""
    data = safe_load(text) or {}
    items = (data.get("sources") or []) if isinstance(data, dict) else []
    return [item if isinstance(item, str) else str(item.get("name", "")) for item in items if item]


def _write_miniature(folder: Path) -> list[Path]:
    """``metadata.csv`` and two small distinct generated images: an upstream the parser can read."""
    lines = ["patientid,filename,finding,view"]
    written = []
    for patient, relative, finding, view, grey in MINIATURE_ROWS:
        lines.append(f"{patient},{relative},{finding},{view}")
        image = folder / relative
        image.parent.mkdir(parents=True, exist_ok=True)
        gradient = Image.linear_gradient("L").resize((32, 32))
        Image.eval(gradient, lambda value, grey=grey: (value + grey) % 256).save(image)
        written.append(image)
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [folder / "metadata.csv", *written]


class NotAProjectCheckout(ValueError):
    """``new-source`` was pointed at a folder that is not a clone of the project's source."""


def check_project_checkout(root: Path) -> None:
    """Refuse a root that is not a checkout of the project: a data root (``sources.yaml``,
    ``datasets/``, ``manifests/``) used with an installed package has no ``src/`` to add a parser
    to, and a source listed there without its parser breaks ``status`` and ``sync``."""
    import tomllib

    pyproject, catalog_dir = root / "pyproject.toml", root / CATALOG_DIR
    try:
        name = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        name = None
    missing = [
        what
        for what, ok in (
            (f"{REGISTRY_FILE}", (root / REGISTRY_FILE).is_file()),
            ("pyproject.toml of the covid19-images project", name == "covid19-images"),
            (CATALOG_DIR.as_posix(), catalog_dir.is_dir() and (catalog_dir / "__init__.py").is_file()),
        )
        if not ok
    ]
    if missing:
        raise NotAProjectCheckout(
            f"{root} is not a checkout of the covid19-images project (no {', no '.join(missing)}): new-source "
            "writes a parser into the project's source tree; run it in a clone of the project "
            "(git clone ...; pip install -e .) and pass that folder as --root"
        )


def scaffold_source(root: Path, name: str, url: str, *, modality: str = "xray", branch: str = "master") -> list[Path]:
    """Write a new source's catalog folder and test, and list it in ``<root>/sources.yaml``.

    Everything is checked before anything is written (name, URL policy, branch, modality,
    not yet listed, no folder or test in the way), so a refused scaffold leaves no trace.

    Args:
        root: the project checkout (holds ``sources.yaml``, ``src/`` and ``tests/``).
        name: the source name (also ``datasets/<name>`` and the catalog folder, ``-`` -> ``_``).
        url: the upstream's https URL (the registry's URL policy applies).
        modality: what the images are; the generated parser and miniature use it.
        branch: the upstream branch sync follows.

    Returns:
        Every file written or changed, the root's ``sources.yaml`` last.
    """
    check_name(name)
    check_url(url)
    check_branch(branch)
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, not {modality!r}")
    root = Path(root)
    check_project_checkout(root)
    registry_file = root / REGISTRY_FILE
    old_text = registry_file.read_text(encoding="utf-8")
    listed = _listed(old_text)
    if name in listed or name in catalog():
        raise ValueError(f"source {name} is already registered")
    new_text = old_text.rstrip("\n") + f"\n  - {name}\n"
    if _listed(new_text) != [*listed, name]:
        raise ValueError(f"cannot append {name} to {registry_file}: add `- {name}` to its sources: list by hand")
    package = package_name(name)
    folder = root / CATALOG_DIR / package
    test_file = root / TESTS_DIR / f"test_{package}.py"
    for path in (folder, test_file):
        if path.exists():
            raise FileExistsError(f"{path} exists already")

    (folder / MINIATURE_DIR).mkdir(parents=True)
    (folder / "__init__.py").write_text(PARSER_TEMPLATE.format(name=name, modality=modality), encoding="utf-8")
    source_file = folder / SOURCE_FILE
    source_file.write_text(SOURCE_TEMPLATE.format(name=name, url=url, branch=branch, modality=modality), "utf-8")
    miniature = _write_miniature(folder / MINIATURE_DIR)
    test_file.parent.mkdir(parents=True, exist_ok=True)
    for package_dir in (test_file.parent, test_file.parent.parent):
        (package_dir / "__init__.py").touch()
    test_file.write_text(
        TEST_TEMPLATE.format(name=name, package=package, catalog=CATALOG_DIR.as_posix()), encoding="utf-8"
    )
    registry_file.write_text(new_text, encoding="utf-8")
    return [folder / "__init__.py", source_file, *miniature, test_file, registry_file]
