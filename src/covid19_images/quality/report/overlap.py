"""Overlap between every pair of sources: shared pictures and shared patients.

Combining sets is where COVID imaging models leaked: SIIM re-annotated RICORD and BIMCV
pictures, RSNA re-encoded NIH's, COVIDx and COVID-QU-Ex re-distribute half the field. Two rows
show the same *picture* when they share a duplicate group (content, perceptual or a published
identity); they belong to the same *patient group* when they share a split group (the connected
component of same patient and same picture, which is what keeps a person on one side of a
split). For every pair of sources this counts the groups both hold and how many of each side's
images and patients those groups contain. The cost follows the groups that span sources, not
the collection: single-source groups are dropped before any pair is formed.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Any

import pandas as pd


def _shared(manifest: pd.DataFrame, group: str) -> tuple[Counter, Counter, Counter]:
    """(groups per pair, images per (pair, side), patients per (pair, side)) over groups spanning sources."""
    rows = manifest[manifest[group].astype(str) != ""][[group, "source", "patient_id", "path"]]
    spanning = rows.groupby(group)["source"].nunique()
    rows = rows[rows[group].isin(spanning[spanning > 1].index)]
    groups: Counter = Counter()
    images: Counter = Counter()
    patients: Counter = Counter()
    for _key, members in rows.groupby(group, sort=False):
        per_source = members.groupby("source")
        counts = per_source.size().to_dict()
        people = {s: set(f["patient_id"].where(f["patient_id"] != "", "file:" + f["path"])) for s, f in per_source}
        for a, b in combinations(sorted(counts), 2):
            groups[(a, b)] += 1
            images[(a, b, a)] += counts[a]
            images[(a, b, b)] += counts[b]
            patients[(a, b, a)] += len(people[a])
            patients[(a, b, b)] += len(people[b])
    return groups, images, patients


def source_overlap(manifest: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per unordered pair of the manifest's sources (in name order), zeros included."""
    sources = sorted(manifest["source"].astype(str).unique())
    pictures, picture_images, _ = _shared(manifest, "dup_group")
    people, people_images, people_patients = _shared(manifest, "split_group")
    records = []
    for a, b in combinations(sources, 2):
        records.append(
            {
                "source_a": a,
                "source_b": b,
                "shared_pictures": pictures[(a, b)],
                "picture_images_a": picture_images[(a, b, a)],
                "picture_images_b": picture_images[(a, b, b)],
                "shared_patient_groups": people[(a, b)],
                "patients_a": people_patients[(a, b, a)],
                "patients_b": people_patients[(a, b, b)],
                "patient_images_a": people_images[(a, b, a)],
                "patient_images_b": people_images[(a, b, b)],
            }
        )
    return records
