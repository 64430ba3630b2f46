"""The ``covid19-images`` command line (click)."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import click

from covid19_images.core.paths import find_root

root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=(
        "Data root. Default: $COVID19_IMAGES_ROOT, else the nearest folder at or above the current one holding "
        "sources.yaml (a clone with no data yet: the root its `make demo` built, named in build/demo-root), "
        "else the clone holding this package, else the current folder."
    ),
)


class UserError(click.ClickException):
    """A mistake in what the user pointed us at (not a git repository, a damaged manifest): message, exit 2."""

    exit_code = 2


_DISK_ERRORS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM})


class _Commands(click.Group):
    """Every command: errors that describe the user's data root become a message and exit 2, not a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        import git

        from covid19_images.imaging.budget import InvalidSetting
        from covid19_images.manifest.integrity import DamagedManifest
        from covid19_images.sources.registry import RegistryError

        try:
            return super().invoke(ctx)
        except git.InvalidGitRepositoryError as err:
            raise UserError(
                f"{err} is not a git repository: a covid19-images root is a git checkout holding sources.yaml "
                "(clone the project, or pass --root)"
            ) from err
        except git.NoSuchPathError as err:
            raise UserError(f"{err} does not exist (pass --root)") from err
        except (DamagedManifest, InvalidSetting, RegistryError) as err:
            raise UserError(str(err)) from err
        except OSError as err:
            if err.errno not in _DISK_ERRORS:
                raise
            raise UserError(
                f"cannot write {err.filename or 'to the data root'}: {err.strerror} (a read-only or full disk?); "
                "nothing was changed"
            ) from err


@click.group(cls=_Commands)
@click.version_option(package_name="covid19-images")
def main() -> None:
    """Public COVID-19 lung-imaging datasets as one leak-free, citable collection.

    \b
    Which data root every command uses (the loaders and notebooks use the same rule):
      1. --root DIR;
      2. else $COVID19_IMAGES_ROOT;
      3. else the nearest folder at or above the current one holding sources.yaml, else the
         clone holding this package; a clone with no data yet (no manifest, no source checked
         out) uses the root its last `make demo` built (build/demo-root), and says so on stderr;
      4. else the current folder.

    A positive scan can suggest COVID-19; a negative scan means nothing. Research use only.
    """


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
    from covid19_images.sources.registry import RegistryError
    from covid19_images.sync.run import SyncBusy, UnknownSourceError, sync

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
        click.echo(f"manifest: {len(build.manifest)} images, {len(build.problems)} problems (manifests/problems.csv)")
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


