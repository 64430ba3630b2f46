"""A registry entry or a ``.gitmodules`` line can never run a command or reach outside ``datasets/``.

Three layers, each tested on its own so that removing any one of them fails a test:
``check_url``/``load_registry`` refuse the entry; ``sync`` refuses a hostile ``.gitmodules``
before git sees it; and git itself refuses the transport (``git_environment``), which is
shown with real ``git submodule update`` runs in an environment that would otherwise allow
``ext::`` and ssh (the control runs prove the payload really would have fired).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import git
import pytest
import yaml

from covid19_images.manifest.build import read_manifest
from covid19_images.sources.git import git_environment
from covid19_images.sources.registry import RegistryError, check_url, load_registry
from covid19_images.sync.run import sync
from tests.badinputs import Upstream, make_root, run_git, small_tree

pytestmark = pytest.mark.upstream

REFUSED_ALWAYS = [
    "ext::sh -c touch% /tmp/pwned",
    "ext::sh",
    "fd::17",
    "fd::0,1/repo",
    "transport::https://github.com/x/y.git",
    "ssh://-oProxyCommand=touch%20/tmp/pwned/x.git",
    "ssh://git@github.com/x/y.git",
    "git+ssh://github.com/x/y.git",
    "ssh://github.com/-oProxyCommand=x",
    "git@github.com:x/y.git",
    "git@host:-oProxyCommand=touch /tmp/pwned",
    "-oProxyCommand=touch /tmp/pwned",
    "--upload-pack=touch /tmp/pwned",
    "http://github.com/x/y.git",
    "git://github.com/x/y.git",
    "https://-oProxyCommand=x/y.git",
    "https:///x/y.git",
    "https://github.com/x/y.git\n",
    "https://github.com/x/y.git --upload-pack=x",
    "https://github.com/x\ty.git",
    "https://user:token@github.com/x/y.git",
    "https://github.com:notaport/x/y.git",
    "https://gïthub.com/x/y.git",
    "../relative/mirror.git",
    "relative/mirror.git",
    "file://host/srv/mirror.git",
    "//srv/mirror.git",
    "C:/mirror/x.git",
    "",
]
LOCAL = ["/srv/mirror/x/y.git", "file:///srv/mirror/x/y.git", "file://localhost/srv/mirror/x/y.git"]


@pytest.mark.parametrize("url", REFUSED_ALWAYS)
def test_check_url_refuses_everything_but_https(url: str) -> None:
    with pytest.raises(RegistryError, match=r"refused URL|invalid URL"):
        check_url(url)
    with pytest.raises(RegistryError, match=r"refused URL|invalid URL"):
        check_url(url, allow_local=True)


@pytest.mark.parametrize("url", LOCAL)
def test_local_mirrors_only_when_explicitly_allowed(url: str) -> None:
    with pytest.raises(RegistryError, match=r"only https:// sources are allowed \(local mirrors need --mirror"):
        check_url(url)
    check_url(url, allow_local=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/ieee8023/covid-chestxray-dataset.git",
        "https://gitlab.example.org:8443/a/b",
        "https://[2001:db8::1]/mirror/a.git",
        "https://[::1]:8443/a.git",
    ],
)
def test_https_is_accepted(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize("url", ["https://[2001:db8::zz]/a.git", "https://[not-an-address]/a.git"])
def test_malformed_ipv6_host_is_refused(url: str) -> None:
    with pytest.raises(RegistryError):
        check_url(url)


def _registry(tmp_path: Path, **entry) -> Path:
    base = {
        "name": "alpha",
        "url": "https://github.com/example/alpha.git",
        "branch": "master",
        "parser": "ieee8023-covid-chestxray",
        "modalities": ["xray"],
        "license": "CC-BY-4.0",
    }
    base.update(entry)
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": [base]}))
    return tmp_path


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "../evil", "invalid source name"),
        ("name", "datasets/evil", "invalid source name"),
        ("name", ".git", "invalid source name"),
        ("name", "-rf", "invalid source name"),
        ("name", "Evil", "invalid source name"),
        ("name", "a b", "invalid source name"),
        ("name", "evil\n", "invalid source name"),
        ("name", "", "invalid source name"),
        ("path", "../outside", "must be datasets/alpha"),
        ("path", "/etc/alpha", "must be datasets/alpha"),
        ("path", "datasets/../alpha", "must be datasets/alpha"),
        ("path", "datasets/other", "must be datasets/alpha"),
        ("path", "src/covid19_images", "must be datasets/alpha"),
        ("path", ".git/modules/alpha", "must be datasets/alpha"),
        ("url", "ext::sh -c touch% /tmp/pwned", "refused URL"),
        ("url", "ssh://-oProxyCommand=touch%20/tmp/pwned/x", "refused URL"),
        ("url", "git@github.com:-oProxyCommand=x", "refused URL"),
        ("url", "file:///srv/mirror/alpha.git", "refused URL"),
        ("url", "/srv/mirror/alpha.git", "refused URL"),
        ("branch", "--upload-pack=touch", "invalid branch"),
        ("branch", "main..evil", "invalid branch"),
        ("branch", "main.lock", "invalid branch"),
        ("branch", "@{-1}", "invalid branch"),
        ("branch", "a b", "invalid branch"),
        ("parser", "../../evil", "invalid parser name"),
        ("parser", "_common", "invalid parser name"),
        ("parser", "os.path", "invalid parser name"),
        ("options", ["not", "a", "mapping"], "must be a list and 'options' a mapping"),
    ],
)
def test_registry_refuses_unsafe_entries(tmp_path: Path, field: str, value, message: str) -> None:
    root = _registry(tmp_path, **{field: value})
    with pytest.raises(RegistryError, match=message):
        load_registry(root)


# ---------------------------------------------------------------- real git


@pytest.fixture
def world(tmp_path: Path):
    """Two small upstreams (real ieee8023 images) and a root synced to both, committed."""
    mirror = tmp_path / "mirror"
    alpha = Upstream(mirror, "example", "alpha")
    beta = Upstream(mirror, "example", "beta")
    alpha.publish(small_tree(tmp_path / "a1", ["000005-5-b.jpg", "000002-14.jpg"]))
    beta.publish(small_tree(tmp_path / "b1", ["000002-11-b.jpg"]))
    root = make_root(tmp_path / "root", [{"name": "alpha", "url": alpha.url}, {"name": "beta", "url": beta.url}])
    report = sync(root, mirror=mirror, progress=False, commit=True)
    assert not report.failed, report.summary()
    return root, mirror, alpha, beta, tmp_path


def _write_gitmodules(root: Path, text: str) -> None:
    (root / ".gitmodules").write_text(text)


def test_sync_refuses_registry_with_ext_url_before_running_git(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    root = make_root(tmp_path / "root", [{"name": "alpha", "url": f"ext::sh -c touch% {pwned}"}])
    with pytest.raises(RegistryError, match=r"source alpha: refused URL 'ext::sh"):
        sync(root, mirror=tmp_path, progress=False)
    assert not pwned.exists()
    assert not (root / "datasets").exists()


def test_hostile_gitmodules_url_is_refused_by_sync(world, monkeypatch) -> None:
    root, mirror, _alpha, beta, tmp_path = world
    pwned = tmp_path / "pwned-gitmodules"
    before = read_manifest(root)
    gitlink = run_git("ls-files", "-s", "datasets/alpha", cwd=root)
    text = (root / ".gitmodules").read_text()
    _write_gitmodules(root, text.replace("https://github.com/example/alpha.git", f"ext::sh -c touch% {pwned}", 1))
    # even an environment that allows every transport must not let it through
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.allow")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "always")
    beta.publish(small_tree(tmp_path / "b2", ["000002-11-b.jpg", "000002-19-b.jpg"]))
    report = sync(root, mirror=mirror, progress=False)
    updates = {u.name: u for u in report.updates}
    assert updates["alpha"].status == "refused"
    assert ".gitmodules: submodule 'alpha' (datasets/alpha): refused URL 'ext::sh" in updates["alpha"].message
    assert updates["beta"].status == "updated"
    assert not pwned.exists()
    assert run_git("ls-files", "-s", "datasets/alpha", cwd=root) == gitlink
    after = read_manifest(root)
    assert (
        after[after["source"] == "alpha"]
        .reset_index(drop=True)
        .equals(before[before["source"] == "alpha"].reset_index(drop=True))
    )
    assert len(after[after["source"] == "beta"]) == 2


@pytest.mark.parametrize(
    "path",
    [
        "../escape",
        "src/evil",
        "datasets/../../escape",
        ".git/hooks",
        "/tmp/abs",
        "datasets/alpha/nested",
        "datasets/x/y",
    ],
)
def test_hostile_gitmodules_path_outside_datasets_is_refused(world, path: str) -> None:
    root, mirror, _alpha, beta, tmp_path = world
    evil = Upstream(mirror, "example", "evil")
    evil.publish(small_tree(tmp_path / "e1", ["000002-19-b.jpg"]))
    beta.publish(small_tree(tmp_path / "b2", ["000002-11-b.jpg", "000002-19-b.jpg"]))
    text = (root / ".gitmodules").read_text()
    _write_gitmodules(root, text + f'[submodule "evil"]\n\tpath = {path}\n\turl = {evil.url}\n')
    report = sync(root, mirror=mirror, progress=False, commit=True)
    refused = [u for u in report.updates if u.name == "evil"]
    assert refused and refused[0].status == "refused"
    assert refused[0].message == (
        f".gitmodules: submodule 'evil' has path '{path}' outside datasets/; "
        "refused (remove that entry from .gitmodules)"
    )
    assert {u.name: u.status for u in report.updates if u.name != "evil"} == {
        "alpha": "unchanged",
        "beta": "updated",
    }
    # the other sources' update is committed, the tampered .gitmodules is not
    assert report.committed
    assert "evil" not in run_git("show", "HEAD:.gitmodules", cwd=root)
    for candidate in (
        root / "src" / "evil",
        tmp_path / "escape",
        root / ".git" / "hooks" / ".git",
        root / "datasets" / "alpha" / "nested",
        root / "datasets" / "x",
    ):
        assert not candidate.exists()
    assert not (root / ".git" / "modules" / "evil").exists()
    assert "evil" in report.summary() and "refused" in report.summary()


def _superproject_with_gitlink(tmp_path: Path, url: str) -> git.Repo:
    """A repo pinning ``datasets/x`` to some commit, with ``url`` in .gitmodules (no registry at all)."""
    root = tmp_path / "super"
    root.mkdir()
    run_git("init", "-q", "-b", "main", cwd=root)
    run_git("commit", "-q", "--allow-empty", "-m", "init", cwd=root)
    head = run_git("rev-parse", "HEAD", cwd=root)
    run_git("update-index", "--add", "--cacheinfo", f"160000,{head},datasets/x", cwd=root)
    (root / ".gitmodules").write_text(f'[submodule "x"]\n\tpath = datasets/x\n\turl = {url}\n')
    return git.Repo(root)


def _submodule_update(repo: git.Repo, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "submodule", "update", "--init", "--", "datasets/x"],
        cwd=repo.working_tree_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


PERMISSIVE = {
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "protocol.allow",
    "GIT_CONFIG_VALUE_0": "always",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


@pytest.mark.parametrize("scheme", ["ext", "fd"])
def test_git_itself_refuses_transport_helpers_from_gitmodules(tmp_path: Path, scheme: str) -> None:
    pwned = tmp_path / f"pwned-{scheme}"
    url = f"ext::sh -c touch% {pwned}" if scheme == "ext" else "fd::0"
    repo = _superproject_with_gitlink(tmp_path, url)
    hostile = {**os.environ, **PERMISSIVE}
    if scheme == "ext":
        # control: with the user's permissive config alone, git really runs the payload
        control = _submodule_update(repo, hostile)
        assert pwned.exists(), control.stderr
        pwned.unlink()
    guarded = _submodule_update(repo, git_environment(base=hostile))
    assert guarded.returncode != 0
    assert f"transport '{scheme}' not allowed" in guarded.stderr
    assert not pwned.exists()
    # also with local mirrors allowed: only https and file are ever enabled
    guarded = _submodule_update(repo, git_environment(base=hostile, allow_local=True))
    assert f"transport '{scheme}' not allowed" in guarded.stderr
    assert not pwned.exists()


def test_git_itself_refuses_ssh_from_gitmodules(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned-ssh"
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(f"#!/bin/sh\ntouch {pwned}\nexit 1\n")
    fake_ssh.chmod(fake_ssh.stat().st_mode | stat.S_IEXEC)
    repo = _superproject_with_gitlink(tmp_path, "ssh://git@example.invalid/x/y.git")
    hostile = {**os.environ, **PERMISSIVE, "GIT_SSH_COMMAND": str(fake_ssh)}
    control = _submodule_update(repo, hostile)
    assert pwned.exists(), control.stderr
    pwned.unlink()
    guarded = _submodule_update(repo, git_environment(base=hostile))
    assert "transport 'ssh' not allowed" in guarded.stderr
    assert not pwned.exists()


def test_git_environment_refuses_file_unless_local_allowed(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    upstream = Upstream(mirror, "example", "x")
    upstream.publish(small_tree(tmp_path / "t", ["000005-5-b.jpg"]))
    repo = _superproject_with_gitlink(tmp_path, str(upstream.bare))
    base = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    refused = _submodule_update(repo, git_environment(base=base))
    assert "transport 'file' not allowed" in refused.stderr
    allowed = _submodule_update(repo, git_environment(base=base, allow_local=True))
    # the transport is allowed now; the clone itself then fails only because the pinned commit is not upstream
    assert "not allowed" not in allowed.stderr


def test_git_environment_sets_the_transport_policy_twice_over() -> None:
    """``GIT_ALLOW_PROTOCOL`` (strongest, overrides config) and explicit ``protocol.*.allow``
    entries after the user's own, so either alone still refuses ext/fd/ssh."""
    hostile = {**PERMISSIVE, "GIT_ALLOW_PROTOCOL": "ext:fd:ssh:https:file"}
    env = git_environment(base=hostile)
    assert env["GIT_ALLOW_PROTOCOL"] == "https"
    assert git_environment(base=hostile, allow_local=True)["GIT_ALLOW_PROTOCOL"] == "https:file"
    pairs = [(env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"]) for i in range(int(env["GIT_CONFIG_COUNT"]))]
    assert pairs[0] == ("protocol.allow", "always")  # the user's entry is kept, and overridden after it
    last = dict(pairs)
    assert last["protocol.allow"] == "never"
    for scheme in ("ext", "fd", "ssh", "file"):
        assert last[f"protocol.{scheme}.allow"] == "never"
    assert last["protocol.https.allow"] == "always"
    assert last["submodule.recurse"] == "false" and last["fetch.recurseSubmodules"] == "false"


def test_check_gitmodules_accepts_exactly_datasets_slash_name(tmp_path: Path) -> None:
    """Every ``.gitmodules`` path but ``datasets/<name>`` (one level, normalised) is refused, read
    from a real repository's ``.gitmodules`` by git."""
    from covid19_images.sources.git import check_gitmodules

    repo = git.Repo.init(tmp_path / "root")
    entries = {
        "ok": "datasets/ok",
        "nested": "datasets/alpha/nested",
        "deeper": "datasets/x/y",
        "bare": "datasets",
        "dotted": "datasets/./dotted",
        "climb": "datasets/../dotted",
        "abs": "/datasets/abs",
        "elsewhere": "data/elsewhere",
        "trailing": "datasets/trailing/",
        "up": "datasets/..",
    }
    text = "".join(
        f'[submodule "{name}"]\n\tpath = {path}\n\turl = https://github.com/example/{name}.git\n'
        for name, path in entries.items()
    )
    text += '[submodule "badurl"]\n\tpath = datasets/badurl\n\turl = ext::sh -c touch% /tmp/pwned\n'
    text += '[submodule "nourl"]\n\tpath = datasets/nourl\n'
    (tmp_path / "root" / ".gitmodules").write_text(text)
    refused = dict(check_gitmodules(repo, {}))
    assert set(refused) == (set(entries) - {"ok"}) | {"badurl", "nourl"}
    assert refused["nourl"] == ".gitmodules: submodule 'nourl' (datasets/nourl): invalid URL '': empty"
    assert refused["up"].startswith(".gitmodules: submodule 'up' has path 'datasets/..' outside datasets/")
    assert refused["nested"] == (
        ".gitmodules: submodule 'nested' has path 'datasets/alpha/nested' outside datasets/; "
        "refused (remove that entry from .gitmodules)"
    )
    assert refused["badurl"].startswith(".gitmodules: submodule 'badurl' (datasets/badurl): refused URL 'ext::sh")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"parser": "darshan-xray", "options": {"include_augmented": "false"}},
            "option 'include_augmented' must be true or false \\(unquoted\\), not 'false'",
        ),
        ({"parser": "darshan-xray", "options": {"include_augmented": 0}}, "option 'include_augmented' must be true or"),
        ({"parser": "darshan-xray", "options": {"include_augmentd": False}}, "unknown option 'include_augmentd'"),
        ({"parser": "dicom_study", "options": {"label": True}}, "option 'label' must be text, not True"),
        ({"parser": "ahp-ct", "options": {"label": ["covid-19"]}}, "option 'label' must be text, not"),
        (
            {"parser": "ieee8023-covid-chestxray", "options": {"labels": "x.csv"}},
            "unknown option 'labels' for parser ieee8023-covid-chestxray \\(it reads: published_ids\\)",
        ),
        ({"pending": "false"}, "'pending' must be true or false \\(unquoted\\), not 'false'"),
        ({"lfs": "no"}, "'lfs' must be true or false"),
    ],
)
def test_registry_options_and_flags_are_type_checked(tmp_path: Path, entry: dict, message: str) -> None:
    with pytest.raises(RegistryError, match=f"source alpha: {message}"):
        load_registry(_registry(tmp_path, **entry))


def test_well_typed_options_are_accepted_and_read_as_given(tmp_path: Path) -> None:
    spec = load_registry(_registry(tmp_path, parser="darshan-xray", options={"include_augmented": False}))["alpha"]
    assert spec.options == {"include_augmented": False}
    spec = load_registry(_registry(tmp_path, parser="dicom_study", options={"label": "covid-19"}, pending=True))
    assert spec["alpha"].options == {"label": "covid-19"} and spec["alpha"].pending is True
