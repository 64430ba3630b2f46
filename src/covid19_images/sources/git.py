"""Git plumbing for sync, through GitPython: move one submodule to its upstream tip, or say why not.

Every git process runs in the environment :func:`covid19_images.sources.transport.git_environment`
builds, so the transport policy (https only, local paths only when allowed) is enforced by
git itself. A move is announced on disk before it starts, so a sync killed half-way is
finished or undone by the next one (:func:`update_source`).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import git

from covid19_images.core.atomic import write_atomic
from covid19_images.core.failpoints import checkpoint
from covid19_images.sources.git_ahead import Asked, fetch_upstream
from covid19_images.sources.git_state import checkout_status, is_initialised, open_repo, origin_url
from covid19_images.sources.registry import DATASETS_DIR, RegistryError, SourceSpec, check_url
from covid19_images.sources.transport import (  # noqa: F401 - re-exported: sync and older callers import them here
    ALLOW_LOCAL_ENV,
    GITHUB_PREFIX,
    MIRROR_ENV,
    file_protocol_allowed_by_user,
    git_environment,
    local_allowed,
)


class SourceSyncError(RuntimeError):
    """This source could not be synced; nothing was changed for it.

    ``keep_manifest_rows`` is set when the checkout itself is not what the pin says (local
    edits, another commit checked out): its previous manifest rows are then kept verbatim
    instead of being rebuilt from files sync refused to vouch for.
    """

    def __init__(self, message: str, *, keep_manifest_rows: bool = False) -> None:
        super().__init__(message)
        self.keep_manifest_rows = keep_manifest_rows


#: git's generic closing lines: they say *that* an operation failed, the line before says why.
_WRAPPER_LINES = re.compile(
    r"^(fatal|error): (could not read from remote repository\.?|clone of .* failed|failed to clone .*"
    r"|unable to fetch in submodule path .*|failed to recurse into submodule .*)$",
    re.IGNORECASE,
)


def _stderr_text(err: git.GitCommandError) -> str:
    """git's stderr without GitPython's ``stderr: '...'`` wrapping."""
    text = (err.stderr or "").strip()
    if text.startswith("stderr: '") and text.endswith("'"):
        text = text[len("stderr: '") : -1]
    return text or str(err)


def _last_line(err: git.GitCommandError) -> str:
    """git's own explanation in one line: the last ``fatal:``/``error:`` line that says why.

    git often ends a failure with a generic line ("Could not read from remote repository.",
    "clone of ... into submodule path ... failed") and advice text; those are skipped, so
    ``cannot fetch URL: <reason>`` names the cause. Without any ``fatal:``/``error:`` line,
    the last non-empty line of stderr.
    """
    lines = [line.strip() for line in _stderr_text(err).splitlines() if line.strip()]
    causes = [line for line in lines if line.lower().startswith(("fatal:", "error:"))]
    specific = [line for line in causes if not _WRAPPER_LINES.match(line)]
    chosen = specific or causes or lines
    return chosen[-1] if chosen else str(err)


def gitlink(repo: git.Repo, path: str) -> str | None:
    """The commit the superproject's index pins at ``path`` (None if not a submodule)."""
    out = repo.git.ls_files("-s", "--", path)
    for line in out.splitlines():
        meta, name = line.split("\t", 1)
        mode, sha = meta.split()[:2]
        if name == path and mode == "160000":
            return sha
    return None


def registered_submodules(repo: git.Repo) -> dict[str, dict[str, str]]:
    """``path -> {name, url, branch}`` from .gitmodules (read by git, not by hand)."""
    gitmodules = Path(repo.working_tree_dir) / ".gitmodules"
    if not gitmodules.is_file():
        return {}
    try:
        out = repo.git.config("-f", str(gitmodules), "--get-regexp", r"^submodule\.")
    except git.GitCommandError:
        return {}
    by_name: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        name, _, field = key[len("submodule.") :].rpartition(".")
        by_name.setdefault(name, {"name": name})[field] = value
    return {entry["path"]: entry for entry in by_name.values() if "path" in entry}


