"""``make demo``: the main job on any machine, offline, with nothing beside the clone.

It builds local bare "upstream" mirrors from upstream samples, syncs a fresh demo root against
those mirrors through git's own ``url.<mirror>/.insteadOf`` rewriting, prints the manifest
summary and loads one image per source. When its working folder is inside the clone, it names the
root it built in ``build/demo-root``, so that (by :mod:`covid19_images.core.roots`) every README
snippet, command and notebook run in the clone afterwards uses it, with no setting.

The samples are the real ones in ``../shared/upstream`` where that folder exists (this
workplace, CI), otherwise the miniatures shipped inside the
package (``sources/catalog/*/miniature``: a few files per source, real where the licence
allows, synthetic elsewhere). ``--data`` / ``--shared`` / ``COVID19_IMAGES_SHARED`` choose.
"""

from __future__ import annotations

import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import git

from covid19_images import MEDICAL_WARNING
from covid19_images.core.crash_traces import enable_crash_traces
from covid19_images.core.roots import DEMO_POINTER, holds_data, nearest_root, package_clone
from covid19_images.sources.registry import REGISTRY_FILE, load_registry
from covid19_images.sync.run import sync
from covid19_images.testing.miniature import ENV_VAR, materialize_miniatures, requested_samples
from covid19_images.testing.mirrors import build_sample_mirrors, default_shared, shared_available
from covid19_images.testing.portal_miniatures import fetch_miniatures
from covid19_images.testing.portal_server import PortalServer, kaggle_token, running


