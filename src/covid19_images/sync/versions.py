"""What a released version pins, against what the root has checked out now.

A version's manifest names files by path and content hash; it is only served from checkouts
that are exactly the commits the version pinned. :func:`version_status` compares, per source,
the version's gitlink with the submodule's checked-out commit (and that the checkout holds no
local change) and, for a portal source, the version's lock with the lock the fetched folder was
built from (its marker), and says the command that makes it match. ``status --version`` prints it;
the loaders' ``version=`` refuses with it (:func:`require_version_checkouts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from covid19_images.manifest.source_cache import checkout_is_clean
from covid19_images.manifest.versions import locks_at, pins_at, version_commit
from covid19_images.sources.git import gitlink, head_commit, is_initialised
from covid19_images.sources.portal.lock import LOCKS_DIR, current_digest
from covid19_images.sources.portal.state import read_state, source_dir
from covid19_images.sources.registry import DATASETS_DIR


class VersionMismatch(RuntimeError):
    """The checkouts are not what the requested version pins; the message says what to run."""


@dataclass(frozen=True)
class VersionPin:
    """One source of a version: its pin there, the pin of the current HEAD, and the checkout."""

    source: str
    version_pin: str
    current_pin: str | None
    checked_out: str | None
    clean: bool
    fetched: bool = False  # the pinned commit is already in the checkout's object store
    #: ``git`` (pins are commits) or ``portal`` (pins are lock digests; "checked out" is the lock
    #: the fetched folder was built from)
    kind: str = "git"
    version: str = ""

    @property
    def matches(self) -> bool:
        return self.checked_out == self.version_pin and self.clean

    def command(self, root: Path) -> str:
        """The shell command that makes this checkout what the version pins ("" when it already is)."""
        if self.matches:
            return ""
        if self.kind == "portal":
            fetch = f"covid19-images fetch {self.source} --root {root}"
            if self.current_pin == self.version_pin:
                return fetch
            lock = f"{LOCKS_DIR}/{self.source}.lock.tsv"
            return f"git -C {root} checkout {self.version} -- {lock} && {fetch}"
        path = f"{root}/{DATASETS_DIR}/{self.source}"
        if self.checked_out is None:
            init = f"git -C {root} submodule update --init {DATASETS_DIR}/{self.source}"
            return f"{init} && git -C {path} checkout --detach {self.version_pin}"
        if not self.clean and self.checked_out == self.version_pin:
            return f"git -C {path} checkout -- . && git -C {path} clean -fdx  (discards local changes)"
        fetch = "" if self.fetched else f"git -C {path} fetch origin {self.version_pin} && "
        return f"{fetch}git -C {path} checkout --detach {self.version_pin}"

    def describe(self) -> str:
        if self.matches:
            return "matches"
        if self.checked_out is None:
            return "not fetched" if self.kind == "portal" else "not checked out"
        if self.kind == "portal":
            return f"fetched from lock {self.checked_out[:12]}, the version pins lock {self.version_pin[:12]}"
        if self.checked_out == self.version_pin:
            return "locally modified"
        return f"checked out {self.checked_out[:12]}, the version pins {self.version_pin[:12]}"


def version_status(root: Path, version: str) -> list[VersionPin]:
    """Per source the version pins: its pin, the current pin, the checkout (no network access)."""
    root = Path(root)
    repo = git.Repo(root)
    rows = []
    commit = version_commit(root, version)
    for source, pinned in sorted(locks_at(commit).items()):
        built_from = read_state(source_dir(root, source)).lock or None
        current = current_digest(root, source) or None
        rows.append(VersionPin(source, pinned, current, built_from, True, kind="portal", version=version))
    for source, pinned in sorted(pins_at(commit).items()):
        path = f"{DATASETS_DIR}/{source}"
        present = is_initialised(root, path)
        checked_out = head_commit(root / path) if present else None
        rows.append(
            VersionPin(
                source=source,
                version_pin=pinned,
                current_pin=gitlink(repo, path),
                checked_out=checked_out,
                clean=present and checkout_is_clean(root / path),
                fetched=present and _has_commit(root / path, pinned),
            )
        )
    return rows


def _has_commit(directory: Path, commit: str) -> bool:
    try:
        return git.Repo(directory).commit(commit).hexsha == commit
    except (git.GitError, ValueError):
        return False


def require_version_checkouts(root: Path, version: str, sources: set[str] | None = None) -> None:
    """Raise :class:`VersionMismatch` unless every checkout (of ``sources``, default all) is what ``version`` pins."""
    wrong = [p for p in version_status(root, version) if not p.matches and (sources is None or p.source in sources)]
    if not wrong:
        return
    lines = [f"  {p.source}: {p.describe()}; run: {p.command(Path(root))}" for p in wrong]
    raise VersionMismatch(
        f"release {version} of {root} cannot be served from the current checkouts "
        f"({len(wrong)} source(s) differ; `covid19-images status --version {version}` lists them):\n" + "\n".join(lines)
    )
