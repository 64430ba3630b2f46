"""Reviewed pairs: a person's decision overrides the near-duplicate search, and a sync notices a new one."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from covid19_images.manifest.duplicates import find_duplicates
from covid19_images.manifest.reviews import (
    REVIEW_COLUMNS,
    REVIEWS_FILE,
    ReviewError,
    append_review,
    read_review_rows,
    read_reviews,
)


def _hash_with_flips(base: int, flips: int) -> str:
    """A 256-bit hex hash that differs from ``base`` in its lowest ``flips`` bits."""
    return format(base ^ ((1 << flips) - 1), "064x")


def _manifest(distances: list[int]) -> pd.DataFrame:
    """Row 0 and one row per distance, each that many bits from row 0 (distinct files)."""
    base = int("f0" * 32, 16)
    rows = []
    for i, flips in enumerate([0, *distances]):
        rows.append(
            {
                "image_id": f"{i:016x}",
                "sha256": format(i + 1, "064x"),
                "pixel_sha256": "",
                "phash": _hash_with_flips(base, flips),
                "source": "s",
                "path": f"datasets/s/{i}.png",
            }
        )
    return pd.DataFrame(rows)


def test_a_pair_reviewed_as_different_is_not_joined_and_one_reviewed_as_same_is(tmp_path: Path) -> None:
    manifest = _manifest([10, 40])  # 10 bits: near without a look; 40: a candidate nobody could check
    before = find_duplicates(manifest)
    assert before.groups.tolist() == ["0000000000000000", "0000000000000000", ""]
    sha = manifest["sha256"].tolist()
    append_review(tmp_path, sha[1], sha[0], "different", reviewer="dr a", reason="two films, a day apart")
    append_review(tmp_path, sha[0], sha[2], "same", reviewer="dr b")
    reviews = read_reviews(tmp_path)
    after = find_duplicates(manifest, reviews=reviews)
    assert after.groups.tolist() == ["0000000000000000", "", "0000000000000000"]
    assert [(e.a, e.b) for e in after.overruled] == [(0, 1)]
    assert [(e.a, e.b, e.kind) for e in after.edges] == [(0, 2, "reviewed")]


def test_the_last_decision_for_a_pair_wins_and_who_when_why_are_kept(tmp_path: Path) -> None:
    a, b = "a" * 64, "b" * 64
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    append_review(
        tmp_path, b, a, "different", reviewer="  dr  a ", reason="<b>no</b>", image_ids=("idb", "ida"), now=when
    )
    assert read_reviews(tmp_path).decision(a, b) == "different"
    append_review(tmp_path, a, b, "same", reviewer="dr b")
    reviews = read_reviews(tmp_path)
    assert reviews.decision(b, a) == "same" and not reviews.different
    rows = pd.read_csv(tmp_path / REVIEWS_FILE, dtype=str, keep_default_na=False)
    first = rows.iloc[0].to_dict()
    assert first["sha256_a"] == a and first["image_id_a"] == "ida" and first["image_id_b"] == "idb"
    assert (first["reviewer"], first["reviewed_at"], first["reason"]) == ("dr a", "2026-01-02T03:04:05Z", "<b>no</b>")
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("sha_a", "sha_b", "decision", "reviewer"),
    [
        ("a" * 64, "b" * 64, "maybe", "x"),
        ("a" * 64, "a" * 64, "same", "x"),
        ("../" + "a" * 61, "b" * 64, "same", "x"),
        ("a" * 64, "b" * 64, "same", "   "),
    ],
)
def test_a_malformed_decision_is_refused_and_nothing_is_written(
    tmp_path: Path, sha_a: str, sha_b: str, decision: str, reviewer: str
) -> None:
    with pytest.raises(ReviewError):
        append_review(tmp_path, sha_a, sha_b, decision, reviewer=reviewer)
    assert not (tmp_path / REVIEWS_FILE).exists()


def test_a_hand_damaged_reviews_file_keeps_its_valid_rows(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    good = f"{'a' * 64},{'b' * 64},different,x,t,,,"
    (tmp_path / REVIEWS_FILE).write_text(
        "sha256_a,sha256_b,decision,reviewer,reviewed_at,reason,image_id_a,image_id_b\n"
        f"{good}\nnot-a-hash,{'c' * 64},same,x,t,,,\n{'c' * 64},{'d' * 64},perhaps,x,t,,,\n"
    )
    reviews = read_reviews(tmp_path)
    assert reviews.different == {("a" * 64, "b" * 64)} and not reviews.same and reviews.digest


@pytest.mark.upstream
def test_a_review_changes_the_groups_at_the_next_incremental_sync(synced_root) -> None:
    from covid19_images.manifest.build import read_manifest
    from covid19_images.sync.run import sync

    root = synced_root(["pocus-ultrasound"])
    manifest = read_manifest(root)
    groups = manifest[manifest["dup_group"] != ""].groupby("dup_group")
    pairs = [g for _, g in groups if len(g) == 2 and g["sha256"].nunique() == 2 and g["pixel_sha256"].nunique() == 2]
    if not pairs:
        pytest.skip("no two-file near-duplicate group in these samples")
    pair = pairs[0]
    sha = pair["sha256"].tolist()
    append_review(root, sha[0], sha[1], "different", reviewer="tester", reason="not the same film")
    report = sync(root, offline=True, progress=False)
    assert not report.build.unchanged  # every source was reused, but the review is new
    after = read_manifest(root).set_index("image_id")
    assert set(after.loc[pair["image_id"], "dup_group"]) == {""}
    again = sync(root, offline=True, progress=False)
    assert again.build.unchanged
    assert set(read_manifest(root).set_index("image_id").loc[pair["image_id"], "dup_group"]) == {""}


def test_the_reviewed_pairs_columns_are_documented_in_order() -> None:
    import re

    from covid19_images.manifest.reviews import REVIEW_COLUMNS

    doc = (Path(__file__).resolve().parents[2] / "manifests" / "README.md").read_text(encoding="utf-8")
    table = doc.split("| reviewed-pairs column |", 1)[1].split("\n\n", 1)[0]
    documented = [name for line in table.splitlines()[2:] for name in re.findall(r"`([a-z_0-9]+)`", line.split("|")[1])]
    assert documented == list(REVIEW_COLUMNS)


@pytest.mark.upstream
def test_sync_commit_carries_the_reviews_it_was_built_with(synced_root) -> None:
    import git

    from covid19_images.sync.run import sync

    root = synced_root(["nih-chestxray14-sample"])
    append_review(root, "a" * 64, "b" * 64, "different", reviewer="tester")
    report = sync(root, offline=True, progress=False, commit=True)
    assert report.committed
    changed = git.Repo(root).git.show("--name-only", "--format=", report.committed).split()
    assert REVIEWS_FILE in changed


def test_a_reviewed_pairs_file_with_only_its_header_means_no_decisions(tmp_path: Path) -> None:
    path = tmp_path / REVIEWS_FILE
    path.parent.mkdir(parents=True)
    path.write_text(",".join(REVIEW_COLUMNS) + "\n", encoding="utf-8")
    assert read_review_rows(tmp_path).empty
    reviews = read_reviews(tmp_path)
    assert not reviews.different and not reviews.same and reviews.digest
