"""Commands for citable versions: release, diff (status --version is in ``data``)."""

from __future__ import annotations

from pathlib import Path

import click

from covid19_images.cli._group import UserError, main, root_option
from covid19_images.core.paths import find_root


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
