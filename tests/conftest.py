"""Shared fixtures: the upstream samples, local bare mirrors built from them, and roots.

Tests that read upstream files are marked ``upstream``. They run on the real samples in
``../shared/upstream`` where it exists (always in CI), and otherwise on the miniatures shipped
in ``src/covid19_images/sources/catalog/*/miniature`` (``COVID19_IMAGES_SHARED=none`` forces the
miniatures, as on a fresh clone). Tests that need the larger real samples (statistics over
many images, the dedup threshold corpus) are also marked ``full_sample``: they skip, with the
reason, on the miniatures.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import yaml

from covid19_images.sources.registry import load_registry
from covid19_images.testing.miniature import ENV_VAR, is_miniature, requested_samples, sample_root
from covid19_images.testing.mirrors import build_sample_mirrors, default_shared, shared_available

PROJECT = Path(__file__).resolve().parents[1]
REQUESTED = requested_samples()
IN_CI = os.environ.get("CI") == "true"


def pytest_report_header(config: pytest.Config) -> str:
    where = REQUESTED if REQUESTED is not None else f"the miniatures ({ENV_VAR}=none or no {default_shared()})"
    return f"covid19-images upstream samples: {where}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if REQUESTED is not None:
        if not shared_available(REQUESTED):
            raise pytest.UsageError(f"{ENV_VAR}={REQUESTED}: no upstream samples there (INDEX.md missing)")
        return
    if IN_CI and not os.environ.get(ENV_VAR):
        raise pytest.UsageError(
            f"CI=true but the real upstream samples are missing at {default_shared()} "
            f"(set {ENV_VAR}=none to run on the miniatures on purpose)"
        )
    skip = pytest.mark.skip(reason="needs the larger real samples in ../shared/upstream; running on the miniatures")
    for item in items:
        if "full_sample" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The upstream samples folder: the real one, or the miniatures laid out the same way."""
    return sample_root()


@pytest.fixture(scope="session")
def on_miniature(shared: Path) -> bool:
    """True when the tests read the miniatures rather than the real samples."""
    return is_miniature(shared)


@pytest.fixture(scope="session")
def registry():
    return load_registry(PROJECT)


@pytest.fixture(scope="session")
def mirrors(tmp_path_factory: pytest.TempPathFactory, shared: Path, registry) -> Path:
    """Bare "upstream" repos for every source with a sample, at ``<mirror>/<owner>/<repo>.git``.

    ieee8023 gets its real history order: the March 2020 snapshot, then the June 2020 one.
    """
    root = tmp_path_factory.mktemp("mirrors")
    build_sample_mirrors(shared, root, list(registry.values()))
    return root


def run_parser(spec, directory: Path) -> tuple[list, list]:
    """A source's parser over a folder: the entries it yields and every problem it reported.

    Anything yielded that is not an Entry fails the test (the builder refuses it too)."""
    from covid19_images.core.schema import Entry
    from covid19_images.sources.catalog import get_parser
    from covid19_images.sources.parsing import SourceContext, list_files

    ctx = SourceContext(spec, directory, list_files(directory))
    entries = list(get_parser(spec.parser)(ctx))
    assert all(isinstance(e, Entry) for e in entries), "parse() must yield Entry rows only"
    return entries, list(ctx.problems)


def csv_rows_with_lines(metadata: Path, encoding: str = "utf-8") -> list[tuple[int, dict[str, str]]]:
    """Every record of a real metadata CSV with the physical line it starts on, read with the
    csv module (independently of the project's tolerant reader, so tests can check it)."""
    import csv

    with metadata.open(newline="", encoding=encoding) as handle:
        reader = csv.reader(handle)
        header = next(reader)
        found = []
        start = reader.line_num + 1
        for record in reader:
            found.append((start, dict(zip(header, record, strict=True))))
            start = reader.line_num + 1
    return found


def git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, **(env or {})}
    out = subprocess.run(["git", *args], cwd=cwd, env=full_env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def new_root(path: Path, sources: Sequence[str]) -> Path:
    """A fresh covid19-images root at ``path``: a git repo whose sources.yaml lists only ``sources``
    (catalog names, in the project's order).

    A plain function (not only a fixture) so module-scoped fixtures can sync once per module.
    """
    listed = yaml.safe_load((PROJECT / "sources.yaml").read_text())["sources"]
    data = {"sources": [s for s in listed if s in sources] + [s for s in sources if s not in listed]}
    path.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=path)
    (path / "sources.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    git("config", "user.name", "Test", cwd=path)
    git("config", "user.email", "test@example.invalid", cwd=path)
    git("add", "sources.yaml", cwd=path)
    git("commit", "-q", "-m", "init", cwd=path)
    return path


def build_synced_root(base: Path, mirrors: Path, sources: Sequence[str], **kwargs) -> Path:
    """``new_root`` under ``base``, synced against the sample mirrors."""
    from covid19_images.sync.run import sync

    root = new_root(base / "root", sources)
    report = sync(root, mirror=mirrors, progress=False, **kwargs)
    assert not report.failed, report.summary()
    return root


def swap_contents_and_resync(root: Path, a: Path, b: Path) -> None:
    """Swap two upstream files' bytes and sync offline: the manifest is rewritten, so a loader built
    before must refuse to serve the new pixels under the old labels (``ManifestChanged``)."""
    from covid19_images.sync.run import sync

    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    report = sync(root, offline=True, progress=False)
    assert not report.failed, report.summary()


@pytest.fixture
def make_root(tmp_path: Path) -> Callable[..., Path]:
    """A fresh covid19-images root (git repo + sources.yaml limited to ``sources``)."""
    return lambda sources, *, name="root": new_root(tmp_path / name, sources)


@pytest.fixture
def synced_root(tmp_path: Path, mirrors: Path) -> Callable[..., Path]:
    """A root synced against the sample mirrors for the given sources."""
    return lambda sources, **kwargs: build_synced_root(tmp_path, mirrors, sources, **kwargs)
