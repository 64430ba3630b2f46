"""``target="multilabel"`` over the annotation vocabularies of the portal sets: SIIM-FISABIO-RSNA's study
classes and image opacity (X-ray), STOIC2021's RT-PCR and severe outcome (CT, per slice and per volume), in
torch, TensorFlow and fastai. Expected vectors are read here from the fetched CSVs, not from the annotations.

The SIIM download served here lacks the image-level row of one image (as a partial ``train_image_level.csv``
would): that image has its study class but no opacity rating, so it must be left out and counted, never
served with an all-zero opacity."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from covid19_images import load_covid_ct, load_covid_xray
from covid19_images.loaders import NoItemsError
from covid19_images.manifest.build import build_manifest, write_manifest
from covid19_images.sources.portal.fetch import fetch_source
from covid19_images.sources.portal.update import update_lock
from covid19_images.sources.registry import load_registry
from covid19_images.testing.portal_miniatures import fetched_miniature_root, serve_miniature
from covid19_images.testing.portal_server import running_with_kaggle_token
from tests.sources.catalog.portal import miniature_copy

pytestmark = [pytest.mark.framework, pytest.mark.xdist_group("multilabel-vocabularies")]
NAMES = ["siim-covid19-detection", "midrc-ricord-1c", "stoic2021"]
#: the documented class order (loaders.tasks: never re-sorted)
SIIM = ["negative_for_pneumonia", "typical_appearance", "indeterminate_appearance", "atypical_appearance", "opacity"]
STOIC = ["covid19", "severe"]
STUDY_COLUMNS = ["Negative for Pneumonia", "Typical Appearance", "Indeterminate Appearance", "Atypical Appearance"]
UNROWED = "c92ca0d4cc0e"  # its train_image_level.csv row is dropped from the download served
#: (study of a picture, another study): the picture is filed again under the other study, read otherwise
READ_TWICE = ("4379dc59c9fa", "b8dfe941bbaa")
SIZE = 32


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    warnings.simplefilter("ignore")
    base = tmp_path_factory.mktemp("multilabel")
    root = base / "root"
    with running_with_kaggle_token("multilabel-token") as server:
        fetched_miniature_root(root, server, NAMES)
        folder = miniature_copy("siim-covid19-detection", base / "siim-partial")
        rows = (folder / "train_image_level.csv").read_text().splitlines(keepends=True)
        rows = [r for r in rows if not r.startswith(UNROWED)]
        # the same picture filed again under a study read otherwise: its two copies are rated 0 and 1
        original = next(folder.glob(f"train/{READ_TWICE[0]}/*/*.dcm"))
        twin = folder / "train" / READ_TWICE[1] / original.parent.name / "0123456789ab.dcm"
        twin.parent.mkdir(parents=True)
        twin.write_bytes(original.read_bytes())
        rows.append(f"0123456789ab_image,,none 1 0 0 1 1,{READ_TWICE[1]}\n")
        (folder / "train_image_level.csv").write_text("".join(rows))
        spec = load_registry(root)["siim-covid19-detection"]
        serve_miniature(server, spec, folder)
        update_lock(root, spec, version=spec.version, progress=False)
        fetch_source(root, spec, progress=False)
    write_manifest(root, build_manifest(root, load_registry(root), progress=False))
    yield root


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def manifest(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "manifests/manifest.csv", dtype=str, keep_default_na=False)


def siim_expected(root: Path) -> dict[str, list[float]]:
    """image_id -> the vector the CSVs give, for SIIM's images rated on both CSVs and for their copies."""
    folder = root / "datasets/siim-covid19-detection"
    studies = {r["id"].removesuffix("_study"): r for r in csv_rows(folder / "train_study_level.csv")}
    images = {r["id"].removesuffix("_image"): r for r in csv_rows(folder / "train_image_level.csv")}
    rows = manifest(root)
    group = dict(zip(rows["image_id"], rows["dup_group"].where(rows["dup_group"] != "", rows["image_id"]), strict=True))
    readings: dict[str, set[tuple[float, ...]]] = {}  # picture (duplicate group) -> the readings of its SIIM files
    for row in rows[rows["source"] == "siim-covid19-detection"].itertuples():
        _, split, study, _series, name = row.path.rsplit("/", 4)
        stem = name.removesuffix(".dcm")
        if split != "train" or stem not in images:
            continue
        vector = [float(studies[study][c]) for c in STUDY_COLUMNS]
        vector.append(1.0 if images[stem]["label"].startswith("opacity") else 0.0)
        readings.setdefault(group[row.image_id], set()).add(tuple(vector))
    # every copy of a picture read once carries that reading (RICORD-1c's original too); a picture read
    # twice (0 and 1 for one name) is no reading: none of its copies is served
    return {i: list(next(iter(readings[g]))) for i, g in group.items() if len(readings.get(g, ())) == 1}


