"""The one-line reason sync gives for a failed git command, read from real git failures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import git
import pytest

from covid19_images.sources.git import _last_line, open_repo
from covid19_images.sources.transport import git_environment
from tests.conftest import git as run_git


@pytest.fixture
def repos(tmp_path: Path) -> tuple[git.Repo, git.Repo]:
    """A repo with one commit on ``master`` and a file modified in its work tree; and an empty repo."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    run_git("init", "-q", "-b", "master", cwd=upstream)
    (upstream / "f.txt").write_text("one\n")
    run_git("add", "f.txt", cwd=upstream)
    run_git("-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "one", cwd=upstream)
    run_git("checkout", "-qb", "other", cwd=upstream)
    (upstream / "f.txt").write_text("two\n")
    run_git("-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qam", "two", cwd=upstream)
    run_git("checkout", "-q", "master", cwd=upstream)
    (upstream / "f.txt").write_text("local edit\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    run_git("init", "-q", "-b", "main", cwd=empty)
    return git.Repo(upstream), git.Repo(empty)


def _failure(command: Callable[[], object]) -> git.GitCommandError:
    with pytest.raises(git.GitCommandError) as caught:
        command()
    return caught.value


def test_missing_repository_names_the_cause_not_the_generic_closing_line(repos, tmp_path: Path) -> None:
    _upstream, empty = repos
    missing = tmp_path / "nowhere"
    err = _failure(lambda: empty.git.fetch(str(missing)))
    assert "Could not read from remote repository" in err.stderr  # git really says both
    assert _last_line(err) == f"fatal: '{missing}' does not appear to be a git repository"


def test_failed_submodule_clone_names_the_cause(repos, tmp_path: Path) -> None:
    _upstream, empty = repos
    missing = tmp_path / "nowhere"
    err = _failure(lambda: empty.git.submodule("add", "--", str(missing), "datasets/x"))
    assert "clone of" in err.stderr
    assert _last_line(err) == f"fatal: repository '{missing}' does not exist"


def test_missing_branch(repos) -> None:
    upstream, empty = repos
    err = _failure(lambda: empty.git.fetch(upstream.working_tree_dir, "refs/heads/gone"))
    assert _last_line(err) == "fatal: couldn't find remote ref refs/heads/gone"


def test_refused_transport(repos) -> None:
    upstream, empty = repos
    guarded = open_repo(Path(empty.working_tree_dir), git_environment(allow_local=False, base={}))
    err = _failure(lambda: guarded.git.fetch(f"file://{upstream.working_tree_dir}"))
    assert _last_line(err) == "fatal: transport 'file' not allowed"


def test_error_line_without_the_advice_after_it(repos) -> None:
    upstream, _empty = repos
    err = _failure(lambda: upstream.git.checkout("other"))
    assert "Aborting" in err.stderr
    assert _last_line(err) == ("error: Your local changes to the following files would be overwritten by checkout:")
