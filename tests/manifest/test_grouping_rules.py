"""Duplicate groups and split groups on hand-made manifests: each rule of the grouping, one case
at a time, including the inputs a real manifest can bring (old manifests without some
columns, rows without a patient id, unreadable files, a filtered frame's index)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from covid19_images.manifest.duplicates import assign_dup_groups, find_duplicates, hamming
from covid19_images.manifest.splits import (
    assign_split_groups,
    assign_splits,
    components,
    groups_across_splits,
    split_for,
)
from tests.manifest.test_dedup import flip_bits, frame, random_hash


def hashes(seed: int, *distances: int) -> list[str]:
    """A base hash and one hash ``d`` bits away from it per distance."""
    rng = np.random.default_rng(seed)
    base = random_hash(rng)
    return [base, *(flip_bits(base, d, rng) for d in distances)]


def test_edges_say_why_two_rows_are_one_group() -> None:
    h = hashes(1, 10)
    manifest = frame(
        [
            {"image_id": "a", "sha256": "S", "pixel_sha256": "P", "phash": h[0]},
            {"image_id": "b", "sha256": "S", "pixel_sha256": "P", "phash": h[0]},  # same bytes
            {"image_id": "c", "sha256": "T", "pixel_sha256": "P", "phash": h[0]},  # same pixels
            {"image_id": "d", "sha256": "U", "pixel_sha256": "Q", "phash": h[1]},  # 10 bits away
        ]
    )
    result = find_duplicates(manifest)
    edges = {(e.a, e.b, e.kind, e.distance) for e in result.edges}
    assert {(0, 1, "file", None), (0, 1, "pixels", None), (0, 2, "pixels", None), (0, 3, "near", 10)} <= edges
    assert all(kind in ("file", "pixels", "near") for _, _, kind, _ in edges)
    assert result.groups.tolist() == ["a"] * 4


def test_equal_perceptual_hashes_of_different_files_are_a_near_pair_at_distance_zero() -> None:
    h = hashes(2, 30)
    manifest = frame(
        [
            {"image_id": "a", "sha256": "S", "pixel_sha256": "P", "phash": h[0]},
            {"image_id": "b", "sha256": "T", "pixel_sha256": "Q", "phash": h[0]},  # re-encoded elsewhere
            {"image_id": "c", "sha256": "U", "pixel_sha256": "R", "phash": h[1]},  # 30 bits: only a candidate
        ]
    )
    result = find_duplicates(manifest)
    assert [(e.a, e.b, e.kind, e.distance) for e in result.edges] == [(0, 1, "near", 0)]
    assert [(e.a, e.b, e.kind, e.distance) for e in result.unconfirmed] == [(0, 2, "near", 30)]
    assert result.groups.tolist() == ["a", "a", ""]


def test_rows_without_file_or_pixel_hash_are_not_copies_of_each_other() -> None:
    h = hashes(3, 100, 120, 140)
    manifest = frame(
        [
            {"image_id": "a", "sha256": "", "pixel_sha256": "", "phash": h[0]},
            {"image_id": "b", "sha256": "", "pixel_sha256": "", "phash": h[1]},
            {"image_id": "c", "sha256": "S", "pixel_sha256": "", "phash": h[2]},
            {"image_id": "d", "sha256": "T", "pixel_sha256": "", "phash": h[3]},
        ]
    )
    result = find_duplicates(manifest)
    assert result.edges == [] and result.groups.tolist() == ["", "", "", ""]


def test_an_empty_manifest_has_no_groups() -> None:
    empty = frame([{"image_id": "a", "sha256": "S", "pixel_sha256": "P", "phash": hashes(4)[0]}]).iloc[:0]
    assert assign_dup_groups(empty).tolist() == [] and find_duplicates(empty).edges == []


def test_old_manifest_without_fingerprint_columns_groups_by_bytes() -> None:
    manifest = pd.DataFrame(
        {"image_id": ["x", "y", "z"], "source": "s", "path": ["x", "y", "z"], "sha256": ["S", "S", "T"]}
    )
    assert find_duplicates(manifest).groups.tolist() == ["x", "x", ""]


def test_without_perceptual_hashes_equal_pixels_are_not_trusted() -> None:
    """A manifest with no ``phash`` column cannot tell a blank picture from a real one, so equal
    pixels of different files do not join (equal bytes still do)."""
    manifest = pd.DataFrame(
        {
            "image_id": ["x", "y", "z"],
            "source": "s",
            "path": ["x", "y", "z"],
            "sha256": ["S", "T", "S"],
            "pixel_sha256": ["P", "P", "P"],
        }
    )
    assert find_duplicates(manifest).groups.tolist() == ["x", "", "x"]


def test_no_usable_hash_at_all_still_groups_exact_copies() -> None:
    manifest = frame(
        [
            {"image_id": "x", "sha256": "S", "pixel_sha256": "P", "phash": ""},
            {"image_id": "y", "sha256": "S", "pixel_sha256": "P", "phash": "abc"},  # malformed
            {"image_id": "z", "sha256": "T", "pixel_sha256": "Q", "phash": ""},
        ]
    )
    assert find_duplicates(manifest).groups.tolist() == ["x", "x", ""]


def test_a_blank_picture_does_not_stop_the_pixel_comparison_of_later_rows() -> None:
    h = hashes(2, 100)
    manifest = frame(
        [
            {"image_id": "blank1", "sha256": "B1", "pixel_sha256": "Z", "phash": ""},
            {"image_id": "p", "sha256": "S1", "pixel_sha256": "P", "phash": h[0]},
            {"image_id": "q", "sha256": "S2", "pixel_sha256": "P", "phash": h[1]},
        ]
    )
    assert find_duplicates(manifest).groups.tolist() == ["", "p", "p"]


def test_every_near_pair_is_looked_at_whatever_comes_first() -> None:
    """An exact pair, then an unconfirmable candidate, then a sure near pair: all three are judged."""
    h = hashes(3, 30, 10)
    manifest = frame(
        [
            {"image_id": "a", "sha256": "S", "pixel_sha256": "P", "phash": h[0]},
            {"image_id": "b", "sha256": "S", "pixel_sha256": "P", "phash": h[0]},
            {"image_id": "c", "sha256": "T", "pixel_sha256": "Q", "phash": h[1]},  # 30 bits: candidate
            {"image_id": "d", "sha256": "U", "pixel_sha256": "R", "phash": h[2]},  # 10 bits: sure
        ]
    )
    result = find_duplicates(manifest)
    assert result.groups.tolist() == ["a", "a", "", "a"]
    # c is a candidate of the group {a, b} (a and b share one hash: judged once, through either)
    assert any(e.b == 2 and e.a in (0, 1) for e in result.unconfirmed)


def test_an_unreadable_file_leaves_its_candidate_pair_unconfirmed() -> None:
    h = hashes(4, 30)
    manifest = frame(
        [
            {"image_id": "a", "sha256": "S", "pixel_sha256": "P", "phash": h[0]},
            {"image_id": "b", "sha256": "T", "pixel_sha256": "Q", "phash": h[1]},
        ]
    )
    thumb = np.zeros((64, 64), np.float32)
    for unreadable in (0, 1):
        result = find_duplicates(manifest, thumbnails=lambda p, u=unreadable: None if p == u else thumb)
        assert result.groups.tolist() == ["", ""]
        assert [(e.a, e.b) for e in result.unconfirmed] == [(0, 1)]


def test_given_thumbnails_win_over_reading_the_files_under_root(tmp_path) -> None:
    """A caller's thumbnail source is used even with a ``root`` (whose files do not exist here)."""
    h = hashes(5, 30)
    manifest = frame(
        [
            {"image_id": "a", "sha256": "S", "pixel_sha256": "P", "phash": h[0]},
            {"image_id": "b", "sha256": "T", "pixel_sha256": "Q", "phash": h[1]},
        ]
    )
    thumb = np.zeros((64, 64), np.float32)
    result = find_duplicates(manifest, tmp_path, thumbnails=lambda p: thumb)
    assert result.groups.tolist() == ["a", "a"] and result.unconfirmed == []
    assert find_duplicates(manifest, tmp_path).groups.tolist() == ["", ""]  # unreadable: unconfirmed