def head_commit(directory: Path) -> str | None:
    try:
        return _ref_sha(git.Repo(directory), "HEAD")
    except (git.GitError, ValueError):
        return None


def _ref_sha(repo: git.Repo, ref: str) -> str:
    """The commit id ``ref`` names, read from git's ref files (GitPython's ``.commit`` would start a
    ``git cat-file`` process per repository just to learn the object's type)."""
    return git.SymbolicReference.dereference_recursive(repo, ref)


@dataclass
class SourceUpdate:
    name: str
    old: str | None
    new: str | None
    status: str  # added | updated | unchanged | refused | failed
    message: str = ""
    notes: list[str] = field(default_factory=list)
    #: the checkout is exactly its commit after the update (None: not looked at); lets the
    #: build reuse the answer instead of asking git again
    clean: bool | None = None


def _is_ancestor(sub: git.Repo, old: str, new: str) -> bool:
    try:
        sub.git.merge_base("--is-ancestor", old, new)
        return True
    except git.GitCommandError:
        return False


def _has_commit(sub: git.Repo, sha: str) -> bool:
    try:
        sub.git.cat_file("-e", f"{sha}^{{commit}}")
        return True
    except git.GitCommandError:
        return False


def check_gitmodules(repo: git.Repo, specs: Mapping[str, SourceSpec]) -> list[tuple[str, str]]:
    """``(submodule name, reason)`` for every ``.gitmodules`` entry sync refuses to touch.

    ``.gitmodules`` arrives with the superproject (a pull, a contributor's branch), so it
    is checked like the registry: paths must be ``datasets/<name>`` and URLs https.
    """
    refusals: list[tuple[str, str]] = []
    for path, entry in registered_submodules(repo).items():
        name = entry["name"]  # registered_submodules names every entry
        pure = PurePosixPath(path)
        if (
            pure.is_absolute()
            or ".." in pure.parts
            or len(pure.parts) != 2
            or pure.parts[0] != DATASETS_DIR
            or pure.as_posix() != path
        ):
            refusals.append(
                (
                    name,
                    f".gitmodules: submodule {name!r} has path {path!r} outside {DATASETS_DIR}/; refused "
                    "(remove that entry from .gitmodules)",
                )
            )
            continue
        try:
            check_url(entry.get("url", ""))
        except RegistryError as err:
            refusals.append((name, f".gitmodules: submodule {name!r} ({path}): {err}"))
    return refusals


# A sync killed between moving a submodule's checkout and staging its gitlink would leave a
# checkout that no longer matches its pin, which the next sync must refuse for anyone else's
# edits. So each move is announced first in .git/covid19-images/moving/<name>
# ("<kind> <old> <target>") and the announcement removed once the gitlink is staged.
def _intent_file(repo: git.Repo, name: str) -> Path:
    return Path(repo.git_dir) / "covid19-images" / "moving" / name


def move_announced(repo: git.Repo, name: str) -> bool:
    """Whether a killed sync left a move of source ``name`` announced (the next update finishes it)."""
    return _intent_file(repo, name).is_file()


def _announce(repo: git.Repo, name: str, kind: str, old: str | None, target: str | None) -> None:
    write_atomic(_intent_file(repo, name), f"{kind} {old or '-'} {target or '-'}\n".encode("ascii"))


def _done(repo: git.Repo, name: str) -> None:
    _intent_file(repo, name).unlink(missing_ok=True)


