"""The loaders' option entry point, rule by rule (no framework): what ``make_options`` refuses as a
whole (modality, names, options of another modality, labels outside classes, a cache without a size)
and what the task and volume options come back as. Each option's own check is in
``test_option_rules.py``; these are the fast tests ``make mutation`` runs for ``loaders._options``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from covid19_images.loaders._options import make_options


def test_an_unknown_modality_or_option_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^unknown modality 'mri'; choose one of xray, ct, ultrasound$"):
        make_options("mri", root=tmp_path)
    with pytest.raises(TypeError, match=r"^unknown option\(s\) bogus, zoom for xray; options: split, split_scheme, "):
        make_options("xray", root=tmp_path, zoom=2, bogus=1)
    with pytest.raises(TypeError, match=r"^unknown option\(s\) include_non_axial for ultrasound; options: "):
        make_options("ultrasound", root=tmp_path, include_non_axial=True)  # a CT option
    assert make_options("ct", root=tmp_path, include_non_axial=True).include_non_axial is True


def test_labels_must_be_among_fixed_classes(tmp_path: Path) -> None:
    same = make_options("xray", root=tmp_path, labels=["normal", "covid-19"], classes=["covid-19", "normal"])
    assert same.labels == ("normal", "covid-19") and same.classes == ("covid-19", "normal")
    with pytest.raises(
        ValueError,
        match=r"^labels \['other', 'pneumonia'\] are not in classes \['covid-19', 'normal'\]: give them an index "
        r"or drop them$",
    ):
        make_options("xray", root=tmp_path, labels=["pneumonia", "normal", "other"], classes=["covid-19", "normal"])


def test_a_cache_needs_a_fixed_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^cache=True needs a fixed image_size: the cache stores resized pixels$"):
        make_options("xray", root=tmp_path, cache=True, image_size=None)
    assert make_options("xray", root=tmp_path, cache=True, image_size=64).cache is True
    assert make_options("xray", root=tmp_path, image_size=None).cache is False


def test_task_options_come_back_with_their_defaults_filled_in(tmp_path: Path) -> None:
    xray = make_options("xray", root=tmp_path, task="segmentation")
    assert (xray.mask_source, xray.score, xray.rater) == ("v7labs", None, None)
    assert make_options("ct", root=tmp_path, task="segmentation").mask_source == "medseg"
    lungvae = make_options("xray", root=tmp_path, task="segmentation", mask_source="lungvae")
    assert lungvae.mask_source == "lungvae"
    severity = make_options("xray", root=tmp_path, task="severity")
    assert (severity.mask_source, severity.score, severity.rater) == (None, "brixia_global", "senior")
    junior = make_options("xray", root=tmp_path, task="severity", score="brixia_A", rater="junior")
    assert (junior.score, junior.rater) == ("brixia_A", "junior")
    with pytest.raises(ValueError, match=r"^score 'brixia_A' has raters senior, junior, mean, not 'x'$"):
        make_options("xray", root=tmp_path, task="severity", score="brixia_A", rater="x")


def test_volume_options_come_back_as_z_y_x_triples(tmp_path: Path) -> None:
    volumes = make_options("ct", root=tmp_path, volumes=True, spacing=2.0)
    assert volumes.spacing == (2.0, 2.0, 2.0) and volumes.volume_size is None
    sized = make_options("ct", root=tmp_path, volumes=True, volume_size=[8, 16, 32])
    assert sized.volume_size == (8, 16, 32) and sized.spacing is None
    monai = make_options("ct", root=tmp_path, volumes=True, task="segmentation", monai_dict=True)
    assert monai.monai_dict is True and monai.mask_source == "medseg"
    with pytest.raises(ValueError, match=r"^volumes=True with task=\"segmentation\" serves the mask_source="):
        make_options("ct", root=tmp_path, volumes=True, task="segmentation")
    with pytest.raises(ValueError, match=r"^spacing=, volume_size= and monai_dict= need volumes=True$"):
        make_options("ct", root=tmp_path, spacing=2.0)
    with pytest.raises(ValueError, match=r"^spacing=, volume_size= and monai_dict= need volumes=True$"):
        make_options("ct", root=tmp_path, volume_size=8)
    with pytest.raises(ValueError, match=r"^give spacing= or volume_size=, not both$"):
        make_options("ct", root=tmp_path, volumes=True, spacing=2.0, volume_size=8)
