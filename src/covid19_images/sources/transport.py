"""Git's transport policy for sync, enforced by git itself through the environment.

Every git process sync starts carries ``protocol.allow=never`` plus an explicit allow for
https (and for local paths only when local mirrors are allowed), appended to whatever the
user put in ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``, so ``url.<mirror>.insteadOf``
rewriting keeps working while ``ext::``, ``fd::`` and ssh stay refused.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

ALLOW_LOCAL_ENV = "COVID19_IMAGES_ALLOW_LOCAL"
#: set in the environment git_environment returns: whether that environment allows local paths
_LOCAL_ALLOWED = "COVID19_IMAGES_LOCAL_ALLOWED"
MIRROR_ENV = "COVID19_IMAGES_MIRROR"
GITHUB_PREFIX = "https://github.com/"


def _config_pairs(env: Mapping[str, str]) -> list[tuple[str, str]]:
    try:
        count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    except ValueError:
        count = 0
    return [(env.get(f"GIT_CONFIG_KEY_{i}", ""), env.get(f"GIT_CONFIG_VALUE_{i}", "")) for i in range(count)]


def file_protocol_allowed_by_user(env: Mapping[str, str]) -> bool:
    """True when the user's own git configuration already allows ``protocol.file``."""
    for key, value in reversed(_config_pairs(env)):
        if key.lower() == "protocol.file.allow":
            return value == "always"
    # subprocess, not GitPython: this must see exactly ``env``, and GitPython always layers
    # the caller's environment over os.environ
    try:
        out = subprocess.run(
            ["git", "config", "--get", "protocol.file.allow"],
            capture_output=True,
            text=True,
            env=dict(env),
            check=False,
        )
    except OSError:
        return False
    return out.stdout.strip() == "always"


def git_environment(
    *, allow_local: bool = False, mirror: Path | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment for every git process of a sync.

    ``GIT_ALLOW_PROTOCOL`` overrides any ``protocol.*.allow`` the user or a hostile
    environment set, so even a URL that never went through :func:`check_url` (an edited
    ``.gitmodules``, a submodule's own config) cannot reach ``ext::``, ``fd::`` or ssh.
    """
    env = dict(os.environ if base is None else base)
    mirror = mirror or (Path(env[MIRROR_ENV]) if env.get(MIRROR_ENV) else None)
    allow_local = (
        allow_local or mirror is not None or env.get(ALLOW_LOCAL_ENV) == "1" or file_protocol_allowed_by_user(env)
    )
    pairs = _config_pairs(env)
    pairs += [
        ("protocol.allow", "never"),
        ("protocol.https.allow", "always"),
        ("protocol.file.allow", "always" if allow_local else "never"),
        ("protocol.ext.allow", "never"),
        ("protocol.fd.allow", "never"),
        ("protocol.ssh.allow", "never"),
        ("core.sshCommand", "false"),
        # an upstream's own .gitmodules is data too: never fetch or check out nested submodules
        ("submodule.recurse", "false"),
        ("fetch.recurseSubmodules", "false"),
    ]
    if not any(key.lower() == "checkout.workers" for key, _ in pairs):
        # a first sync checks out tens of thousands of files per source: on every core (0 = all)
        pairs.append(("checkout.workers", "0"))
    if mirror is not None:
        pairs.append((f"url.{Path(mirror).resolve().as_posix()}/.insteadOf", GITHUB_PREFIX))
    for key in [k for k in env if k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))]:
        del env[key]
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(len(pairs))
    env["GIT_ALLOW_PROTOCOL"] = "https:file" if allow_local else "https"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_LFS_SKIP_SMUDGE"] = env.get("GIT_LFS_SKIP_SMUDGE", "1")
    env[_LOCAL_ALLOWED] = "1" if allow_local else "0"
    return env


def local_allowed(env: Mapping[str, str]) -> bool:
    """Whether ``env`` (made by :func:`git_environment`) lets git use local paths: what URL checks must follow."""
    return env.get(_LOCAL_ALLOWED) == "1"
