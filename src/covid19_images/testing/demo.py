"""``make demo``: the main job on any machine, offline, with nothing beside the clone.

It builds local bare "upstream" mirrors from upstream samples, syncs a fresh demo root against
those mirrors through git's own ``url.<mirror>/.insteadOf`` rewriting, prints the manifest
summary and loads one image per source. The samples are the real ones in ``../shared/upstream``
where that folder exists (this workplace, CI), otherwise the miniatures shipped inside the
package (``sources/catalog/*/miniature``: a few files per source, real where the licence
allows, synthetic elsewhere). ``--data`` / ``--shared`` / ``COVID19_IMAGES_SHARED`` choose.
"""

from __future__ import annotations

import shutil
import sys
import time
import warnings
from pathlib import Path

import click
import git

from covid19_images import MEDICAL_WARNING
from covid19_images.core.paths import find_root
from covid19_images.sources.registry import REGISTRY_FILE, load_registry
from covid19_images.sync.portals import update_portal
from covid19_images.sync.run import sync
from covid19_images.testing.miniature import ENV_VAR, materialize_miniatures, requested_samples
from covid19_images.testing.mirrors import build_sample_mirrors, default_shared, shared_available
from covid19_images.testing.portal_miniatures import serve_miniature
from covid19_images.testing.portal_server import point_root_at, running


def _fresh_root(root: Path, registry_file: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if not (root / ".git").exists():
        repo = git.Repo.init(root, initial_branch="main")
        with repo.config_writer() as config:
            config.set_value("user", "name", "covid19-images demo")
            config.set_value("user", "email", "demo@covid19-images.invalid")
    shutil.copyfile(registry_file, root / REGISTRY_FILE)


def _fetch_portal_sources(root: Path, specs: list) -> None:
    """Pin and fetch every portal source from a loopback portal serving its miniature.

    The root's git config gets ``url.http://127.0.0.1:<port>/<host>/.insteadOf https://<host>/``:
    the same mechanism, and the same code path, a user's mirror would take.
    """
    if not specs:
        return
    with running() as server:
        for spec in specs:
            serve_miniature(server, spec)
        point_root_at(root, server)
        click.echo(f"    portal sources: {server.base} stands in for the portals (git insteadOf; loopback only)")
        for spec in specs:
            _old, new = update_portal(root, spec.name, progress=False)
            click.echo(
                f"    fetched {spec.name} ({spec.portal} {spec.dataset}): {len(new.entries)} file(s), "
                f"{new.total_size} bytes, verified against manifests/locks/{spec.name}.lock.tsv"
            )


def _load_some(root: Path) -> int:
    """One image per source through the torch loaders; returns how many sources gave one."""
    from covid19_images import load_covid_ct, load_covid_ultrasound, load_covid_xray
    from covid19_images.loaders import MedicalWarning

    # the demo prints the warning itself, once, where it is read: at the end
    warnings.simplefilter("ignore", MedicalWarning)
    shown: set[str] = set()
    for title, loader in (("X-ray", load_covid_xray), ("CT", load_covid_ct), ("ultrasound", load_covid_ultrasound)):
        try:
            dataset = loader("torch", root=root, split=None, labels="all", image_size=224)
        except ImportError as err:
            click.echo(f"{title}: {err}")
            continue
        except Exception as err:  # noqa: BLE001 - the demo reports, it does not crash
            click.echo(f"{title}: could not load: {type(err).__name__}: {err}")
            continue
        click.echo(f"{title}: {len(dataset)} images, classes {list(dataset.classes)}")
        frame = dataset.manifest.reset_index(drop=True)
        for index, row in frame.drop_duplicates("source").iterrows():
            if row["source"] in shown:
                continue
            image, label = dataset[int(index)]
            shown.add(row["source"])
            click.echo(f"  {tuple(image.shape)} {dataset.classes[label]:<10} {row['source']}: {row['path']}")
    return len(shown)


def _samples(shared: Path | None, data: str, workdir: Path) -> tuple[Path, str]:
    """The samples folder to mirror and a phrase saying what it is."""
    if data == "auto" and shared is None:
        shared = requested_samples()
        data = "shared" if shared is not None else "miniature"
    if data == "miniature":
        folder = materialize_miniatures(workdir / "miniature-upstream")
        return folder, "the miniatures shipped in the package (a few files per source; see ATTRIBUTION.md)"
    shared = shared if shared is not None else default_shared()
    if not shared_available(shared):
        click.echo(
            f"No upstream samples at {shared}. Run without --shared/--data to use the miniatures, "
            f"or online run `covid19-images sync` (after `git submodule update --init --recursive`).",
            err=True,
        )
        sys.exit(2)
    return shared, f"the real upstream samples in {shared}"


@click.command()
@click.option(
    "--data",
    type=click.Choice(["auto", "shared", "miniature"]),
    default="auto",
    show_default=True,
    help=f"auto: --shared, else ${ENV_VAR}, else ../shared/upstream where present, else the miniatures",
)
@click.option("--shared", type=click.Path(path_type=Path), default=None, help="a samples folder (../shared/upstream)")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("build/demo"), show_default=True)
def main(data: str, shared: Path | None, workdir: Path) -> None:
    """Sync upstream samples through local mirrors, summarise, and load one image per source."""
    started = time.monotonic()
    project = find_root()
    registry = load_registry(project)
    samples, what = _samples(shared, data, workdir)
    mirrors, root = workdir / "mirrors", workdir / "root"
    click.echo(f"data: {what}")
    click.echo(f"1/3 building local bare mirrors of {samples} -> {mirrors}")
    built = build_sample_mirrors(samples, mirrors, list(registry.values()))
    click.echo(f"    {len(built)} sources mirrored (offline stand-ins for their GitHub upstreams)")
    if root.exists():
        shutil.rmtree(root)  # a fresh root every time: the demo shows a first sync
    _fresh_root(root, project / REGISTRY_FILE)
    _fetch_portal_sources(root, [spec for spec in registry.values() if spec.is_portal])
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
    click.echo("\n3/3 loading one image per source")
    sources = _load_some(root)
    click.echo(f"images loaded from {sources} sources in {time.monotonic() - started:.0f} s")
    click.echo(f"\n{MEDICAL_WARNING}")
    click.echo(f"Use this root in Python: covid19_images.load_covid_xray('torch', root='{root.resolve()}')")
    if report.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