def _fresh_root(root: Path, registry_file: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if not (root / ".git").exists():
        repo = git.Repo.init(root, initial_branch="main")
        with repo.config_writer() as config:
            config.set_value("user", "name", "covid19-images demo")
            config.set_value("user", "email", "demo@covid19-images.invalid")
    shutil.copyfile(registry_file, root / REGISTRY_FILE)


@contextmanager
def _demo_kaggle_token(server: PortalServer) -> Iterator[None]:
    """A made-up Kaggle token that only the loopback portal accepts, for the demo's run only: a user's own
    token (environment or ``~/.kaggle/kaggle.json``) is never read, nor sent anywhere."""
    with kaggle_token(server, "loopback-only", user="covid19-images-demo"):
        yield


def _fetch_portal_sources(root: Path, specs: list, by_hand: Path) -> None:
    """Pin and fetch every portal source from a loopback portal serving its miniature.

    The root's git config gets ``url.http://127.0.0.1:<port>/<host>/.insteadOf https://<host>/``:
    the same mechanism, and the same code path, a user's mirror would take. A ``manual`` source
    (BIMCV: behind an agreement) is pinned and fetched ``--from`` a folder standing in for the
    user's own download. Each is pinned at its catalog version, as a maintainer's first
    ``sync --update-portal NAME --portal-version V`` would.
    """
    if not specs:
        return

    def fetched(spec, lock, from_dir: Path | None) -> None:
        how = f"{spec.portal} {spec.dataset}" if from_dir is None else f"manual: `fetch --from {from_dir}`"
        click.echo(
            f"    fetched {spec.name} ({how}): {len(lock.entries)} file(s), {lock.total_size} bytes, "
            f"verified against manifests/locks/{spec.name}.lock.tsv"
        )

    with running() as server, _demo_kaggle_token(server):
        click.echo(f"    portal sources: {server.base} stands in for the portals (git insteadOf; loopback only)")
        for spec in fetch_miniatures(root, server, specs, by_hand, fetched):
            click.echo(f"    {spec.name}: the loopback portal cannot serve its miniature; not fetched")


def _load_some(root: Path) -> int:
    """One image per source through the torch loaders, with the loaders' defaults (``unknown`` is
    no class); prints each modality's train/val/test sizes. Returns how many sources gave one."""
    from covid19_images import load_covid_ct, load_covid_ultrasound, load_covid_xray
    from covid19_images.core.medical import MedicalWarning

    # the demo prints the warning itself, once, where it is read: at the end
    warnings.simplefilter("ignore", MedicalWarning)
    shown: set[str] = set()
    for title, loader in (("X-ray", load_covid_xray), ("CT", load_covid_ct), ("ultrasound", load_covid_ultrasound)):
        try:
            dataset = loader("torch", root=root, split=None, image_size=224)
        except ImportError as err:
            click.echo(f"{title}: {err}")
            continue
        except Exception as err:  # noqa: BLE001 - the demo reports, it does not crash
            click.echo(f"{title}: could not load: {type(err).__name__}: {err}")
            continue
        frame = dataset.manifest.reset_index(drop=True)
        sizes = ", ".join(f"{name} {int((frame['split'] == name).sum())}" for name in ("train", "val", "test"))
        click.echo(f"{title}: {len(dataset)} items ({sizes}), classes {list(dataset.classes)}")
        for index, row in frame.drop_duplicates("source").iterrows():
            if row["source"] in shown:
                continue
            image, label = dataset[int(index)]
            shown.add(row["source"])
            click.echo(f"  {tuple(image.shape)} {dataset.classes[label]:<10} {row['source']}: {row['path']}")
    return len(shown)


def _holdings(registry: dict, manifest) -> str:
    """How many sources hold images, and what the others hold instead."""
    with_images = set(manifest["source"]) if not manifest.empty else set()
    others = [name for name in registry if name not in with_images]
    return f"{len(with_images)} of the {len(registry)} sources hold images" + (
        f" (no images here: {', '.join(others)})" if others else ""
    )


def _point_clone_at(project: Path, workdir: Path, root: Path) -> Path | None:
    """Write ``build/demo-root`` in the clone when the demo ran inside it (a test's scratch demo
    elsewhere leaves the user's pointer alone)."""
    try:
        workdir.resolve().relative_to(project)
    except ValueError:
        return None
    pointer = project / DEMO_POINTER
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(f"{root.resolve()}\n", encoding="utf-8")
    return pointer


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


def browse_command(root: Path) -> str:
    """The one command that serves the dataset browser on ``root`` (this environment's entry point)."""
    script = Path(sys.executable).parent / "covid19-images"
    program = str(script) if script.is_file() else f"{sys.executable} -m covid19_images.cli"
    return f"{program} browse --root {root.resolve()}"


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
    enable_crash_traces()
    started = time.monotonic()
    project = nearest_root(Path.cwd().resolve()) or package_clone() or Path.cwd().resolve()
    registry = load_registry(project)
    samples, what = _samples(shared, data, workdir)
    mirrors, root = workdir / "mirrors", workdir / "root"
    click.echo(f"data: {what}")
    click.echo(f"1/3 building local bare mirrors of {samples} -> {mirrors}")
    built = build_sample_mirrors(samples, mirrors, list(registry.values()))
    click.echo(
        f"    {len(built)} of the {len(registry)} sources mirrored (offline stand-ins for their GitHub upstreams)"
    )
    if root.exists():
        shutil.rmtree(root)  # a fresh root every time: the demo shows a first sync
    _fresh_root(root, project / REGISTRY_FILE)
    _fetch_portal_sources(root, [spec for spec in registry.values() if spec.is_portal], workdir / "by-hand")
    click.echo(f"2/3 syncing {root} (git rewrites https://github.com/ to the mirrors; no network used)")
    # committed: a root with history, as a clone has (`release --dry-run` works on it)
    report = sync(root, mirror=mirrors, progress=True, commit=True)
    click.echo(report.summary())
    build = report.build
    assert build is not None
    manifest = build.manifest
    click.echo(f"\nmanifest {root / 'manifests/manifest.csv'}: {len(manifest)} images; {_holdings(registry, manifest)}")
    if not manifest.empty:
        table = manifest.pivot_table(index="source", columns="label", values="image_id", aggfunc="count", fill_value=0)
        click.echo(table.to_string())
        click.echo(f"splits: {manifest['split'].value_counts().to_dict()}")
    if build.problems:
        counts: dict[str, int] = {}
        for problem in build.problems:
            counts[problem.source] = counts.get(problem.source, 0) + 1
        listing = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        click.echo(
            f"{len(build.problems)} problems, on purpose: the samples keep each upstream's real quirks (files the "
            "metadata names but the upstream lacks, `todo` and blank findings, odd encodings, LFS pointers), and "
            f"sync reports each one instead of failing. By source: {listing} "
            f"(details: {root / 'manifests/problems.csv'})"
        )
    click.echo("\n3/3 loading one image per source (the loaders' defaults: unknown findings are no class)")
    sources = _load_some(root)
    unlabelled = sorted(
        set(manifest.loc[manifest["label"] == "unknown", "source"])
        - set(manifest.loc[manifest["label"] != "unknown", "source"])
    )
    why = f" ({', '.join(unlabelled)}: no finding label, so no class by default)" if unlabelled else ""
    click.echo(f"images loaded from {sources} sources{why} in {time.monotonic() - started:.0f} s")
    click.echo(f"\n{MEDICAL_WARNING}")
    pointer = _point_clone_at(project, workdir, root)
    if pointer is not None and holds_data(project):
        click.echo(
            f"Next: this clone has sources of its own checked out, so it stays the default root (build its manifest "
            f"with `covid19-images sync --offline`); to use the demo's instead: "
            f"export COVID19_IMAGES_ROOT={root.resolve()}"
        )
    elif pointer is not None:
        click.echo(
            f"Next: in this clone, the README's snippets, `covid19-images report` and the notebooks now use {root} "
            f"(named in {pointer.relative_to(project)}; a notice on stderr says so). "
            "Run the notebooks with `make notebooks`."
        )
    else:
        click.echo(f"Next: export COVID19_IMAGES_ROOT={root.resolve()}  (or root=... in Python, --root on the CLI)")
    click.echo(f"See it in your web browser (then open http://127.0.0.1:8765/): {browse_command(root)}")
    if report.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
