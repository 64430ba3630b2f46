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
    help="Project root (default: $COVID19_IMAGES_ROOT, else the checkout holding this package, else cwd).",
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
) -> None:
    """Pull each upstream (or only SOURCES), move its submodule, rebuild manifests/manifest.csv."""
    from covid19_images.sources.registry import RegistryError
    from covid19_images.sync.run import SyncBusy, UnknownSourceError, sync

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


@main.command("status")
@root_option
def status_command(root: Path | None) -> None:
    """Per source: initialised, pinned commit, checked-out commit, upstream ahead by, images in manifest."""
    from covid19_images.sync.status import source_status

    rows = source_status(find_root(root))
    header = ("source", "initialised", "pinned", "checked out", "ahead", "images")
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
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


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
        written = scaffold_source(find_root(root), name, url, modality=modality, branch=branch)
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
        raise click.ClickException(f"no manifest under {base}; run `covid19-images sync` first")
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


if __name__ == "__main__":
    main()
