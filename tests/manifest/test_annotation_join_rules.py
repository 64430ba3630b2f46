"""Where an annotation lands, rule by rule, on a hand-made manifest (no sync): its first target
that the manifest holds, refused when it states another image size, spread through the image's
duplicate group (masks and boxes only to copies of the same size, never to augmented copies).

``test_annotations.py`` proves the same rules on real sources; these are the fast tests
``make mutation`` runs for ``manifest.annotations._Joiner``.
"""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from covid19_images.core.annotation import Annotation
from covid19_images.manifest.annotations import _Joiner
from covid19_images.sources.spec import SourceSpec

SPEC = SourceSpec(
    name="a", url="https://example.org/a.git", branch="main", parser="a", modalities=("xray",), license="MIT"
)

ROWS = [
    # source, path in source, dup_group, width, height, extra
    ("a", "x.png", "g1", 100, 80, ""),
    ("b", "x-copy.png", "g1", 100, 80, ""),
    ("c", "x-small.png", "g1", 50, 40, ""),
    ("c", "x-rotated.png", "g1", 100, 80, json.dumps({"augmented": True})),
    ("c", "x-zoomed.png", "g1", 100, 80, json.dumps({"augmented": "yes"})),
    ("a", "alone.png", "", 64, 64, ""),
    ("b", "y.png", "g2", 30, 30, json.dumps({"augmented": "false"})),
    ("a", "y.png", "g2", 30, 30, "not json"),
]


@pytest.fixture(scope="module")
def joiner() -> _Joiner:
    frame = pd.DataFrame(
        [
            {"source": s, "path": f"datasets/{s}/{p}", "dup_group": g, "width": w, "height": h, "extra": e}
            for s, p, g, w, h, e in ROWS
        ],
        index=range(100, 100 + len(ROWS)),  # the joiner counts rows from 0 whatever the index
    )
    return _Joiner(frame)


def _item(kind: str, *targets: tuple[str, str], width: int | None = None, height: int | None = None) -> Annotation:
    return Annotation(kind=kind, path="ann.json", name="lung", targets=list(targets), width=width, height=height)


def test_a_score_spreads_to_every_copy_but_the_augmented_ones(joiner: _Joiner) -> None:
    assert joiner.find(SPEC, _item("score", ("", "x.png"))) == ([0, 1, 2], "")
    assert joiner.find(SPEC, _item("score", ("b", "x-copy.png"))) == ([0, 1, 2], "")


def test_a_mask_spreads_only_to_copies_of_its_image_size(joiner: _Joiner) -> None:
    assert joiner.find(SPEC, _item("mask", ("", "x.png"))) == ([0, 1], "")
    assert joiner.find(SPEC, _item("box", ("", "x.png"))) == ([0, 1], "")
    assert joiner.find(SPEC, _item("mask", ("c", "x-small.png"))) == ([2], "")


def test_an_augmented_image_named_directly_gets_its_annotation_alone(joiner: _Joiner) -> None:
    """Drawn on a rotated (maybe mirrored) copy: a zone score names a side, a mask its pixels;
    neither describes the original."""
    assert joiner.find(SPEC, _item("score", ("c", "x-rotated.png"))) == ([3], "")
    assert joiner.find(SPEC, _item("mask", ("c", "x-zoomed.png"))) == ([4], "")


def test_an_image_without_a_group_gets_it_alone(joiner: _Joiner) -> None:
    assert joiner.find(SPEC, _item("mask", ("", "alone.png"))) == ([5], "")
    assert joiner.find(SPEC, _item("score", ("", "alone.png"), width=64, height=64)) == ([5], "")


def test_augmented_flags_are_read_from_the_extra_cell(joiner: _Joiner) -> None:
    """``"false"`` and an unreadable cell are not augmented."""
    assert joiner.find(SPEC, _item("score", ("b", "y.png"))) == ([6, 7], "")


def test_the_first_target_the_manifest_holds_wins(joiner: _Joiner) -> None:
    item = _item("score", ("", "missing.png"), ("b", "y.png"), ("", "x.png"))
    assert joiner.find(SPEC, item) == ([6, 7], "")
    item = _item("score", ("", "alone.png"), ("b", "y.png"))
    assert joiner.find(SPEC, item) == ([5], "")


def test_a_stated_size_must_be_the_image_size(joiner: _Joiner) -> None:
    assert joiner.find(SPEC, _item("mask", ("", "x.png"), width=100, height=80)) == ([0, 1], "")
    for width, height in ((80, 100), (100, 81), (99, 80)):
        members, reason = joiner.find(SPEC, _item("mask", ("", "x.png"), width=width, height=height))
        assert members == [] and reason == f"drawn on a {width}x{height} image but a:x.png is 100x80"
    # a size stated in part is no statement
    assert joiner.find(SPEC, _item("mask", ("", "x.png"), width=5))[0] == [0, 1]
    assert joiner.find(SPEC, _item("mask", ("", "x.png"), height=5))[0] == [0, 1]


def test_an_annotation_whose_image_is_absent_names_every_place_looked(joiner: _Joiner) -> None:
    item = _item("mask", ("", "gone.png"), ("b", "x.png"), ("", "datasets/a/x.png"))
    assert joiner.find(SPEC, item) == (
        [],
        "its image is not in the manifest (looked for a:gone.png, b:x.png, a:datasets/a/x.png)",
    )


def test_the_lazy_lookups_answer_as_a_scan_of_every_row_does() -> None:
    """The joiner builds a source's path table and a group's members only when asked: on rows of
    interleaved sources (not one slice per source), a path listed twice (the last row wins) and
    groups spread over sources, it lands every annotation where a scan of all rows puts it."""
    rng = random.Random(23)
    rows = []
    for i in range(300):
        source = rng.choice("abc")
        path = f"datasets/{source}/{rng.randrange(120)}.png"  # repeats: a path listed twice
        group = rng.choice(["", "", "g1", "g2", "g3", f"g{i}"])
        extra = rng.choice(["", "", json.dumps({"augmented": True}), json.dumps({"augmented": "no"})])
        size = rng.choice([(10, 10), (20, 10)])
        rows.append({"source": source, "path": path, "dup_group": group, "width": size[0], "height": size[1]})
        rows[-1]["extra"] = extra
    frame = pd.DataFrame(rows, index=rng.sample(range(1000), len(rows)))
    joiner = _Joiner(frame)
    last = {(r["source"], r["path"]): i for i, r in enumerate(rows)}
    for (source, path), at in sorted(last.items()):
        group = rows[at]["dup_group"]
        members = [
            j
            for j, r in enumerate(rows)
            if group and r["dup_group"] == group and json.loads(r["extra"] or "{}").get("augmented") is not True
        ]
        members = members if at in members else [at]
        relative = path.removeprefix(f"datasets/{source}/")
        assert joiner.find(SPEC, _item("score", (source, relative))) == (members, "")
        same_size = [
            j for j in members if (rows[j]["width"], rows[j]["height"]) == (rows[at]["width"], rows[at]["height"])
        ]
        assert joiner.find(SPEC, _item("mask", (source, relative))) == (same_size, "")
