"""The README as a newcomer runs it: a fresh clone, ``make demo``, then every code block in order.

A module-scoped fixture makes a clone-like folder (``sources.yaml``, empty ``datasets/``: what a
clone without submodules holds), runs the demo in it on the miniatures, as a fresh clone does,
then runs the README's blocks in that folder with nothing set: Python blocks in one interpreter,
in order (as pasted into one session), bash blocks through ``bash -euo pipefail``. A block not
meant to run carries ``<!-- readme-test: skip (reason) -->`` on the line before its fence.
The notebooks run the same way, through ``make notebooks``'s command.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.framework, pytest.mark.xdist_group("readme")]
PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
SKIP = re.compile(r"<!-- readme-test: skip \((?P<reason>[^)]+)\) -->\n$")


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int
    skip: str | None  # the reason, for a block marked not to run


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block with its language, first line and skip reason."""
    blocks = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```$", text, flags=re.S | re.M):
        before = text[: match.start()]
        previous = before[before.rstrip("\n").rfind("\n") + 1 :]
        marker = SKIP.search(previous)
        blocks.append(Block(match.group(1), match.group(2), before.count("\n") + 1, marker and marker["reason"]))
    return blocks


DRIVER = """
import signal, subprocess, sys, time
blocks = {blocks!r}
namespace = {{"__name__": "__readme__"}}


def _too_long(signum, frame):
    raise TimeoutError("this README block ran for more than {block_limit} s")


signal.signal(signal.SIGALRM, _too_long)
for language, code, line in blocks:
    print(f"README.md:{{line}} ({{language}})", file=sys.stderr, flush=True)
    started = time.monotonic()
    if language == "python":
        signal.alarm({block_limit})
        exec(compile(code, f"README.md:{{line}}", "exec"), namespace)
        signal.alarm(0)
    else:
        subprocess.run(["bash", "-euo", "pipefail", "-c", code], check=True, timeout={block_limit})
    print(f"README.md:{{line}} took {{time.monotonic() - started:.1f}} s", file=sys.stderr, flush=True)
"""
# A block that never ends (a server, a prompt) fails on its own line within this bound, not at the whole run's.
BLOCK_LIMIT = 300


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COVID19_IMAGES_ROOT"}
    env.update(
        PYTHONPATH=str(PROJECT / "src"),
        COVID19_IMAGES_SHARED="none",
        MPLBACKEND="agg",
        TF_CPP_MIN_LOG_LEVEL="3",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # covid19-images, as installed
    )
    return env


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A clone-like folder after ``make demo``, and what the demo printed."""
    folder = tmp_path_factory.mktemp("readme") / "clone"
    for name in (PROJECT / "datasets").iterdir():
        (folder / "datasets" / name.name).mkdir(parents=True)  # uninitialised submodules: empty
    shutil.copyfile(PROJECT / "sources.yaml", folder / "sources.yaml")
    shutil.copytree(PROJECT / "notebooks", folder / "notebooks")
    command = [sys.executable, "-m", "covid19_images.testing.demo", "--workdir", "build/demo"]
    done = subprocess.run(command, cwd=folder, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-12000:] + done.stdout[-2000:]  # a crash: every thread's stack
    return folder, done.stdout


def test_only_a_few_blocks_are_skipped_and_each_says_why() -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    skipped = [b for b in blocks if b.skip]
    assert {b.language for b in blocks} == {"bash", "python"}
    assert all(b.skip.strip() for b in skipped)
    # the network (3), the test's own commands, a mirror path, the release section's blocks, which need a
    # root with committed history (tests/release runs them on a demo root), and the browser's server
    assert len(skipped) <= 8 and len(blocks) - len(skipped) >= 6, [(b.line, b.skip) for b in skipped]


def test_the_readme_quotes_the_demo_counts(clone: tuple[Path, str]) -> None:
    folder, printed = clone
    readme = README.read_text(encoding="utf-8")
    manifest = list(csv.DictReader((folder / "build/demo/root/manifests/manifest.csv").open(encoding="utf-8")))
    problems = list(csv.DictReader((folder / "build/demo/root/manifests/problems.csv").open(encoding="utf-8")))
    sources = len(re.findall(r"^  - ", (PROJECT / "sources.yaml").read_text(), flags=re.M))
    holding = len({row["source"] for row in manifest})
    said = f"{len(manifest)} images; {holding} of the {sources} sources hold images"
    assert said in printed and said in readme.replace("\n", " "), said
    assert f"{len(problems)} problems, on purpose" in printed and f"{len(problems)} problems, on purpose" in readme
    for title in ("X-ray", "CT", "ultrasound"):
        found = re.search(rf"^{title}: \d+ items \(train (\d+), val (\d+), test (\d+)\)", printed, flags=re.M)
        assert found, printed
        assert all(int(n) > 0 for n in found.groups()), f"{title}: an empty split {found.groups()}"
        assert f"{title} {'/'.join(found.groups())}" in readme, f"README does not say {title} {found.groups()}"


def test_every_readme_block_runs_as_written_after_the_demo(clone: tuple[Path, str]) -> None:
    folder, _printed = clone
    blocks = [(b.language, b.code, b.line) for b in readme_blocks(README.read_text(encoding="utf-8")) if not b.skip]
    script = folder.parent / "readme_driver.py"
    script.write_text(DRIVER.format(blocks=blocks, block_limit=BLOCK_LIMIT), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], cwd=folder, env=_env(), capture_output=True, text=True, timeout=1500
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert "using the demo root" in done.stderr  # the notice, so nobody mistakes test data for a real root
    assert (folder / "build/xray-hf/README.md").is_file() and (folder / "build/xray-tfr/export.json").is_file()
    assert (folder / "build/site/index.html").is_file()  # the static catalog


def test_the_notebooks_run_as_shipped_after_the_demo(clone: tuple[Path, str]) -> None:
    folder, _printed = clone
    command = [sys.executable, "-m", "pytest", "--nbmake", "notebooks", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=folder, env=_env(), capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout
