"""Commands that hand the collection to people and programs: export, browse."""

from __future__ import annotations

from pathlib import Path

import click

from covid19_images.cli._group import main, root_option
from covid19_images.core.paths import find_root


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
