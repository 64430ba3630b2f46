"""Loading a released version, a release's changelog and its Croissant at the field's size.

A root with a ``--rows``-row manifest (two sources, varied labels and splits) is tagged
``2026.11``; 1 % of rows are added and 0.5 % relabelled, committed and tagged ``2026.12``.
Measured, best of ``--rounds``, in one run (the machine may be shared: compare ratios):

- reading the current manifest from disk (``read_manifest``, the reference);
- reading ``2026.11`` through GitPython from the tag's tree (``manifest_at``, what
  ``load_manifest(version=...)`` does), against the two obvious alternatives: ``git show`` piped
  into pandas' C-engine ``read_csv``, and checking the tag out (``git worktree add``) then reading;
- the changes between the two tags (``collect_changes``: what ``release`` writes the changelog from);
- the collection's Croissant document (``collection_croissant``: hashing the manifest plus
  ``report``'s confounding analysis).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_versions.py --rows 200000
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from bench_data_timing import best_of

SOURCES = ("nih-chestxray14-sample", "zhanglab-pediatric-xray")
LABELS = ("normal", "pneumonia", "covid-19", "other")


def _git(*args: str, cwd: Path) -> str:
    env = {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def manifest(rows: int, seed: int = 0) -> pd.DataFrame:
    from covid19_images.core.schema import MANIFEST_COLUMNS

    rng = np.random.default_rng(seed)

    def hexes(width: int) -> list[str]:
        return [rng.integers(0, 256, width // 2, dtype=np.uint8).tobytes().hex() for _ in range(rows)]

    frame = pd.DataFrame({c: [""] * rows for c in MANIFEST_COLUMNS})
    frame["image_id"] = hexes(16)
    sources = np.array(SOURCES)[rng.integers(0, len(SOURCES), rows)]
    frame["source"] = sources
    frame["source_commit"] = "a" * 40
    frame["path"] = [f"datasets/{s}/images/{i:08d}.png" for i, s in enumerate(sources)]
    frame["sha256"], frame["pixel_sha256"], frame["phash"] = hexes(64), hexes(64), hexes(64)
    frame["format"], frame["width"], frame["height"], frame["frames"] = "png", "1024", "1024", "1"
    frame["modality"], frame["view"] = "xray", "PA"
    frame["label"] = np.array(LABELS)[rng.integers(0, len(LABELS), rows)]
    frame["patient_id"] = [f"{s}:{i // 5}" for i, s in enumerate(sources)]
    frame["age"] = rng.integers(1, 90, rows).astype(str)
    frame["license"] = "CC0-1.0"
    frame["split_group"] = frame["patient_id"]
    frame["split"] = np.array(["train"] * 8 + ["val", "test"])[rng.integers(0, 10, rows)]
    return frame


def write(root: Path, frame: pd.DataFrame) -> None:
    from covid19_images.manifest import integrity
    from covid19_images.manifest.io import MANIFEST_FILE, manifest_bytes

    data = manifest_bytes(frame)
    integrity.write_record(root / MANIFEST_FILE, data)
    (root / MANIFEST_FILE).write_bytes(data)


def build(base: Path, rows: int) -> Path:
    root = base / "root"
    (root / "manifests").mkdir(parents=True)
    _git("init", "-q", "-b", "main", cwd=root)
    (root / "sources.yaml").write_text("sources: [" + ", ".join(SOURCES) + "]\n", encoding="utf-8")
    first = manifest(rows)
    write(root, first)
    _git("add", "-A", cwd=root)
    _git("commit", "-qm", "first", cwd=root)
    _git("tag", "-a", "2026.11", "-m", "2026.11", cwd=root)
    grown = pd.concat([first, manifest(rows // 100, seed=1)], ignore_index=True)
    relabel = grown.sample(frac=0.005, random_state=0).index
    grown.loc[relabel, "label"] = "other"
    write(root, grown)
    _git("commit", "-qam", "second", cwd=root)
    _git("tag", "-a", "2026.12", "-m", "2026.12", cwd=root)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from covid19_images.manifest.io import read_manifest
    from covid19_images.manifest.versions import manifest_at
    from covid19_images.release.changes import collect_changes
    from covid19_images.release.citation import collection_croissant
    from covid19_images.sources.registry import load_registry

    with tempfile.TemporaryDirectory(prefix="bench-versions-") as tmp:
        root = build(Path(tmp), args.rows)

        def git_show() -> pd.DataFrame:
            data = subprocess.run(
                ["git", "show", "2026.11:manifests/manifest.csv"], cwd=root, check=True, capture_output=True
            ).stdout
            return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[])

        def worktree() -> pd.DataFrame:
            target = Path(tmp) / "checkout"
            _git("worktree", "add", "-q", "--detach", str(target), "2026.11", cwd=root)
            try:
                return read_manifest(target)
            finally:
                _git("worktree", "remove", "--force", str(target), cwd=root)
                shutil.rmtree(target, ignore_errors=True)

        assert len(manifest_at(root, "2026.11")) == args.rows == len(git_show()) == len(worktree())
        results = {
            "rows": args.rows,
            "read_manifest_disk": best_of(lambda: read_manifest(root), args.rounds),
            "manifest_at_gitpython": best_of(lambda: manifest_at(root, "2026.11"), args.rounds),
            "git_show_read_csv": best_of(git_show, args.rounds),
            "worktree_checkout_read": best_of(worktree, args.rounds),
            "collect_changes": best_of(lambda: collect_changes(root, "2026.11", "2026.12"), args.rounds),
        }
        current = read_manifest(root)
        registry = load_registry(root)
        results["collection_croissant"] = best_of(
            lambda: collection_croissant(root, "2026.12", "2026-12-04", current, registry), args.rounds
        )
        ours = results["manifest_at_gitpython"][0]
        results["ratio_git_show_vs_ours"] = round(results["git_show_read_csv"][0] / ours, 2)
        results["ratio_worktree_vs_ours"] = round(results["worktree_checkout_read"][0] / ours, 2)
        results["ratio_ours_vs_disk"] = round(ours / results["read_manifest_disk"][0], 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
