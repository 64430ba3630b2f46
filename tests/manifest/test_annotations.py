"""manifests/annotations.csv on the samples (real or miniature): scores, masks and boxes land on their images."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from tests.conftest import build_synced_root, csv_rows_with_lines

SOURCES = ["ieee8023-covid-chestxray", "brixia-score", "v7labs-lung-masks", "darshan-xray"]
IEEE = "ieee8023-covid-chestxray-dataset"
BRIXIA = "BrixIA-Brixia-score-COVID-19"
V7 = "v7labs-covid-19-xray-dataset"
#: the columns as issue 13 lists them
COLUMNS = [
    "annotation_id", "image_id", "kind", "source", "source_commit", "path", "sha256", "frame", "name",
    "value", "rater", "x0", "y0", "x1", "y1", "license",
]  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("annotations"), mirrors, SOURCES)


def read(root: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(root / "manifests" / name, dtype=str, keep_default_na=False)


@pytest.mark.upstream
def test_file_has_the_documented_columns(root: Path) -> None:
    annotations = read(root, "annotations.csv")
    assert list(annotations.columns) == COLUMNS
    assert set(annotations["kind"]) == {"severity", "mask", "box"}
    readme = (Path(__file__).resolve().parents[2] / "manifests" / "README.md").read_text()
    for column in COLUMNS:
        assert f"`{column}`" in readme, column


@pytest.mark.upstream
def test_every_brixia_score_of_a_held_image_lands_with_its_value(root: Path, shared: Path) -> None:
    manifest, annotations = read(root, "manifest.csv"), read(root, "annotations.csv")
    ids = dict(zip(manifest["path"], manifest["image_id"], strict=True))
    # upstream's augmented copies (Darshan's rotated/zoomed files) get no annotation
    augmented = {i for i, e in zip(manifest["image_id"], manifest["extra"], strict=True) if '"augmented":true' in e}
    groups = {i: g for i, g in zip(manifest["image_id"], manifest["dup_group"], strict=True) if i not in augmented}
    brixia = annotations[annotations["source"] == "brixia-score"]
    got = {(r.image_id, r.name, r.rater): r.value for r in brixia.itertuples()}
    expected: dict[tuple[str, str, str], str] = {}
    for _, row in csv_rows_with_lines(shared / BRIXIA / "data/public-annotations.csv", encoding="utf-8-sig"):
        name = row["filename"]
        own = ids.get(f"datasets/brixia-score/data/public-cohen-subset/{name}")
        other = ids.get(f"datasets/ieee8023-covid-chestxray/images/{name}")
        images = {i for i in (own or other,) if i}
        # byte-identical copies share a duplicate group: the score reaches every member
        images |= {i for i, g in groups.items() if g and any(groups[j] == g for j in images)}
        for image in images:
            for prefix, rater in (("S", "senior"), ("J", "junior")):
                for zone in "ABCDEF":
                    expected[(image, f"brixia_{zone}", rater)] = row[f"{prefix}-{zone}"]
                expected[(image, "brixia_global", rater)] = row[f"{prefix}-Global"]
    assert expected and got == expected
    copies = manifest[manifest["source"] == "brixia-score"]
    shared_groups = set(copies["dup_group"]) & set(manifest.loc[manifest["source"] != "brixia-score", "dup_group"])
    assert len(shared_groups - {""}) >= 6  # the sample's ieee8023 files that BrixIA copies byte for byte
    assert set(brixia["license"]) == {"CC-BY-NC-SA-4.0"}
    # resized copies elsewhere (Darshan) get the scores, which survive resizing, but no masks
    darshan = set(manifest.loc[manifest["source"] == "darshan-xray", "image_id"])
    assert darshan & set(brixia["image_id"])
    assert not darshan & set(annotations.loc[annotations["kind"] == "mask", "image_id"])


@pytest.mark.upstream
def test_ieee8023_severity_rows_land_with_their_values(root: Path, shared: Path) -> None:
    manifest, annotations = read(root, "manifest.csv"), read(root, "annotations.csv")
    ids = dict(zip(manifest["path"], manifest["image_id"], strict=True))
    lines = (shared / IEEE / "annotations/covid-severity-scores.csv").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    expected = {}
    for line in lines[header + 1 :]:
        filename, geographic, opacity = line.split(",")[:3]
        image = ids.get(f"datasets/ieee8023-covid-chestxray/images/{filename}")
        if image:
            expected[(image, "geographic_extent_mean")] = geographic
            expected[(image, "opacity_mean")] = opacity
    rows = annotations[annotations["kind"] == "severity"]
    rows = rows[rows["source"] == "ieee8023-covid-chestxray"]
    assert expected and {(r.image_id, r.name): r.value for r in rows.itertuples()} == expected
    assert set(rows["rater"]) == {"mean_of_3"}


@pytest.mark.upstream
def test_v7_masks_join_named_images_and_the_rest_are_reported(root: Path, shared: Path) -> None:
    manifest, annotations = read(root, "manifest.csv"), read(root, "annotations.csv")
    problems = read(root, "problems.csv")
    by_path = manifest.set_index("path")
    with zipfile.ZipFile(shared / V7 / "annotations/covid-only.zip") as archive:
        darwin = {Path(m).stem: json.loads(archive.read(m))["image"] for m in archive.namelist() if m.endswith(".json")}
    masks = sorted((shared / V7 / "annotations/all-images-semantic-masks").glob("*.png"))
    joined, reported = set(), set()
    for mask in masks:
        image = darwin.get(mask.stem)
        path = f"datasets/ieee8023-covid-chestxray/images/{image['original_filename']}" if image else ""
        if path in by_path.index and (str(image["width"]), str(image["height"])) == (
            by_path.at[path, "width"],
            by_path.at[path, "height"],
        ):
            joined.add(mask.stem)
            with Image.open(mask) as opened:
                assert opened.size == (image["width"], image["height"])
            rows = annotations[
                annotations["path"] == f"datasets/v7labs-lung-masks/annotations/all-images-semantic-masks/{mask.name}"
            ]
            assert by_path.at[path, "image_id"] in set(rows["image_id"])
        else:
            reported.add(mask.stem)
            mine = problems[problems["path"] == f"annotations/all-images-semantic-masks/{mask.name}"]
            assert len(mine) == 1 and "not joined" in mine["message"].iloc[0]
    assert joined and reported and len(joined) + len(reported) == len(masks)
    v7 = annotations[annotations["source"] == "v7labs-lung-masks"]
    assert {Path(p).stem for p in v7["path"]} == joined
    assert set(v7["kind"]) == {"mask"} and set(v7["license"]) == {"CC-BY-4.0"}


@pytest.mark.upstream
def test_lung_boxes_are_corner_coordinates_inside_their_image(root: Path, shared: Path) -> None:
    manifest, annotations = read(root, "manifest.csv"), read(root, "annotations.csv")
    boxes = annotations[annotations["kind"] == "box"].merge(manifest, on="image_id", suffixes=("", "_image"))
    data = json.loads((shared / IEEE / "annotations/imageannotation_ai_lung_bounding_boxes.json").read_text())
    files = {i["id"]: i["file_name"] for i in data["images"]}
    coco = {
        (f"datasets/ieee8023-covid-chestxray/images/{files[a['image_id']]}", a["category_id"]): a["bbox"]
        for a in data["annotations"]
    }
    own = boxes[boxes["source_image"] == "ieee8023-covid-chestxray"]
    assert len(own)
    # a copy of the same size elsewhere (BrixIA) gets the same box, as the same annotation
    assert set(boxes["annotation_id"]) == set(own["annotation_id"])
    for row in own.itertuples():
        x, y, w, h = coco[(row.path_image, 1 if row.name == "right_lung" else 2)]
        assert [float(row.x0), float(row.y0), float(row.x1), float(row.y1)] == [x, y, x + w, y + h]
        assert 0 <= float(row.x0) < float(row.x1) <= int(row.width)


@pytest.mark.upstream
def test_report_shows_coverage_and_brixia_agreement(root: Path, shared: Path, on_miniature: bool) -> None:
    from sklearn.metrics import cohen_kappa_score

    from covid19_images.quality.report import build_report, render_text

    manifest = read(root, "manifest.csv")
    report = build_report(root, manifest, privacy=False)
    section = report["annotations"]
    # the scored pictures the sample holds, read from the folder (not from the manifest under test)
    held = {p.name for p in (shared / BRIXIA / "data/public-cohen-subset").iterdir()}
    rows = [r for _, r in csv_rows_with_lines(shared / BRIXIA / "data/public-annotations.csv", encoding="utf-8-sig")]
    rows = [r for r in rows if r["filename"] in held]
    assert len(rows) == len(held) and (on_miniature or len(rows) == 20)
    senior = [int(r["S-Global"]) for r in rows]
    junior = [int(r["J-Global"]) for r in rows]
    overall = next(a for a in section["brixia_agreement"] if a["score"] == "brixia_global")
    assert overall["images"] == len(rows)
    assert overall["mean_abs_diff"] == pytest.approx(
        sum(abs(s - j) for s, j in zip(senior, junior, strict=True)) / len(rows)
    )
    kappa = cohen_kappa_score(senior, junior, weights="quadratic", labels=list(range(19)))
    assert overall["weighted_kappa"] == pytest.approx(kappa)
    coverage = {(r["source"], r["label"]): r for r in section["coverage"]}
    assert coverage[("brixia-score", "unknown")]["severity"] == len(rows)
    text = render_text(report)
    assert "Brixia senior vs junior radiologist" in text and f"brixia_global: n={len(rows)}" in text


@pytest.mark.upstream
def test_a_mask_whose_image_has_another_size_is_reported_not_joined(root: Path) -> None:
    """The V7 JSON states the size of the image each mask was drawn on; an ieee8023 file of that
    name but another size (re-encoded, cropped upstream) must not get the mask."""
    from covid19_images.manifest.annotations import join_annotations
    from covid19_images.sources.registry import load_registry

    manifest, annotations = read(root, "manifest.csv"), read(root, "annotations.csv")
    v7 = annotations[annotations["source"] == "v7labs-lung-masks"]
    target = manifest[(manifest["source"] == "ieee8023-covid-chestxray") & manifest["image_id"].isin(v7["image_id"])]
    victim = target.index[0]
    manifest.loc[victim, "width"] = str(int(manifest.at[victim, "width"]) + 7)
    registry = load_registry(root)
    joined, problems = join_annotations(root, {"v7labs-lung-masks": registry["v7labs-lung-masks"]}, manifest,
                                        {"v7labs-lung-masks": ""}, progress=False)  # fmt: skip
    joined_v7 = joined[joined["source"] == "v7labs-lung-masks"]  # other sources keep their previous rows
    assert manifest.at[victim, "image_id"] not in set(joined_v7["image_id"])
    mismatch = [p for p in problems if "drawn on a" in p.message]
    assert len(mismatch) == 1 and manifest.at[victim, "path"].rsplit("/", 1)[1] in mismatch[0].message
    assert len(set(joined_v7["path"])) == len(set(v7["path"])) - 1


@pytest.mark.upstream
def test_augmented_copies_get_no_annotations(root: Path) -> None:
    """A copy marked augmented (possibly mirrored: Brixia zones A-C are the right lung) gets nothing,
    while its unaugmented twin keeps every score."""
    from covid19_images.manifest.annotations import join_annotations
    from covid19_images.sources.registry import load_registry

    manifest, annotations = read(root, "manifest.csv"), read(root, "annotations.csv")
    scored = set(annotations.loc[annotations["source"] == "brixia-score", "image_id"])
    copies = manifest[(manifest["source"] == "darshan-xray") & manifest["image_id"].isin(scored)]
    assert len(copies)
    victim = copies.index[0]
    manifest.loc[victim, "extra"] = '{"augmented":true}'
    registry = load_registry(root)
    joined, _problems = join_annotations(
        root, {"brixia-score": registry["brixia-score"]}, manifest, {"brixia-score": ""}, progress=False
    )
    brixia = joined[joined["source"] == "brixia-score"]
    assert manifest.at[victim, "image_id"] not in set(brixia["image_id"])
    assert set(brixia["image_id"]) == scored - {manifest.at[victim, "image_id"]}


def _join(root: Path, manifest: pd.DataFrame, source: str) -> pd.DataFrame:
    from covid19_images.manifest.annotations import join_annotations
    from covid19_images.sources.registry import load_registry

    registry = load_registry(root)
    joined, _problems = join_annotations(root, {source: registry[source]}, manifest, {source: ""}, progress=False)
    return joined[joined["source"] == source]


@pytest.mark.upstream
def test_masks_spread_only_to_copies_of_the_same_size_and_scores_to_every_copy(root: Path) -> None:
    manifest, annotations = read(root, "manifest.csv"), read(root, "annotations.csv")
    plain = manifest[(manifest["dup_group"] == "") & (manifest["source"] == "darshan-xray")]
    alone = manifest["dup_group"] == ""
    v7_ids = annotations.loc[annotations["source"] == "v7labs-lung-masks", "image_id"]
    brixia_ids = annotations.loc[annotations["source"] == "brixia-score", "image_id"]
    masked = manifest[alone & manifest["image_id"].isin(v7_ids)]
    scored = manifest[alone & manifest["image_id"].isin(brixia_ids)]
    original, same, other = masked.index[0], plain.index[0], plain.index[1]
    group = manifest.at[original, "image_id"]
    manifest.loc[[original, same, other], "dup_group"] = group
    manifest.loc[same, ["width", "height"]] = manifest.loc[original, ["width", "height"]].to_numpy()
    manifest.loc[other, "width"] = str(int(manifest.at[original, "width"]) + 10)
    masks = _join(root, manifest, "v7labs-lung-masks")
    holders = set(masks.loc[masks["path"] == masks.loc[masks["image_id"] == group, "path"].iloc[0], "image_id"])
    assert holders == {group, manifest.at[same, "image_id"]}  # not the copy of another size
    # a score is not tied to pixels: it reaches the copy of another size too
    scored_id = scored["image_id"].iloc[0]
    manifest.loc[manifest["image_id"] == scored_id, "dup_group"] = scored_id
    manifest.loc[other, "dup_group"] = scored_id
    scores = _join(root, manifest, "brixia-score")
    first = scores.loc[scores["image_id"] == scored_id, "annotation_id"]
    assert set(scores.loc[scores["image_id"] == manifest.at[other, "image_id"], "annotation_id"]) == set(first)


@pytest.mark.upstream
def test_an_annotation_lands_on_its_preferred_copy_when_the_copies_differ(root: Path) -> None:
    """Brixia scores name BrixIA's own copy first, then ieee8023's file of the same name: when both are in
    the manifest and are not duplicates of each other, only the preferred one is scored."""
    from covid19_images.sources.catalog.brixia_score import IMAGES

    manifest, annotations = read(root, "manifest.csv"), read(root, "annotations.csv")
    scored_ids = set(annotations.loc[annotations["source"] == "brixia-score", "image_id"])
    target = manifest[manifest["image_id"].isin(scored_ids) & (manifest["source"] == "ieee8023-covid-chestxray")]
    ieee = target.iloc[0]
    name = ieee["path"].rsplit("/", 1)[1]
    own = ieee.copy()
    own["source"], own["image_id"] = "brixia-score", "b" * 16
    own["path"] = f"datasets/brixia-score/{IMAGES}/{name}"
    own["pixel_sha256"] = own["sha256"] = "0" * 64  # another picture: not a duplicate of the ieee8023 file
    manifest = pd.concat([manifest, own.to_frame().T], ignore_index=True)
    manifest.loc[manifest["image_id"].isin([ieee["image_id"], own["image_id"]]), "dup_group"] = ""
    scores = _join(root, manifest, "brixia-score")
    landed = scores[scores["image_id"].isin([ieee["image_id"], own["image_id"]])]
    assert set(landed["image_id"]) == {own["image_id"]}
    assert len(landed) == len(
        annotations[(annotations["source"] == "brixia-score") & (annotations["image_id"] == ieee["image_id"])]
    )