def test_a_pair_exactly_at_the_pixel_bound_is_joined() -> None:
    h = hashes(5, 30)
    manifest = frame(
        [
            {"image_id": "a", "sha256": "S", "pixel_sha256": "P", "phash": h[0]},
            {"image_id": "b", "sha256": "T", "pixel_sha256": "Q", "phash": h[1]},
        ]
    )
    rng = np.random.default_rng(0)
    pair = [rng.normal(size=(64, 64)).astype(np.float32) for _ in range(2)]
    mse = float(np.mean((pair[0] - pair[1]) ** 2))
    assert find_duplicates(manifest, thumbnails=lambda p: pair[p], confirm_mse=mse).groups.tolist() == ["a", "a"]
    below = np.nextafter(np.float32(mse), np.float32(0))
    assert find_duplicates(manifest, thumbnails=lambda p: pair[p], confirm_mse=float(below)).groups.tolist() == [
        "",
        "",
    ]


def test_groups_keep_the_index_of_a_filtered_manifest() -> None:
    manifest = frame(
        [
            {"image_id": "a", "sha256": "S", "pixel_sha256": "P", "phash": ""},
            {"image_id": "b", "sha256": "S", "pixel_sha256": "P", "phash": ""},
            {"image_id": "c", "sha256": "T", "pixel_sha256": "Q", "phash": ""},
        ]
    )
    manifest.index = [7, 3, 11]
    groups = assign_dup_groups(manifest)
    assert groups.to_dict() == {7: "a", 3: "a", 11: ""}
    empty = assign_dup_groups(manifest.iloc[:0])
    assert empty.empty and list(empty.index) == []


