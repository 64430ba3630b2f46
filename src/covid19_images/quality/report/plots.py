"""The ``report --plots`` figures (matplotlib, headless): where the collection misleads, at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def write_plots(report: dict[str, Any], manifest: pd.DataFrame, root: Path | None, directory: Path) -> list[Path]:
    """PNG figures: label counts by source, split sizes, source x label heat map, duplicate pairs.

    Args:
        report: the computed report (:func:`~covid19_images.quality.report.compute.build_report`).
        manifest: the manifest it was computed from.
        root: project root, to decode the duplicate examples (None leaves that figure out).
        directory: where the PNG files go (created if needed).

    Returns:
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if manifest.empty:
        return written

    counts = pd.crosstab(manifest["source"], manifest["label"])
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(counts) + 1.8))
    counts.plot.barh(stacked=True, ax=ax, colormap="tab10", width=0.75)
    ax.set_xlabel("images")
    ax.set_ylabel("")
    ax.set_title("Labels by source")
    ax.invert_yaxis()
    ax.legend(title="label", bbox_to_anchor=(1.01, 1), loc="upper left")
    written.append(_save(fig, directory / "labels_by_source.png"))

    splits = pd.crosstab(manifest["split"].replace("", "(none)"), manifest["label"])
    fig, ax = plt.subplots(figsize=(7, 4))
    splits.plot.bar(stacked=True, ax=ax, colormap="tab10", rot=0)
    for index, total in enumerate(splits.sum(axis=1)):
        ax.annotate(str(int(total)), (index, total), ha="center", va="bottom")
    ax.set_ylabel("images")
    ax.set_xlabel("")
    ax.set_title(f"Split sizes (groups across splits: {report.get('splits', {}).get('groups_across_splits', 0)})")
    ax.legend(title="label", bbox_to_anchor=(1.01, 1), loc="upper left")
    written.append(_save(fig, directory / "split_sizes.png"))

    modalities = [m for m, c in report.get("confounding", {}).items() if c["sources_by_label"]]
    if modalities:
        fig, axes = plt.subplots(1, len(modalities), figsize=(5.5 * len(modalities), 4.5), squeeze=False)
        for ax, modality in zip(axes[0], modalities, strict=True):
            table = pd.DataFrame(report["confounding"][modality]["sources_by_label"]).T.fillna(0)
            v = report["confounding"][modality]["cramers_v"]
            confounding_heatmap(fig, ax, table, f"{modality} (Cramér's V={'n/a' if v is None else f'{v:.2f}'})")
        written.append(_save(fig, directory / "source_label_confounding.png"))

    examples = report.get("duplicates", {}).get("examples", [])[:6]
    if examples and root is not None:
        written.append(_duplicate_grid(examples, Path(root), directory / "duplicate_examples.png", plt))
    return written


def confounding_heatmap(fig, ax, table: pd.DataFrame, title: str):
    """Sources (rows) x labels (columns): the colour is the share of the label's images that come
    from the source (a colour bar says so), each cell reads "count (share)" so the numbers and the
    colours tell the same story. Returns the colour bar."""
    share = table.div(table.sum(axis=0).replace(0, 1), axis=1)
    image = ax.imshow(share.to_numpy(), cmap="Reds", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(share.columns)), share.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(share.index)), share.index)
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        part = share.to_numpy()[i, j]
        colour = "white" if part > 0.6 else "black"
        ax.text(j, i, f"{int(value)}\n({part:.0%})", ha="center", va="center", fontsize=8, color=colour)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("share of the label's images from this source")
    ax.set_title(f"{title}\nimages per source and label (share of the label)")
    return bar


def _save(fig, path: Path, rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> Path:
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _duplicate_grid(examples: list[dict[str, Any]], root: Path, path: Path, plt) -> Path:
    from covid19_images.imaging.decode import decode_file

    fig, axes = plt.subplots(len(examples), 2, figsize=(7, 3.2 * len(examples)), squeeze=False)
    for row, example in enumerate(examples):
        for col, side in enumerate(("a", "b")):
            ax = axes[row][col]
            ax.axis("off")
            try:
                pixels = decode_file(root / example[f"path_{side}"], frame=None, draft_size=(512, 512)).pixels
                ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None)
            except Exception as err:  # noqa: BLE001 - a missing file shows as text, not a crash
                ax.text(0.5, 0.5, f"cannot show:\n{type(err).__name__}", ha="center", va="center")
            name = Path(example[f"path_{side}"]).name
            size = example.get(f"size_{side}", "?")
            ax.set_title(f"{example[f'source_{side}']}\n{name[:40]} ({size})", fontsize=8)
        axes[row][0].text(
            1.05, -0.04, example["why"], transform=axes[row][0].transAxes, ha="center", va="top", fontsize=8
        )
    fig.suptitle("Duplicate pairs (left and right are one duplicate group)")
    return _save(fig, path, rect=(0, 0, 1, 0.97))
