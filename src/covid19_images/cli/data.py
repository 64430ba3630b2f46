"""Commands that bring data in and say where it stands: sync, fetch, status, new-source."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from covid19_images.cli._group import UserError, _print_table, main, root_option
from covid19_images.core.paths import find_root


@main.command("sync")
@click.argument("sources", nargs=-1)
@root_option
@click.option("--offline", is_flag=True, help="Do not fetch: only rebuild the manifest from the current checkouts.")
@click.option(
    "--commit", "do_commit", is_flag=True, help="Commit the moved gitlinks and the manifest with the summary."
)
@click.option("--allow-rewrite", is_flag=True, help="Accept an upstream whose history no longer has the pinned commit.")
@click.option(
    "--mirror",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Local mirror root laid out as <owner>/<repo>.git; rewrites https://github.com/ to it (git insteadOf).",
)
@click.option("--allow-local", is_flag=True, help="Allow local-path remotes (for your own url.<path>.insteadOf rules).")
@click.option("--wait", is_flag=True, help="Wait for a running sync on the same root instead of exiting.")
@click.option(
    "--allow-shrink", is_flag=True, help="Accept a source losing most of its images (e.g. its metadata was removed)."
)
@click.option("--quiet", is_flag=True, help="No progress bars and no problem listing.")
@click.option(
    "--rebuild", is_flag=True, help="Re-read and re-probe every source and search all duplicates again (no caches)."
)
@click.option("--check-portals", is_flag=True, help="Say which portal sources have a newer version; change nothing.")
@click.option(
    "--update-portal",
    "update_portal_name",
    metavar="NAME",
    default=None,
    help="Pin portal source NAME to its newest version (new lock), fetch it, rebuild and summarise.",
)
@click.option("--portal-version", default="", help="With --update-portal: this version instead of the newest.")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="With --update-portal: pin the files you downloaded into this folder (sources behind an agreement).",
)
def sync_command(
    sources: tuple[str, ...],
    root: Path | None,
    offline: bool,
    do_commit: bool,
    allow_rewrite: bool,
    mirror: Path | None,
    allow_local: bool,
    wait: bool,
    allow_shrink: bool,
    quiet: bool,
    rebuild: bool,
    check_portals: bool,
    update_portal_name: str | None,
    portal_version: str,
    from_dir: Path | None,
) -> None:
    """Pull each upstream (or only SOURCES), move its submodule, rebuild manifests/manifest.csv.

    Portal sources are not downloaded by sync: their lock pins them, `fetch` gets them, and
    `--update-portal NAME` moves the lock (the portal's version of moving a submodule).
    """
    from covid19_images.core.arrow_pool import system_arrow_pool
    from covid19_images.core.workers import one_blas_thread
    from covid19_images.sources.registry import RegistryError
    from covid19_images.sync.run import SyncBusy, UnknownSourceError, sync

    one_blas_thread()  # before the build imports numpy
    system_arrow_pool()  # before the build's first Arrow buffer
    if check_portals:
        from covid19_images.sync.portals import check_portals as check

        for line in check(find_root(root)):
            click.echo(line)
        return
    if update_portal_name:
        _update_portal(find_root(root), update_portal_name, portal_version, from_dir, quiet)
        offline, sources = True, (update_portal_name,)
    try:
        report = sync(
            find_root(root),
            sources,
            offline=offline,
            allow_rewrite=allow_rewrite,
            commit=do_commit,
            mirror=mirror,
            allow_local=allow_local,
            wait=wait,
            progress=not quiet,
            allow_shrink=allow_shrink,
            rebuild=rebuild,
        )
    except RegistryError as err:
        raise UserError(str(err)) from err
    except (SyncBusy, UnknownSourceError) as err:
        raise click.ClickException(str(err)) from err
    build = report.build
    if build is not None and not quiet:
        for problem in build.problems:
            click.echo(f"{problem.level}: {problem}", err=True)
    click.echo(report.summary())
    if build is not None:
        click.echo(f"manifest: {build.rows} images, {len(build.problems)} problems (manifests/problems.csv)")
    if report.committed:
        click.echo(f"committed {report.committed[:12]}")
    if report.failed:
        sys.exit(1)


def _update_portal(root: Path, name: str, version: str, from_dir: Path | None, quiet: bool) -> None:
    from covid19_images.sources.portal.http import PortalError
    from covid19_images.sources.portal.lock import lock_digest
    from covid19_images.sync.portals import SelectionError, update_portal

    try:
        old, new = update_portal(root, name, version=version, from_dir=from_dir, progress=not quiet)
    except (PortalError, SelectionError) as err:
        raise click.ClickException(str(err)) from err
    before = f"{old.version or '-'} ({lock_digest(old.to_bytes())[:12]})" if old else "no lock"
    click.echo(
        f"{name}: lock {before} -> {new.version or '-'} ({lock_digest(new.to_bytes())[:12]}), "
        f"{len(new.entries)} files, {new.total_size} bytes; review manifests/locks/{name}.lock.tsv"
    )


@main.command("fetch")
@click.argument("sources", nargs=-1)
@root_option
@click.option(
    "--only",
    multiple=True,
    metavar="SELECTION",
    help="Only the files a selection needs: a split scheme (covidx:9A) or COLUMN=VALUE (split=test); repeatable.",
)
@click.option(
    "--from",
    "from_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Take the files from this folder (downloaded by hand) instead of the portal; they are verified the same.",
)
@click.option("--dry-run", is_flag=True, help="Say how many files and bytes would be downloaded; download nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def fetch_command(
    sources: tuple[str, ...],
    root: Path | None,
    only: tuple[str, ...],
    from_dir: Path | None,
    dry_run: bool,
    quiet: bool,
) -> None:
    """Download the portal sources (or only SOURCES) their locks pin, into datasets/<name>.

    Every file is checked against manifests/locks/<name>.lock.tsv before anything is
    extracted; an interrupted fetch resumes. URLs follow git's url.<base>.insteadOf rules.
    Kaggle reads ~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY.
    """
    from covid19_images.sync.portals import SelectionError, fetch

    try:
        outcomes = fetch(find_root(root), sources, only=only, from_dir=from_dir, dry_run=dry_run, progress=not quiet)
    except SelectionError as err:
        raise UserError(str(err)) from err
    for outcome in outcomes:
        if outcome.error:
            click.echo(f"error: {outcome.error}", err=True)
        elif dry_run and outcome.plan is not None:
            click.echo(outcome.plan.describe())
        elif outcome.result is not None:
            result = outcome.result
            click.echo(
                f"{result.name}: fetched {result.fetched} file(s) ({result.bytes} bytes), {result.present} present"
            )
        elif outcome.plan is not None:
            click.echo(outcome.plan.describe())
    if any(o.error for o in outcomes):
        sys.exit(1)


@main.command("status")
@root_option
@click.option("--version", "version", default=None, help="Compare the checkouts with what release VERSION pins.")
@click.option("--fetch", is_flag=True, help="Fetch each checked-out upstream first (network), so 'ahead' is current.")
@click.option(
    "--mirror",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --fetch: local mirror root laid out as <owner>/<repo>.git (as for sync).",
)
def status_command(root: Path | None, version: str | None, fetch: bool, mirror: Path | None) -> None:
    """Per source: initialised, pinned commit, checked-out commit, upstream ahead by, images in manifest.

    With --version: per source of that release, its pin, the checkout, and the command that makes them match.

    Without --fetch nothing touches the network: 'ahead' is as of the last fetch (sync or status --fetch).
    """
    if version is not None:
        _version_status(find_root(root), version)
        return
    from covid19_images.sync.status import next_steps, source_status

    base = find_root(root)
    rows = source_status(base, fetch=fetch, mirror=mirror)
    ahead = "ahead" if fetch else "ahead (last fetch)"
    header = ("source", "initialised", "pinned", "checked out", ahead, "images")
    table = [header] + [
        (
            r.name,
            "yes" if r.initialised else "no",
            (r.pinned or "-")[:12],
            (r.checked_out or "-")[:12],
            "?" if r.ahead is None else str(r.ahead),
            str(r.images),
        )
        for r in rows
    ]
    _print_table(table)
    for line in next_steps(rows, base, fetched=fetch):
        click.echo(line)


def _version_status(base: Path, version: str) -> None:
    from covid19_images.manifest.versions import UnknownVersion
    from covid19_images.sync.versions import version_status

    try:
        pins = version_status(base, version)
    except UnknownVersion as err:
        raise UserError(str(err)) from err
    header = ("source", f"pinned by {version}", "pinned now", "checked out", "state")
    table = [header] + [
        (p.source, p.version_pin[:12], (p.current_pin or "-")[:12], (p.checked_out or "-")[:12], p.describe())
        for p in pins
    ]
    _print_table(table)
    wrong = [p for p in pins if not p.matches]
    if not wrong:
        click.echo(f"every checkout is what {version} pins: load it with version={version!r}")
        return
    click.echo(f"\nto serve {version}, run:")
    for pin in wrong:
        click.echo(f"  {pin.command(base)}")


@main.command("new-source")
@click.argument("name")
@click.argument("url")
@click.option("--modality", type=click.Choice(["xray", "ct", "ultrasound"]), default="xray", show_default=True)
@click.option("--branch", default="master", show_default=True)
@root_option
def new_source_command(name: str, url: str, modality: str, branch: str, root: Path | None) -> None:
    """Scaffold a new source: its catalog folder (parser, source.yaml, miniature), a test, a sources.yaml line."""
    from covid19_images.sources.registry import RegistryError
    from covid19_images.sources.scaffold import scaffold_source

    try:
        written = scaffold_source(_clone(root), name, url, modality=modality, branch=branch)
    except (ValueError, FileExistsError, RegistryError) as err:
        raise click.ClickException(str(err)) from err
    for path in written:
        click.echo(f"wrote {path}")
    test = f"tests/sources/catalog/test_{name.replace('-', '_')}.py"
    click.echo(f"next: edit the parser, run `pytest {test}`, then `covid19-images sync {name}`")


def _clone(root: Path | None) -> Path:
    """The project clone to scaffold into (code, not data: never the demo's root)."""
    from covid19_images.core.roots import nearest_root, package_clone

    if root is not None:
        return root.resolve()
    return nearest_root(Path.cwd().resolve()) or package_clone() or Path.cwd().resolve()