def _print_table(table: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _clone(root: Path | None) -> Path:
    """The project clone to scaffold into (code, not data: never the demo's root)."""
    from covid19_images.core.roots import nearest_root, package_clone

    if root is not None:
        return root.resolve()
    return nearest_root(Path.cwd().resolve()) or package_clone() or Path.cwd().resolve()


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


@main.command("release")
@click.argument("version")
@root_option
@click.option("--date", default=None, help="Release date (ISO, default today, UTC).")
@click.option("--dry-run", is_flag=True, help="Make every check and print the changelog section; write nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def release_command(version: str, root: Path | None, date: str | None, dry_run: bool, quiet: bool) -> None:
    """Release VERSION (e.g. 2026.12): CHANGELOG.md section, CITATION.cff, manifests/croissant.json, commit, tag.

    Refused unless the work tree is clean and `verify` passes. Never pushes.
    """
    from covid19_images.release.run import ReleaseRefused, release

    try:
        result = release(find_root(root), version, date=date, progress=not quiet, dry_run=dry_run)
    except ReleaseRefused as err:
        raise click.ClickException(str(err)) from err
    click.echo(result.section)
    if dry_run:
        click.echo(f"dry run: nothing written; `covid19-images release {version}` would commit and tag this")
        return
    click.echo(f"released {version}: commit {result.commit[:12]}, tag {version} (not pushed: git push --follow-tags)")


@main.command("diff")
@click.argument("old")
@click.argument("new")
@root_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write it here.")
def diff_command(old: str, new: str, root: Path | None, out: Path | None) -> None:
    """The DATASHEET difference between releases OLD and NEW: can their numbers be compared?"""
    from covid19_images.manifest.versions import UnknownVersion
    from covid19_images.release.diff import version_diff

    try:
        text = version_diff(find_root(root), old, new)
    except UnknownVersion as err:
        raise UserError(str(err)) from err
    if out is not None:
        out.write_text(text, encoding="utf-8")
    click.echo(text)


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


@main.command("report")
@root_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of text.")
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write PNG figures (labels by source, split sizes, confounding, duplicate pairs) to this folder.",
)
@click.option("--no-privacy", is_flag=True, help="Skip the DICOM header scan (it reads every DICOM file).")
def report_command(root: Path | None, as_json: bool, plots: Path | None, no_privacy: bool) -> None:
    """Per source and overall: images, patients, labels, duplicates, licences, confounding, splits."""
    import json

    from covid19_images.manifest.build import read_manifest
    from covid19_images.quality.report import build_report, render_text, write_plots

    base = find_root(root)
    manifest = read_manifest(base)
    if manifest is None:
        raise click.ClickException(
            f"no manifest under {base}: run `make demo` in the clone (a demo root this clone then uses), or "
            "`covid19-images sync` to build this one; --root or $COVID19_IMAGES_ROOT choose another root"
        )
    report = build_report(base, manifest, privacy=not no_privacy)
    if plots is not None:
        written = write_plots(report, manifest, base, plots)
        report["plots"] = [str(p) for p in written]
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(render_text(report))
        for path in report.get("plots", []):
            click.echo(f"wrote {path}")


@main.command("verify")
@root_option
@click.option("--decode", is_flag=True, help="Also decode every file and compare its pixels with the manifest.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def verify_command(root: Path | None, decode: bool, as_json: bool, quiet: bool) -> None:
    """Re-hash the files against the manifest; list missing, changed and unreferenced files.

    Exits 1 when anything does not match.
    """
    import json

    from covid19_images.quality.verify import NoManifest, verify

    try:
        result = verify(find_root(root), decode=decode, progress=not quiet and not as_json)
    except NoManifest as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.summary())
    if not result.ok:
        sys.exit(1)


@main.command("export")
@root_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write.")
@click.option("--format", "fmt", type=click.Choice(["imagefolder", "webdataset", "hf", "tfrecord"]), required=True)
@click.option("--modality", type=click.Choice(["xray", "ct", "ultrasound"]), default="xray", show_default=True)
@click.option("--split-scheme", default="default", show_default=True, help="As the loaders' split_scheme.")
@click.option("--image-size", type=int, default=None, help="Squash to SIZE x SIZE pixels (PNG); omit: original files.")
@click.option("--sources", multiple=True, help="Only these sources (repeatable).")
@click.option("--views", multiple=True, help="Only these views (repeatable).")
@click.option("--labels", multiple=True, help="Only these labels (repeatable; 'all' includes unknown).")
@click.option("--licenses", multiple=True, help="Only these licences (repeatable).")
@click.option("--shard-size", type=int, default=1000, show_default=True, help="Images per tar/Parquet/TFRecord file.")
@click.option("--overwrite", is_flag=True, help="Replace a previous export in --out (once the new one is complete).")
@click.option("--wait", is_flag=True, help="Wait for a running sync of the root instead of refusing.")
def export_command(
    root: Path | None,
    out: Path,
    fmt: str,
    modality: str,
    split_scheme: str,
    image_size: int | None,
    sources: tuple[str, ...],
    views: tuple[str, ...],
    labels: tuple[str, ...],
    licenses: tuple[str, ...],
    shard_size: int,
    overwrite: bool,
    wait: bool,
) -> None:
    """Write the loaders' selection as an assembled dataset, with manifest.csv and DATASHEET.md."""
    from covid19_images.export import ChangedFileError, ExportError, export
    from covid19_images.loaders import NoItemsError

    try:
        result = export(
            out,
            fmt,
            root=find_root(root),
            modality=modality,
            split_scheme=split_scheme,
            image_size=image_size,
            sources=sources or None,
            views=views or None,
            labels=labels or None,
            licenses=licenses or None,
            shard_size=shard_size,
            overwrite=overwrite,
            wait=wait,
        )
    except (ChangedFileError, ExportError, FileExistsError, FileNotFoundError, NoItemsError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(result.summary())


@main.command("browse")
@root_option
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port on 127.0.0.1.")
@click.option("--review", is_flag=True, help="Allow recording duplicate decisions in manifests/reviewed-pairs.csv.")
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the pages as a static catalog into this folder instead of serving them.",
)
@click.option("--overwrite", is_flag=True, help="With --export: replace a folder that is not empty.")
def browse_command(root: Path | None, port: int, review: bool, export_dir: Path | None, overwrite: bool) -> None:
    """See the collection: sources, a filtered grid, images with duplicates and overlays, review, bias, problems.

    Serves on http://127.0.0.1:PORT only (nothing else is opened to the network); read-only unless --review.
    """
    from covid19_images.manifest.build import read_manifest

    base = find_root(root)
    if read_manifest(base) is None:
        raise click.ClickException(f"no manifest under {base}; run `covid19-images sync` first")
    if export_dir is not None:
        from covid19_images.browse.static_site import export_site

        try:
            result = export_site(base, export_dir, overwrite=overwrite)
        except FileExistsError as err:
            raise click.ClickException(str(err)) from err
        click.echo(result.summary())
        return
    from covid19_images.browse.server import HOST, serve

    mode = "recording duplicate decisions" if review else "read-only"
    click.echo(f"browsing {base} at http://{HOST}:{port}/ ({mode}); Ctrl-C stops it", err=True)
    serve(base, port, review=review)


if __name__ == "__main__":
    main()
