"""Local "upstream" mirrors built from the real samples in ``../shared/upstream``.

Offline (this workplace, CI, a hospital network) sync cannot reach GitHub. These bare
repositories stand in for the upstreams, laid out like their URLs
(``<mirror>/<owner>/<repo>.git``) so one ``url.<mirror>/.insteadOf=https://github.com/``
rule redirects every source. Commits use fixed dates, so the same sample always gives the
same commit ids.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import git

from covid19_images.sources.catalog import sample_folders
from covid19_images.sources.registry import SourceSpec

#: catalog source -> sample folders in ../shared/upstream, oldest snapshot first (``samples:``
#: in each catalog folder's source.yaml).
SAMPLE_FOLDERS: dict[str, tuple[str, ...]] = sample_folders()
#: files the sample curators (or the miniature builder) added next to the real upstream files.
CURATION_FILES = ("SOURCE.yaml", "SYNTHETIC.md")
CURATION_PREFIXES = ("FULL_TREE",)


def default_shared() -> Path:
    """``../shared/upstream`` next to the checkout, the workplace's sample location."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "upstream"
        if (parent / "sources.yaml").is_file() and candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "upstream"


def mirror_path(mirror_root: Path, url: str) -> Path:
    """Where the mirror of ``url`` lives: ``<root>/<owner>/<repo>.git``."""
    parts = urlsplit(url)
    return Path(mirror_root) / parts.path.lstrip("/")


def _fill_worktree(work: Path, snapshot: Path) -> None:
    for child in work.iterdir():
        if child.name == ".git":
            continue
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    for item in sorted(snapshot.rglob("*")):
        relative = item.relative_to(snapshot)
        if item.is_dir() or relative.name in CURATION_FILES or relative.name.startswith(CURATION_PREFIXES):
            continue
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(item, target)


def build_mirror(
    destination: Path,
    snapshots: Sequence[Path],
    *,
    branch: str = "master",
    messages: Sequence[str] | None = None,
) -> list[str]:
    """Create a bare repo at ``destination`` with one commit per snapshot folder; return the commit ids.

    Args:
        destination: the bare repository to (re)create; an existing one is replaced.
        snapshots: folders whose content becomes successive commits, oldest first
            (curation files such as ``SOURCE.yaml`` are left out).
        branch: the branch the commits go on.
        messages: one commit message per snapshot (default: ``snapshot of <folder>``).
    """
    destination = Path(destination)
    if destination.exists():
        shutil.rmtree(destination)
    env = {
        "GIT_AUTHOR_NAME": "upstream",
        "GIT_AUTHOR_EMAIL": "upstream@example.invalid",
        "GIT_COMMITTER_NAME": "upstream",
        "GIT_COMMITTER_EMAIL": "upstream@example.invalid",
    }
    commits: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mirror-work-") as tmp:
        work_repo = git.Repo.init(tmp, initial_branch=branch)
        work = Path(tmp)
        for index, snapshot in enumerate(snapshots):
            _fill_worktree(work, Path(snapshot))
            work_repo.git.add("-A", ".")
            date = f"2020-01-{index + 1:02d}T00:00:00+00:00"
            message = messages[index] if messages else f"snapshot of {Path(snapshot).name}"
            with work_repo.git.custom_environment(**env, GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date):
                work_repo.git.commit("--quiet", "--allow-empty", "-m", message)
            commits.append(work_repo.head.commit.hexsha)
        destination.parent.mkdir(parents=True, exist_ok=True)
        git.Repo.clone_from(str(work), str(destination), bare=True, multi_options=["--no-hardlinks"])
    return commits


def build_sample_mirrors(
    shared: Path, mirror_root: Path, specs: Sequence[SourceSpec], *, history: bool = True
) -> dict[str, list[str]]:
    """Mirror every source that has a sample; return ``source -> commit ids``.

    Args:
        shared: the samples folder (``../shared/upstream``).
        mirror_root: where the mirrors go, laid out as :func:`mirror_path` says.
        specs: the registry entries to mirror (those without a sample are skipped).
        history: one commit per sample snapshot; False keeps only the newest one.
    """
    built: dict[str, list[str]] = {}
    for spec in specs:
        folders = SAMPLE_FOLDERS.get(spec.name, ())
        snapshots = [Path(shared) / f for f in folders if (Path(shared) / f).is_dir()]
        if not history:
            snapshots = snapshots[-1:]
        if snapshots:
            built[spec.name] = build_mirror(mirror_path(mirror_root, spec.url), snapshots, branch=spec.branch)
    return built


def shared_available(shared: Path | None = None) -> bool:
    """True when the samples folder (default :func:`default_shared`) is there, with its ``INDEX.md``."""
    path = shared or default_shared()
    return path.is_dir() and (path / "INDEX.md").is_file()


__all__ = ["SAMPLE_FOLDERS", "build_mirror", "build_sample_mirrors", "default_shared", "mirror_path"]