def stoic_expected(root: Path) -> dict[str, list[float]]:
    """STOIC volume path -> [probCOVID, probSevere] from reference.csv."""
    reference = csv_rows(root / "datasets/stoic2021/metadata/reference.csv")
    return {f"datasets/stoic2021/data/mha/{r['PatientID']}.mha": [float(r["probCOVID"]), float(r["probSevere"])]
            for r in reference}  # fmt: skip


def test_torch_serves_the_siim_vector_of_the_csvs_and_counts_the_image_without_an_opacity_row(root: Path) -> None:
    expected = siim_expected(root)
    with pytest.warns(UserWarning, match=r"1 image\(s\) rated on only part.*; 2 image\(s\) rated both 0 and 1"):
        ds = load_covid_xray(
            "torch", root=root, split=None, target="multilabel", vocabulary="siim", deduplicate=False, image_size=SIZE
        )
    assert ds.target_classes == SIIM
    served = ds.manifest["image_id"].tolist()
    assert sorted(served) == sorted(expected) and len(served) >= 4
    assert not any(UNROWED in p for p in ds.manifest["path"]), "no all-zero opacity for an unrated image"
    assert not any(f"/{READ_TWICE[0]}/" in p or "0123456789ab" in p for p in ds.manifest["path"]), "read twice"
    assert "midrc-ricord-1c" in set(ds.manifest["source"]), "RICORD-1c's original carries SIIM's read"
    for index, image_id in enumerate(served):
        _image, vector = ds[index]
        assert vector.dtype == torch.float32 and vector.tolist() == expected[image_id]
        assert sum(vector.tolist()[:4]) == 1.0  # exactly one study class


def test_tensorflow_serves_the_same_siim_vectors(root: Path) -> None:
    expected = siim_expected(root)
    ds = load_covid_xray(
        "tf", root=root, split=None, target="multilabel", vocabulary="siim", image_size=SIZE, batch_size=None,
        with_id=True,
    )  # fmt: skip
    assert ds.target_classes == SIIM
    seen = []
    for _image, vector, image_id in ds:
        seen.append(image_id.numpy().decode())
        assert vector.numpy().tolist() == expected[seen[-1]]
    rows = manifest(root).set_index("image_id")
    pictures = {rows.loc[i, "dup_group"] or i for i in expected}
    assert len(seen) == len(pictures) >= 3  # deduplicate=True: one copy per picture


def test_fastai_batches_hold_the_siim_vectors_in_the_vocabulary_order(root: Path) -> None:
    pytest.importorskip("fastai")
    expected = siim_expected(root)
    dls = load_covid_xray(
        "fastai", root=root, target="multilabel", vocabulary="siim", image_size=SIZE, bs=2, num_workers=0,
        shuffle=False,
    )  # fmt: skip
    assert dls.target_classes == SIIM and list(dls.vocab) == SIIM
    for loader in (dls.train, dls.valid):
        _x, y = loader.one_batch()
        rows = loader.items["image_id"].tolist()[: len(y)]
        assert y.shape[1] == len(SIIM)
        assert [v.tolist() for v in y.cpu()] == [expected[i] for i in rows]


