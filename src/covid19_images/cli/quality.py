"""Commands that check the collection: report, verify."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from covid19_images.cli._group import main, root_option
from covid19_images.core.paths import find_root


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