def _resume_interrupted(repo: git.Repo, spec: SourceSpec, env: Mapping[str, str]) -> str | None:
    """Finish (or undo) the move of ``spec`` that a killed sync left half-done; a note if so."""
    file = _intent_file(repo, spec.name)
    if not file.is_file():
        return None
    kind, old, target = ([*file.read_text(encoding="ascii").split(), "-", "-", "-"])[:3]
    root = Path(repo.working_tree_dir)
    path = spec.path
    note = f"{path}: an earlier sync was interrupted while updating it; "
    if kind == "add":
        if registered_submodules(repo).get(path) is None and gitlink(repo, path) is None:
            for leftover in (root / path, Path(repo.git_dir) / "modules" / spec.name):
                if leftover.is_symlink() or leftover.is_file():
                    leftover.unlink()
                elif leftover.exists():
                    shutil.rmtree(leftover)
            note += "removed its partial clone and registered it again"
        else:
            note += "git had already registered it"
    elif is_initialised(root, path):
        sub = open_repo(root / path, env)
        pin = gitlink(repo, path) or (old if old != "-" else None)
        if target != "-" and _has_commit(sub, target):
            # the move was checked (fast-forward or --allow-rewrite) before it was announced
            sub.git.checkout("--quiet", "--force", "--detach", target)
            repo.git.add("--", path)
            note += f"finished moving it to {target[:12]}"
        elif pin and _has_commit(sub, pin):
            sub.git.checkout("--quiet", "--force", "--detach", pin)
            note += f"put it back at its pin {pin[:12]}"
        else:
            note += "left it as it is"
    else:
        note += "it is not checked out; nothing to undo"
    file.unlink(missing_ok=True)
    return note