def test_stoic_volumes_carry_reference_csv_in_torch_and_tf(root: Path) -> None:
    expected = stoic_expected(root)
    options = {"root": root, "split": None, "volumes": True, "target": "multilabel", "vocabulary": "stoic"}
    ds = load_covid_ct("torch", **options, volume_size=8)
    assert ds.target_classes == STOIC and len(ds) == len(expected) == 3
    for index, volume in enumerate(ds.volumes):
        image, vector = ds[index]
        assert image.shape == (1, 8, 8, 8) and vector.dtype == torch.float32
        assert vector.tolist() == expected[volume.key]
    tf_ds = load_covid_ct("tf", **options, volume_size=8, with_id=True)
    assert tf_ds.target_classes == STOIC
    got = {key.numpy().decode(): vector.numpy().tolist() for _volume, vector, key in tf_ds}
    assert got == expected
    dicts = load_covid_ct("torch", **options, monai_dict=True)
    assert [dicts[i]["label"].tolist() for i in range(len(dicts))] == [expected[v.key] for v in dicts.volumes]


def test_fastai_volumes_serve_the_torch_multihot(root: Path) -> None:
    """fastai volumes are torch's datasets: the same vectors; the miniature's STOIC volumes are all in train,
    so the DataLoaders (which need a valid split) are refused with the splits named."""
    pytest.importorskip("fastai")
    splits = set(manifest(root).query("source == 'stoic2021'")["split"])
    options = {"root": root, "volumes": True, "target": "multilabel", "vocabulary": "stoic", "volume_size": 8}
    if "val" not in splits:
        with pytest.raises(NoItemsError, match="split 'val'"):
            load_covid_ct("fastai", **options, bs=1, num_workers=0)
        return
    dls = load_covid_ct("fastai", **options, bs=1, num_workers=0)
    assert dls.target_classes == STOIC and dls.train.one_batch()[1].shape == (1, 2)


def test_stoic_slices_carry_their_volume_ratings(root: Path) -> None:
    expected = stoic_expected(root)
    ds = load_covid_ct("torch", root=root, split=None, target="multilabel", vocabulary="stoic", image_size=SIZE)
    assert ds.target_classes == STOIC and len(ds) == 3 * 6  # every slice of the three volumes
    for index, path in enumerate(ds.manifest["path"]):
        assert ds[index][1].tolist() == expected[path]


def test_a_selection_without_the_findings_names_the_sources_that_have_them(root: Path) -> None:
    with pytest.raises(NoItemsError, match=r"'stoic' findings are on images of: stoic2021"):
        load_covid_ct("torch", root=root, target="multilabel", vocabulary="stoic", labels=["normal"])
    with pytest.raises(NoItemsError, match=r"'siim' findings are on images of: midrc-ricord-1c, siim-covid19"):
        load_covid_xray("torch", root=root, target="multilabel", vocabulary="siim", views=["lateral"])


def test_vocabulary_is_checked_against_target_and_modality(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"vocabulary 'stoic' for xray; choose one of findings, siim"):
        load_covid_xray("torch", root=tmp_path, target="multilabel", vocabulary="stoic")
    with pytest.raises(ValueError, match=r"unknown vocabulary 'nih' for ct; choose one of findings, stoic"):
        load_covid_ct("torch", root=tmp_path, target="multilabel", vocabulary="nih")
    with pytest.raises(ValueError, match=r'vocabulary= only applies to target="multilabel"'):
        load_covid_ct("torch", root=tmp_path, vocabulary="stoic")


def test_default_vocabularies_are_unchanged() -> None:
    from covid19_images.loaders._options import make_options
    from covid19_images.loaders.tasks import MULTILABEL_VOCABULARY, ULTRASOUND_VOCABULARY, multilabel_vocabulary

    for modality, vocabulary in (("xray", MULTILABEL_VOCABULARY), ("ct", MULTILABEL_VOCABULARY),
                                 ("ultrasound", ULTRASOUND_VOCABULARY)):  # fmt: skip
        options = make_options(modality, root=".", target="multilabel")
        assert multilabel_vocabulary(modality, options.vocabulary) == vocabulary
    assert np.array_equal(multilabel_vocabulary("xray", "siim"), SIIM)
