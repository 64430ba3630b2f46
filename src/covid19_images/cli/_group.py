"""The command group every ``covid19-images`` command joins: the root option, user errors, shared output."""

from __future__ import annotations

import errno
from pathlib import Path

import click

from covid19_images.core.collections_pause import freeze_for_exit
from covid19_images.core.crash_traces import enable_crash_traces

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

    def __call__(self, *args, **kwargs):  # type: ignore[override]
        """The process's entry (the console script, ``python -m covid19_images.cli``): click's standalone
        mode ends it with ``sys.exit``, and what the process holds is then left to the system, not
        collected (:func:`~covid19_images.core.collections_pause.freeze_for_exit`). A call that returns
        (``standalone_mode=False``), ``CliRunner`` and other callers of ``main.main()`` freeze nothing."""
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit:
            freeze_for_exit()
            raise

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
    enable_crash_traces()


def _print_table(table: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
