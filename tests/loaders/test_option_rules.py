"""The loader option checks, the volume geometry and the manifest stamp, rule by rule, without a
sync or a framework: the fast tests ``make mutation`` runs for ``loaders._checks``,
``loaders.volumes`` (shape and resampling) and ``loaders._manifest.ManifestStamp``.

The same rules are proved end to end in ``test_loader_arguments.py``, ``test_loaders_volumes.py``,
``test_volumes_frameworks.py`` and ``torch/test_manifest_changed.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from covid19_images.core.schema import LABELS, SPLITS
from covid19_images.loaders import _checks as checks
from covid19_images.loaders._manifest import ManifestChanged, ManifestStamp
from covid19_images.loaders.volumes import resample, target_shape

# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [3, np.int64(3), 3.0, np.float32(3.0)])
def test_a_whole_number_may_be_any_integral_value(value: object) -> None:
    assert checks.whole_number(value, "n") == 3 and type(checks.whole_number(value, "n")) is int


@pytest.mark.parametrize("value", [True, False, "3", 3.5, None, np.float64(2.5), [3]])
def test_anything_else_is_not_a_whole_number(value: object) -> None:
    with pytest.raises(TypeError, match=rf"^n must be a whole number, not {type(value).__name__} "):
        checks.whole_number(value, "n")


def test_an_image_size_is_a_side_or_a_height_width_pair_in_range() -> None:
    assert checks.image_size_tuple(None) is None
    assert checks.image_size_tuple(224) == (224, 224)
    assert checks.image_size_tuple((32, 48)) == (32, 48)
    assert checks.image_size_tuple([np.int64(1), 16384.0]) == (1, 16384)
    assert checks.image_size_tuple(range(5, 7)) == (5, 6)
    for bad, error, message in [
        ("224", TypeError, "image_size must be an int or a .* not the string '224'"),
        (b"22", TypeError, "not the string"),
        ((1, 2, 3), ValueError, r"image_size must be \(height, width\), got \(1, 2, 3\)"),
        ((5,), ValueError, r"must be \(height, width\)"),
        (0, ValueError, r"image_size 0 is out of range \(1..16384\)"),
        ((16, 0), ValueError, "out of range"),
        ((16385, 16), ValueError, "out of range"),
        (16385, ValueError, "out of range"),
        ((True, 2), TypeError, "whole number"),
        (2.5, TypeError, "whole number"),
    ]:
        with pytest.raises(error, match=message):
            checks.image_size_tuple(bad)
    with pytest.raises(ValueError, match=r"^volume_size 0"):
        checks.image_size_tuple(0, "volume_size")
    for bad in ((True, 2), (2, True), 2.5):  # each part is checked under the option's own name
        with pytest.raises(TypeError, match=r"^volume_size must be a whole number"):
            checks.image_size_tuple(bad, "volume_size")


def test_channels_are_one_or_three() -> None:
    assert checks._channels(1, "c") == 1 and checks._channels(np.int8(3), "c") == 3
    for bad in (True, 3.0, "3"):
        with pytest.raises(
            TypeError, match=rf"^c must be the int 1 \(grayscale\) or 3 \(RGB\), not {type(bad).__name__}"
        ):
            checks._channels(bad, "c")
    for bad in (0, 2, 4):
        with pytest.raises(ValueError, match=rf"^c must be 1 \(grayscale\) or 3 \(RGB\), not {bad}$"):
            checks._channels(bad, "c")


def test_a_buffer_is_none_or_a_count_from_zero() -> None:
    assert checks._buffer(None, "b") is None and checks._buffer(0, "b") == 0 and checks._buffer(5.0, "b") == 5
    with pytest.raises(ValueError, match=r"^b must be >= 0 or None, not -1$"):
        checks._buffer(-1, "b")
    with pytest.raises(TypeError, match=r"^b must be a whole number, not str .5.$"):
        checks._buffer("5", "b")


# --- names -----------------------------------------------------------------------------------


def test_names_are_one_string_or_an_iterable_of_strings() -> None:
    assert checks._names(None, "n") is None
    assert checks._names("PA", "n") == ("PA",)  # a bare string is one name, not its letters
    assert checks._names(["PA", "AP"], "n") == ("PA", "AP")
    assert checks._names(iter(["x"]), "n") == ("x",)
    assert checks._names([], "n") == ()
    with pytest.raises(TypeError, match=r"^n must be a string or a list of strings, not int$"):
        checks._names(5, "n")
    with pytest.raises(TypeError, match=r"^n must contain strings, got 3$"):
        checks._names(["a", 3], "n")


def test_labels_are_manifest_labels_or_all() -> None:
    assert checks._labels(None, "labels") is None
    assert checks._labels("all", "labels") == LABELS
    assert checks._labels(["all"], "labels") == LABELS
    assert checks._labels(["normal", "covid-19"], "labels") == ("normal", "covid-19")
    with pytest.raises(ValueError, match=rf"^unknown label 'covid'; labels are {', '.join(LABELS)} \(or 'all'\)$"):
        checks._labels(["normal", "covid"], "labels")
    with pytest.raises(ValueError, match="unknown label 'all'"):
        checks._labels(["all", "normal"], "labels")  # "all" alone, not among others
    with pytest.raises(TypeError, match=r"^labels must be a string or a list of strings, not int$"):
        checks._labels(5, "labels")


def test_views_are_manifest_views_and_a_near_miss_is_named() -> None:
    assert checks._views(None, "views") is None and checks._views(["PA", "AP"], "views") == ("PA", "AP")
    with pytest.raises(ValueError, match=r"^unknown view 'pa' \(did you mean 'PA'\?\); views are "):
        checks._views("pa", "views")
    with pytest.raises(ValueError, match=r"^unknown view 'sideways'; views are PA, AP, ") as caught:
        checks._views(["PA", "sideways"], "views")
    assert "did you mean" not in str(caught.value)
    with pytest.raises(TypeError, match=r"^views must contain strings, got 1$"):
        checks._views(["PA", 1], "views")


def test_classes_are_distinct_known_labels() -> None:
    assert checks._classes(None, "classes") is None
    assert checks._classes(["normal", "covid-19"], "classes") == ("normal", "covid-19")
    with pytest.raises(ValueError, match=r"^classes must be a non-empty list without repeats, got \[\]$"):
        checks._classes([], "classes")
    with pytest.raises(ValueError, match=r"without repeats, got \['normal', 'normal'\]"):
        checks._classes(["normal", "normal"], "classes")
    with pytest.raises(ValueError, match=rf"^unknown class 'covid'; labels are {', '.join(LABELS)}$"):
        checks._classes(["normal", "covid"], "classes")
    with pytest.raises(TypeError, match=r"^classes must be a string or a list of strings, not float$"):
        checks._classes(1.5, "classes")


def test_splits_are_manifest_splits() -> None:
    for split in SPLITS:
        assert checks._split(split, "split") == split
    assert checks._split(None, "split") is None
    with pytest.raises(ValueError, match=rf"^unknown split 'training'; choose one of {', '.join(SPLITS)} or None"):
        checks._split("training", "split")
    assert checks._splits(None, "augment_splits") == ()
    assert checks._splits(["train", "val"], "augment_splits") == ("train", "val")
    with pytest.raises(ValueError, match=r"^unknown augment_splits 'Val'"):
        checks._splits(["train", "Val"], "augment_splits")


def test_a_scheme_and_a_name_are_non_empty_strings() -> None:
    assert checks._scheme("loso:x", "split_scheme") == "loso:x"
    for bad in ("", None, 3):
        with pytest.raises(TypeError, match=r"^split_scheme must be a non-empty string such as 'default'"):
            checks._scheme(bad, "split_scheme")
        with pytest.raises(TypeError, match=r"^version must be a non-empty string, not "):
            checks._name(bad, "version")
    assert checks._name("v1", "version") == "v1"
    assert checks._optional_name(None, "version") is None and checks._optional_name("v", "version") == "v"
    with pytest.raises(TypeError, match=r"^version must be a non-empty string, not str ''$"):
        checks._optional_name("", "version")
    with pytest.raises(TypeError, match=r"^version must be a non-empty string, not int 3$"):
        checks._name(3, "version")


def test_video_frames_are_middle_all_or_a_stride() -> None:
    assert checks._video_frames("middle", "f") == "middle" and checks._video_frames("all", "f") == "all"
    assert checks._video_frames(np.int32(2), "f") == 2 and checks._video_frames(1, "f") == 1
    for bad in (0, -1, True, 2.0, "first", None, ["all"]):
        with pytest.raises(ValueError, match=r"^f must be 'middle', 'all' or a stride >= 1, not "):
            checks._video_frames(bad, "f")


def test_flags_are_booleans_only() -> None:
    assert checks._flag(True, "x") is True and checks._flag(False, "x") is False
    for bad in (1, 0, "false", None):
        with pytest.raises(TypeError, match=r"^x must be True or False, not "):
            checks._flag(bad, "x")
    with pytest.raises(TypeError, match=r"^x must be True or False, not str 'false'$"):
        checks._flag("false", "x")


def test_shards_augment_equalize_and_directories() -> None:
    assert checks._shards(None, "shards") is None
    assert checks._shards(Path("/x/export"), "shards") == "/x/export"
    assert checks._shards("a-{0..3}.tar", "shards") == "a-{0..3}.tar"
    with pytest.raises(TypeError, match=r"^shards must be an export folder or a shard URL pattern, not int$"):
        checks._shards(3, "shards")
    for empty in ("", "  "):
        with pytest.raises(ValueError, match=r"^shards is empty"):
            checks._shards(empty, "shards")
    assert checks._augment(None, "augment") is None and checks._augment("light", "augment") == "light"
    assert checks._augment(len, "augment") is len
    with pytest.raises(ValueError, match=r"^augment must be None, 'light' or a callable, not 'heavy'$"):
        checks._augment("heavy", "augment")
    for value in (None, "pad", "drop"):
        assert checks._equalize(value, "equalize") == value
    with pytest.raises(ValueError, match=r"^equalize must be None, 'pad' or 'drop', not 'min'$"):
        checks._equalize("min", "equalize")
    assert checks._directory(None, "d") is None
    assert checks._directory("rel", "d") == Path(os.getcwd(), "rel")
    with pytest.raises(TypeError, match=r"^d must be a path, not int$"):
        checks._directory(3, "d")
    assert checks._checked_with_the_others(object, "x") is object


# --- volume geometry -------------------------------------------------------------------------


@dataclass
class _Vol:
    volume_size: tuple[int, int, int] | None = None
    spacing: tuple[float, float, float] | None = None


def test_a_volume_keeps_its_shape_without_a_size_or_spacing() -> None:
    assert target_shape((8, 40, 30), (2.5, 0.7, 1.3), _Vol()) == ((8, 40, 30), (2.5, 0.7, 1.3))


def test_each_axis_is_resampled_by_its_own_spacing() -> None:
    """Physical extent (voxels x spacing) over the wanted spacing, axis by axis, worked out by hand."""
    size, spacing = target_shape((8, 40, 30), (2.5, 0.7, 1.3), _Vol(spacing=(5.0, 1.4, 2.6)))
    assert size == (4, 20, 15)
    assert spacing == pytest.approx((5.0, 1.4, 2.6))
    size, spacing = target_shape((10, 7, 3), (1.0, 1.0, 1.0), _Vol(spacing=(3.0, 2.0, 4.0)))
    assert size == (3, 4, 1)  # 10/3 -> 3, 7/2 = 3.5 -> 4 (half to even), 3/4 -> 1
    assert spacing == pytest.approx((10 / 3, 7 / 4, 3.0))  # the spacing the rounded shape really has
    size, _ = target_shape((2, 2, 2), (1.0, 1.0, 1.0), _Vol(spacing=(10.0, 10.0, 10.0)))
    assert size == (1, 1, 1)  # never zero voxels


def test_a_spacing_or_size_of_another_rank_than_the_volume_is_refused() -> None:
    """Never a 2-D shape silently made from a 3-D volume (the options check the rank first;
    this is the last line)."""
    with pytest.raises(ValueError):
        target_shape((8, 40, 30), (2.5, 0.7, 1.3), _Vol(spacing=(5.0, 1.4)))
    with pytest.raises(ValueError):
        target_shape((8, 40, 30), (2.5, 0.7, 1.3), _Vol(volume_size=(4, 20)))


def test_a_fixed_size_wins_and_its_spacing_follows_from_the_extent() -> None:
    size, spacing = target_shape((8, 40, 30), (2.5, 0.7, 1.3), _Vol(volume_size=(4, 10, 60), spacing=(1, 1, 1)))
    assert size == (4, 10, 60)
    assert spacing == pytest.approx((5.0, 2.8, 0.65))


def test_trilinear_resampling_keeps_a_linear_ramp_and_nearest_keeps_labels() -> None:
    z, y, x = np.meshgrid(np.arange(6), np.arange(8), np.arange(10), indexing="ij")
    ramp = (100.0 * z + 10.0 * y + x).astype(np.float32)
    assert resample(ramp, (6, 8, 10), nearest=False) is ramp  # the same shape: untouched
    halved = resample(ramp, (3, 4, 5), nearest=False)
    assert halved.shape == (3, 4, 5) and halved.dtype == np.float32 and halved.flags.c_contiguous
    # pixels are areas: output voxel k covers input voxels 2k and 2k+1, its centre is their mean
    expected = 100.0 * (2 * z[:3, :4, :5] + 0.5) + 10.0 * (2 * y[:3, :4, :5] + 0.5) + (2 * x[:3, :4, :5] + 0.5)
    assert np.allclose(halved, expected, atol=1e-3)
    labels = (z % 3).astype(np.uint8)
    shrunk = resample(labels, (3, 8, 10), nearest=True)
    assert shrunk.dtype == np.uint8 and set(np.unique(shrunk)) <= {0, 1, 2}
    grown = resample(labels, (12, 8, 10), nearest=True)
    assert np.array_equal(grown[::2], labels) and np.array_equal(grown[1::2], labels)
    with pytest.raises(ValueError):
        resample(ramp, (3, 4), nearest=False)  # a 2-D size for a 3-D volume
    ints = np.arange(4 * 4 * 4, dtype=np.int16).reshape(4, 4, 4)
    assert resample(ints, (2, 2, 2), nearest=False).dtype == np.float32


def test_resampling_to_a_non_square_size_moves_each_axis_by_its_factor() -> None:
    volume = np.zeros((4, 6, 9), dtype=np.float32)
    volume[:, :, 3:6] = 1.0  # a band in the middle third of x
    out = resample(volume, (2, 12, 3), nearest=True)
    assert out.shape == (2, 12, 3)
    assert np.array_equal(out[:, :, 1], np.ones((2, 12))) and not out[:, :, [0, 2]].any()
    assert Fraction(12, 6) == 2  # y doubled, x divided by three: the band stays one column wide


# --- the manifest stamp ----------------------------------------------------------------------


def _root(tmp_path: Path) -> Path:
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "manifest.csv").write_text("image_id,label\na,normal\nb,covid-19\n")
    return tmp_path


def test_the_stamp_lets_an_unchanged_or_identically_rewritten_manifest_through(tmp_path: Path) -> None:
    root = _root(tmp_path)
    stamp = ManifestStamp(root).settle(None)  # as a loader does: the hash of the bytes it read
    stamp.check()
    manifest = root / "manifests" / "manifest.csv"
    replacement = manifest.with_suffix(".tmp")
    replacement.write_bytes(manifest.read_bytes())
    os.replace(replacement, manifest)  # a sync that changed nothing: a new file, the same bytes
    stamp.check()
    stamp.check()


def test_the_stamp_refuses_a_manifest_rewritten_with_other_bytes(tmp_path: Path) -> None:
    root = _root(tmp_path)
    stamp = ManifestStamp(root).settle(None)  # as a loader does: the hash of the bytes it read
    manifest = root / "manifests" / "manifest.csv"
    replacement = manifest.with_suffix(".tmp")
    replacement.write_text("image_id,label\na,covid-19\nb,normal\n")  # same size, labels swapped
    os.replace(replacement, manifest)
    with pytest.raises(ManifestChanged, match=r"manifest.csv changed since this loader was built") as caught:
        stamp.check()
    assert str(manifest) in str(caught.value)
    assert str(caught.value).endswith(
        "its files may no longer be the pictures its labels describe; build the loader again"
    )
    with pytest.raises(ManifestChanged):  # and keeps refusing
        stamp.check()


def test_the_stamp_refuses_a_manifest_edited_in_place_or_deleted(tmp_path: Path) -> None:
    root = _root(tmp_path)
    manifest = root / "manifests" / "manifest.csv"
    stamp = ManifestStamp(root).settle(None)  # as a loader does: the hash of the bytes it read
    with open(manifest, "a") as handle:
        handle.write("c,normal\n")
    with pytest.raises(ManifestChanged):
        stamp.check()
    stamp = ManifestStamp(root).settle(None)  # as a loader does: the hash of the bytes it read
    manifest.unlink()
    with pytest.raises(ManifestChanged):
        stamp.check()


def test_a_stamp_of_a_missing_manifest_accepts_only_a_still_missing_one(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    stamp = ManifestStamp(tmp_path).settle(None)
    stamp.check()
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "manifest.csv").write_text("image_id\n")
    with pytest.raises(ManifestChanged):
        stamp.check()
