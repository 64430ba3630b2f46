"""Zhang Lab / Kermany paediatric X-rays: labels and patients from folders and file names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from covid19_images.core.schema import Entry, Problem
from covid19_images.sources.catalog.zhanglab_pediatric_xray import patient_from_name
from tests.conftest import run_parser

SOURCE = "zhanglab-pediatric-xray"
SAMPLE = "zhanglab-kermany-chest-xray"


def run(registry, directory: Path) -> tuple[list[Entry], list[Problem]]:
    spec = registry[SOURCE]
    return run_parser(spec, directory)


def jpeg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), 128).save(path, "JPEG")


def patient_by_hand(name: str) -> str:
    """An independent reading of the naming scheme, for comparison with the parser."""
    stem = name.rsplit(".", 1)[0]
    if stem.startswith("person"):
        return stem.split("_")[0]
    pieces = stem.split("-")
    return "-".join(pieces[:3] if pieces[0].startswith("NORMAL") else pieces[:2])


@pytest.mark.upstream
def test_sample_labels_splits_and_patients(shared: Path, registry) -> None:
    directory = shared / SAMPLE
    entries, problems = run(registry, directory)
    images = [p for p in directory.rglob("*.jpeg") if p.parent.parent.name in {"train", "test", "val"}]
    assert images, "sample has no images"
    assert not problems
    assert sorted(e.path for e in entries) == sorted(p.relative_to(directory).as_posix() for p in images)

    expected_labels = Counter(
        (p.parent.parent.name, "normal" if p.parent.name == "NORMAL" else "pneumonia") for p in images
    )
    assert Counter((e.official_split, e.label) for e in entries) == expected_labels

    expected_detail = Counter(
        "bacterial" if "_bacteria_" in p.name else "viral" if "_virus_" in p.name else "" for p in images
    )
    assert Counter(e.label_detail for e in entries) == expected_detail

    assert len({e.patient_id for e in entries}) == len({patient_by_hand(p.name) for p in images})
    for entry in entries:
        assert entry.patient_id == patient_by_hand(Path(entry.path).name)
        assert entry.modality == "xray"
        assert entry.view == "unknown"
        assert entry.age is None
        assert entry.extra.get("paediatric") is True
        assert entry.row == entry.path


@pytest.mark.parametrize(
    ("name", "patient", "subtype"),
    [
        ("person1_bacteria_1.jpeg", "person1", "bacteria"),
        ("person500_virus_1009.jpeg", "person500", "virus"),
        ("person447_virus_921_1.jpeg", "person447", "virus"),
        ("IM-0608-0001.jpeg", "IM-0608", ""),
        ("IM-0608-0001-0002.jpeg", "IM-0608", ""),
        ("NORMAL2-IM-0744-0001.jpeg", "NORMAL2-IM-0744", ""),
        ("NORMAL2-IM-1269-0001-0002.jpeg", "NORMAL2-IM-1269", ""),
        ("NORMAL2-IM-0651-0004.jpeg", "NORMAL2-IM-0651", ""),
        ("scan.jpeg", "", ""),
    ],
)
def test_patient_from_name(name: str, patient: str, subtype: str) -> None:
    assert patient_from_name(name) == (patient, subtype)


def test_same_person_number_is_one_patient_but_series_stay_apart(tmp_path: Path, registry) -> None:
    for relative in (
        "train/PNEUMONIA/person500_bacteria_2105.jpeg",
        "train/PNEUMONIA/person500_virus_1009.jpeg",
        "train/NORMAL/IM-0744-0001.jpeg",
        "train/NORMAL/NORMAL2-IM-0744-0001.jpeg",
    ):
        jpeg(tmp_path / relative)
    entries, problems = run(registry, tmp_path)
    assert not problems
    patients = {Path(e.path).name: e.patient_id for e in entries}
    assert patients["person500_bacteria_2105.jpeg"] == patients["person500_virus_1009.jpeg"]
    assert patients["IM-0744-0001.jpeg"] != patients["NORMAL2-IM-0744-0001.jpeg"]


def test_kaggle_nested_layout_indexes_one_copy(tmp_path: Path, registry) -> None:
    names = {
        ("train", "NORMAL"): "IM-0115-0001.jpeg",
        ("train", "PNEUMONIA"): "person1_bacteria_1.jpeg",
        ("test", "PNEUMONIA"): "person100_virus_184.jpeg",
        ("val", "NORMAL"): "NORMAL2-IM-1427-0001.jpeg",
    }
    for (split, klass), name in names.items():
        jpeg(tmp_path / "chest_xray" / split / klass / name)
    # the Kaggle zip repeats part of the tree one level deeper and ships macOS resource forks
    jpeg(tmp_path / "chest_xray" / "chest_xray" / "train" / "NORMAL" / "IM-0115-0001.jpeg")
    jpeg(tmp_path / "__MACOSX" / "chest_xray" / "train" / "NORMAL" / "._IM-0115-0001.jpeg")
    (tmp_path / "chest_xray" / "train" / "NORMAL" / ".DS_Store").write_bytes(b"\0")

    entries, problems = run(registry, tmp_path)

    assert sorted(e.path for e in entries) == sorted(f"chest_xray/{s}/{k}/{n}" for (s, k), n in names.items())
    assert {e.path: e.official_split for e in entries} == {f"chest_xray/{s}/{k}/{n}": s for (s, k), n in names.items()}
    assert [p.path for p in problems] == ["chest_xray/chest_xray"]
    assert "second copy" in problems[0].message


def test_unreadable_names_are_reported_and_grouped_by_file(tmp_path: Path, registry) -> None:
    jpeg(tmp_path / "train" / "PNEUMONIA" / "scan7.jpeg")
    jpeg(tmp_path / "train" / "NORMAL" / "person3_bacteria_10.jpeg")
    jpeg(tmp_path / "train" / "stray.jpeg")
    entries, problems = run(registry, tmp_path)
    by_path = {e.path: e for e in entries}
    assert by_path["train/PNEUMONIA/scan7.jpeg"].patient_id == ""
    assert by_path["train/PNEUMONIA/scan7.jpeg"].label == "pneumonia"
    assert by_path["train/NORMAL/person3_bacteria_10.jpeg"].label == "normal"  # the folder is the label
    messages = " | ".join(str(p) for p in problems)
    assert "scan7.jpeg" in messages and "no personN_" in messages
    assert "NORMAL folder holds a bacteria file name" in messages
    assert "train/stray.jpeg" in messages


def test_no_layout_is_an_error(tmp_path: Path, registry) -> None:
    (tmp_path / "README.md").write_text("nothing here\n")
    entries, problems = run(registry, tmp_path)
    assert entries == []
    assert [p.level for p in problems] == ["error"]