def test_hamming_refuses_hashes_of_different_lengths() -> None:
    assert hamming("f0", "0f") == 8
    with pytest.raises(ValueError, match=r"hashes of different lengths \(2 and 4 hex digits\)"):
        hamming("ff", "ffff")


# ---------------------------------------------------------------- split groups


def rows(*items: tuple[str, str, str, str]) -> pd.DataFrame:
    """(image_id, source, patient_id, dup_group) rows."""
    return pd.DataFrame(
        [
            {"image_id": i, "source": s, "path": f"datasets/{s}/{i}.png", "patient_id": p, "dup_group": d}
            for i, s, p, d in items
        ]
    )


def test_other_ratios_are_used_for_every_group() -> None:
    now = rows(("a1", "s", "s:a", ""), ("b1", "s", "s:b", ""), ("c1", "s", "s:c", "x"), ("d1", "s", "", "x"))
    assert assign_splits(now.copy(), ratios=(("only", 1.0),))["split"].tolist() == ["only"] * 4
    split = assign_splits(now.copy())
    assert split["split"].tolist() == [split_for(key) for key in split["split_group"]]


def test_rows_without_patient_are_each_their_own_patient() -> None:
    manifest = rows(("a", "s", "", ""), ("b", "s", "", ""), ("c", "s", "s:7", ""))
    assert components(manifest) == ["s:file:datasets/s/a.png", "s:file:datasets/s/b.png", "s:7"]


def test_different_duplicate_groups_stay_different_split_groups() -> None:
    manifest = rows(("a", "s", "s:1", "a"), ("b", "t", "t:1", "a"), ("c", "s", "s:2", "c"), ("d", "t", "t:2", "c"))
    assert components(manifest) == ["s:1", "s:1", "s:2", "s:2"]


def test_long_chains_of_links_end_in_the_smallest_key() -> None:
    """p5-p4 share a copy, p4-p3, ... p1-p0: one group, keyed by p0 whichever way it was built."""
    links = [(f"i{k}", "s", f"p{k}", f"d{k}") for k in range(6)] + [
        (f"j{k}", "s", f"p{k - 1}", f"d{k}") for k in range(6, 0, -1)
    ]
    manifest = rows(*links)
    assert set(components(manifest)) == {"p0"}


def test_previous_keys_win_by_member_count_then_by_name() -> None:
    """Two existing groups merge: the one with more members keeps its key, even if it sorts last."""
    previous = rows(("a1", "s", "s:a", ""), ("b1", "s", "s:b", ""), ("b2", "s", "s:b", ""), ("b3", "s", "s:b", ""))
    previous["split_group"] = ["s:a", "s:b", "s:b", "s:b"]
    now = rows(
        ("a1", "s", "s:a", "x"),
        ("b1", "s", "s:b", "x"),  # a new copy links them
        ("b2", "s", "s:b", ""),
        ("b3", "s", "s:b", ""),
        ("n1", "s", "s:n", ""),  # a new patient: a new group with its own key
    )
    now.index = [4, 9, 2, 5, 1]
    groups = assign_split_groups(now, previous)
    assert groups.to_dict() == {4: "s:b", 9: "s:b", 2: "s:b", 5: "s:b", 1: "s:n"}


def test_equal_previous_groups_merge_into_the_smaller_key_and_empty_keys_do_not_vote() -> None:
    previous = rows(("a1", "s", "s:a", ""), ("z1", "s", "s:z", ""), ("e1", "s", "s:e", ""), ("e2", "s", "s:e", ""))
    previous["split_group"] = ["s:q", "s:c", "", ""]  # e1, e2: rows the old manifest left without a group
    now = rows(("a1", "s", "s:a", "x"), ("z1", "s", "s:z", "x"), ("e1", "s", "s:e", "y"), ("e2", "s", "s:e", "y"))
    # one member each: the smaller previous key wins, whatever row or key sorts first
    assert assign_split_groups(now, previous).tolist() == ["s:c", "s:c", "s:e", "s:e"]


def test_previous_manifest_without_split_groups_is_ignored() -> None:
    previous = rows(("a1", "s", "s:z", ""))  # an old manifest: no split_group column
    now = rows(("a1", "s", "s:a", ""), ("b1", "s", "s:b", ""))
    now.index = [3, 8]
    assert assign_split_groups(now, previous).to_dict() == {3: "s:a", 8: "s:b"}
    assert assign_split_groups(now, None).to_dict() == {3: "s:a", 8: "s:b"}


def test_groups_across_splits_lists_each_straddling_group_once() -> None:
    manifest = pd.DataFrame(
        {
            "split_group": ["g1", "g1", "g2", "g2", "g3"],
            "split": ["train", "test", "val", "", "train"],
        }
    )
    found = groups_across_splits(manifest)
    assert list(found.columns) == ["split_group", "splits"]
    assert found.to_dict("records") == [{"split_group": "g1", "splits": "test,train"}]
    scheme = pd.Series(["train", "train", "val", "test", ""])  # another scheme's assignment
    assert groups_across_splits(manifest, scheme).to_dict("records") == [{"split_group": "g2", "splits": "test,val"}]
