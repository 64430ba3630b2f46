"""The public loaders' explicit signatures agree with the one declaration of the options."""

from __future__ import annotations

import inspect

import pytest

import covid19_images
from covid19_images.core.schema import MODALITIES
from covid19_images.loaders import load
from covid19_images.loaders._options import make_options, options_doc, user_options
from covid19_images.loaders.adapters import adapter_names, framework_options, get_adapter
from tests.fresh_imports import packages_imported

PUBLIC = {
    "xray": covid19_images.load_covid_xray,
    "ct": covid19_images.load_covid_ct,
    "ultrasound": covid19_images.load_covid_ultrasound,
}


@pytest.mark.parametrize("modality", MODALITIES)
def test_signature_lists_exactly_the_declared_options_with_their_defaults(modality: str) -> None:
    parameters = inspect.signature(PUBLIC[modality]).parameters
    keywords = {
        name: p.default for name, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "root"
    }
    declared = {f.name: f.default for f in user_options(modality)}
    assert keywords == declared
    # every keyword is typed, and framework extras are named, not an anonymous **kwargs
    assert all(p.annotation is not inspect.Parameter.empty for p in parameters.values())
    assert list(parameters)[-1] == "framework_options"


@pytest.mark.parametrize("modality", MODALITIES)
def test_docstring_documents_every_option(modality: str) -> None:
    doc = PUBLIC[modality].__doc__
    assert options_doc(modality) in doc
    for f in user_options(modality):
        assert f"``{f.name}``" in doc


def test_ct_only_option_is_refused_for_xray(tmp_path) -> None:
    with pytest.raises(TypeError, match="include_non_axial"):
        make_options("xray", root=tmp_path, include_non_axial=True)
    assert make_options("ct", root=tmp_path, include_non_axial=True).include_non_axial is True


def test_adapters_register_by_name_and_declare_their_options() -> None:
    assert set(adapter_names()) >= {"torch", "tf", "fastai"}
    with pytest.raises(ValueError, match="unknown framework 'jax'"):
        load("xray", "jax")


def test_unknown_framework_option_names_the_accepted_ones(tmp_path) -> None:
    # the torch adapter's own signature is the declaration of its options
    accepted = framework_options(get_adapter("torch"))
    assert {"transform", "target_transform", "dtype"} <= set(accepted)
    with pytest.raises(TypeError, match="batch_size") as info:
        load("xray", "torch", root=tmp_path, batch_size=4)
    assert "target_transform" in str(info.value)


@pytest.mark.parametrize(
    ("value", "error"),
    [("22", TypeError), (True, TypeError), ((224.9, 100.2), TypeError), ((0, 10), ValueError), ((1, 2, 3), ValueError)],
)
def test_image_size_is_validated_by_type(tmp_path, value, error) -> None:
    with pytest.raises(error):
        make_options("xray", root=tmp_path, image_size=value)


def test_image_size_accepts_numpy_integers_and_pairs(tmp_path) -> None:
    import numpy as np

    assert make_options("xray", root=tmp_path, image_size=np.int64(224)).image_size == (224, 224)
    assert make_options("xray", root=tmp_path, image_size=(np.int32(96), 128)).image_size == (96, 128)


@pytest.mark.parametrize(("name", "value"), [("channels", True), ("deduplicate", "yes"), ("cache", 1)])
def test_flags_and_channels_refuse_other_types(tmp_path, name, value) -> None:
    with pytest.raises((TypeError, ValueError)):
        make_options("xray", root=tmp_path, **{name: value})


def test_importing_the_package_documents_options_without_importing_a_framework_or_pandas() -> None:
    code = "import covid19_images; assert 'image_size' in covid19_images.load_covid_xray.__doc__"
    assert packages_imported(code, ("torch", "tensorflow", "fastai", "torchvision", "pandas")) == []
