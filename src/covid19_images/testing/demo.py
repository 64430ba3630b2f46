"""``make demo``: the main job on a machine with or without internet.

With the real samples in ``../shared/upstream`` present (this workplace, CI), it builds local
bare mirrors from them, syncs a fresh demo root against those mirrors through git's own
``url.<mirror>/.insteadOf`` rewriting, prints the manifest summary and loads a few images.
Without them it says how to sync from the real upstreams instead.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import click
import git

from covid19_images import MEDICAL_WARNING
from covid19_images.core.paths import find_root
from covid19_images.sources.registry import REGISTRY_FILE, load_registry
from covid19_images.sync.run import sync
from covid19_images.testing.mirrors import build_sample_mirrors, shared_available


def _fresh_root(root: Path, registry_file: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if not (root / ".git").exists():
        repo = git.Repo.init(root, initial_branch="main")
        with repo.config_writer() as config:
            config.set_value("user", "name", "covid19-images demo")
            config.set_value("user", "email", "demo@covid19-images.invalid")
    shutil.copyfile(registry_file, root / REGISTRY_FILE)


def _load_some(root: Path) -> None:
    from covid19_images import load_covid_ct, load_covid_xray
    from covid19_images.loaders import MedicalWarning

    # the demo prints the warning itself, once, where it is read: at the end
    warnings.simplefilter("ignore", MedicalWarning)
    for title, loader in (("X-ray", load_covid_xray), ("CT", load_covid_ct)):
        try:
            dataset = loader("torch", root=root, split="train", image_size=224)
        except ImportError as err:
            click.echo(f"{title}: {err}")
            continue
        except Exception as err:  # noqa: BLE001 - the demo reports, it does not crash
            click.echo(f"{title}: could not load: {type(err).__name__}: {err}")
            continue
        click.echo(f"{title} train split: {len(dataset)} images, classes {list(dataset.classes)}")
        for index in range(min(3, len(dataset))):
            image, label = dataset[index]
            row = dataset.manifest.iloc[index]
            click.echo(f"  [{index}] {tuple(image.shape)} {dataset.classes[label]:<10} {row['source']}: {row['path']}")


@click.command()
@click.option("--shared", type=click.Path(path_type=Path), default=Path("../shared/upstream"), show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("build/demo"), show_default=True)
def main(shared: Path, workdir: Path) -> None:
    """Sync the real upstream samples through local mirrors, summarise, and load a few images."""
    project = find_root()
    registry = load_registry(project)
    if not shared_available(shared):
        click.echo(
            f"No upstream samples at {shared}. Online, run `covid19-images sync` in {project} "
            "(or `git clone --recursive`), or point --mirror at a local mirror tree."
        )
        sys.exit(1)
    mirrors, root = workdir / "mirrors", workdir / "root"
    click.echo(f"1/3 building local bare mirrors of the real samples in {shared} -> {mirrors}")
    built = build_sample_mirrors(shared, mirrors, list(registry.values()))
    click.echo(f"    {len(built)} sources mirrored (offline stand-ins for their GitHub upstreams)")
    _fresh_root(root, project / REGISTRY_FILE)
    click.echo(f"2/3 syncing {root} (git rewrites https://github.com/ to the mirrors; no network used)")
    report = sync(root, mirror=mirrors, progress=True)
    click.echo(report.summary())
    build = report.build
    assert build is not None
    manifest = build.manifest
    click.echo(f"\nmanifest {root / 'manifests/manifest.csv'}: {len(manifest)} images, {len(build.problems)} problems")
    if not manifest.empty:
        table = manifest.pivot_table(index="source", columns="label", values="image_id", aggfunc="count", fill_value=0)
        click.echo(table.to_string())
        click.echo(f"splits: {manifest['split'].value_counts().to_dict()}")
    if build.problems:
        counts: dict[str, int] = {}
        for problem in build.problems:
            counts[problem.source] = counts.get(problem.source, 0) + 1
        listing = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        click.echo(f"problems by source (details in {root / 'manifests/problems.csv'}): {listing}")
    click.echo("\n3/3 loading a few images")
    _load_some(root)
    click.echo(f"\n{MEDICAL_WARNING}")
    click.echo(f"Use this root in Python: covid19_images.load_covid_xray('torch', root='{root.resolve()}')")


if __name__ == "__main__":
    main()