def update_source(
    repo: git.Repo,
    spec: SourceSpec,
    env: Mapping[str, str],
    *,
    allow_rewrite: bool,
    submodules: Mapping[str, dict[str, str]] | None = None,
    pins: Mapping[str, str] | None = None,
    asked: Asked | None = None,
) -> SourceUpdate:
    """Move one submodule to its upstream branch tip, or explain exactly why not.

    Every refusal leaves the source as it was: gitlink, checkout and (see
    :class:`SourceSyncError`) its manifest rows. ``submodules`` (:func:`registered_submodules`)
    and ``pins`` (:func:`gitlinks`) are the superproject's state read once for all sources;
    without them they are read here. An unchanged source costs two git processes: the status
    of its checkout and the fetch; ``asked`` holds their answers when sync asked them ahead for
    every source at once (:mod:`covid19_images.sources.git_ahead`).
    """
    root = Path(repo.working_tree_dir)
    path = spec.path
    allow_local = local_allowed(env)
    if submodules is None:
        submodules = registered_submodules(repo)
    registered = submodules.get(path)
    if registered is not None:
        try:
            check_url(registered.get("url", ""))
        except RegistryError as err:
            raise SourceSyncError(f".gitmodules entry for {path}: {err}") from err
    try:
        check_url(spec.url, allow_local=allow_local)
    except RegistryError as err:
        raise SourceSyncError(str(err)) from err
    notes = [n for n in (_resume_interrupted(repo, spec, env),) if n]
    if notes:  # the resumed move changed the superproject: read it again
        submodules, pins, asked = registered_submodules(repo), None, None
    pinned = pins.get(path) if pins is not None else gitlink(repo, path)
    registered = submodules.get(path)

    if registered is None and pinned is None:
        if (root / path).is_symlink() or ((root / path).exists() and any((root / path).iterdir())):
            raise SourceSyncError(f"{path} exists but is not a submodule; move it away first")
        _announce(repo, spec.name, "add", None, None)
        try:
            repo.git.submodule("add", "--name", spec.name, "-b", spec.branch, "--", spec.url, path)
        except git.GitCommandError as err:
            _done(repo, spec.name)
            raise SourceSyncError(f"cannot add {spec.url}: {_last_line(err)}") from err
        checkpoint("update.added")
        _done(repo, spec.name)
        return SourceUpdate(
            spec.name, None, head_commit(root / path), "added", "registered as a new submodule", notes=notes
        )

    if registered is not None and registered.get("url") != spec.url:
        repo.git.submodule("set-url", "--", path, spec.url)
    if registered is not None and registered.get("branch") != spec.branch:
        repo.git.submodule("set-branch", "--branch", spec.branch, "--", path)

    fresh_clone = not is_initialised(root, path)
    if fresh_clone:
        _announce(repo, spec.name, "clone", pinned, None)
        try:
            repo.git.submodule("update", "--init", "--remote", "--no-recommend-shallow", "--", path)
        except git.GitCommandError as err:
            _done(repo, spec.name)
            raise SourceSyncError(f"cannot clone {spec.url}: {_last_line(err)}") from err
        checkpoint("update.cloned")
    sub = open_repo(root / path, env)
    state = asked.state if asked is not None else checkout_status(root / path)
    if not fresh_clone:
        if state == "dirty":
            raise SourceSyncError(
                f"{path} has local modifications; commit or discard them first (git -C {path} status); "
                "nothing was changed for this source",
                keep_manifest_rows=True,
            )
        try:
            current = _ref_sha(sub, "HEAD")
        except ValueError as err:
            raise SourceSyncError(
                f"{path} has no commit checked out; run `git submodule update --init {path}`"
            ) from err
        if pinned and current != pinned:
            raise SourceSyncError(
                f"{path} is checked out at {current[:12]}, not at the pinned {pinned[:12]}; "
                f"run `git submodule update {path}` to return to the pin, or `git add {path}` to pin it; "
                "nothing was changed for this source",
                keep_manifest_rows=True,
            )
        if origin_url(sub) != spec.url:
            sub.git.remote("set-url", "origin", spec.url)
        try:
            if asked is None:
                fetch_upstream(sub, spec.branch)
            elif asked.fetch_error is not None:
                raise asked.fetch_error
        except git.GitCommandError as err:
            message = _last_line(err)
            if "couldn't find remote ref" in message.lower():
                raise SourceSyncError(
                    f"upstream {spec.url} has no branch {spec.branch!r} (deleted or renamed upstream?); "
                    f"nothing was changed for this source; if it moved, set `branch:` in sources.yaml"
                ) from err
            raise SourceSyncError(
                f"upstream unreachable: cannot fetch {spec.url}: {message}; nothing was changed for this source"
            ) from err
        checkpoint("update.fetched")
    new = _ref_sha(sub, f"refs/remotes/origin/{spec.branch}")
    current = _ref_sha(sub, "HEAD")
    if pinned and new != pinned and not _is_ancestor(sub, pinned, new) and not allow_rewrite:
        if fresh_clone:
            repo.git.submodule("deinit", "-f", "--", path)
            _done(repo, spec.name)
        raise SourceSyncError(
            f"upstream {spec.branch} no longer contains the pinned commit {pinned[:12]} "
            "(force-push or history rewrite); review it, then rerun with --allow-rewrite; "
            "nothing was changed for this source"
        )
    clean = state == "clean"  # checking out another commit keeps a clean tree clean
    if new == current == pinned and not sub.head.is_detached:
        pass  # a fresh clone on its branch at the pin: detach it like every other checkout
    elif new == current == pinned:
        return SourceUpdate(spec.name, pinned, new, "unchanged", notes=notes, clean=clean)
    _announce(repo, spec.name, "move", pinned, new)
    sub.git.checkout("--quiet", "--detach", new)
    checkpoint("update.checked-out")
    repo.git.add("--", path)
    checkpoint("update.staged")
    _done(repo, spec.name)
    if pinned == new:
        return SourceUpdate(spec.name, pinned, new, "unchanged", notes=notes, clean=clean)
    return SourceUpdate(spec.name, pinned, new, "updated", notes=notes, clean=clean)


def commits_ahead(directory: Path, branch: str) -> int | None:
    """How far the fetched upstream branch is ahead of the checkout (None if never fetched)."""
    try:
        sub = git.Repo(directory)
        return int(sub.git.rev_list("--count", f"HEAD..refs/remotes/origin/{branch}"))
    except (git.GitError, ValueError):
        return None
