"""The POCUS ultrasound miniature: pictures, clips and animated GIFs with per-file licences.

Used by ``build_miniatures.py``. Real (first frames, downscaled) where the ``License`` column of
``dataset_metadata.csv`` allows redistribution with attribution, synthetic otherwise.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from miniature_folder import ATTRIBUTION, Miniature, allowed, fresh
from miniature_media import (
    encode,
    encode_gif,
    encode_video,
    read_frames,
    seed_of,
    synthetic_frames,
    synthetic_grey,
    to_mode,
)

# --- ultrasound ------------------------------------------------------------------------------

POCUS_KEEP = (
    "data/pocus_images/convex/Cov_Oliviera_2020_Fig4A.jpg",
    "data/pocus_images/convex/Cov_Oliviera_2020_Fig5A.jpg",
    "data/pocus_images/linear/Cov_unsmoothpleuralline_prelim_study_SSRN_paper6.png",
    "data/pocus_images/convex/Pneu_Avi_Small-effusion-pleural-line.jpg",
    "data/pocus_images/convex/Pneu_northumbria_0409_set4_img2.jpg",
    "data/pocus_images/convex/Reg_Avi_Image001.jpg",
    "data/pocus_images/convex/Reg_Avi_Image005.jpg",
    "data/pocus_images/convex/Reg_Avi_pleural-line-normal.JPG",
)

#: Files upstream holds (``InThisRepo`` Yes in the real metadata) that the sample lacks, as synthetic
#: stand-ins, so the demo's ultrasound has a validation and a test split: their patients (``Patient
#: ID / Name`` 35, 186 and 183; 151 and 209) hash to val and test. Licences CC BY-NC 4.0: synthetic.
#: The clip containers are assumed from the sample's files of the same series.
POCUS_STAND_INS = (
    "data/pocus_videos/convex/Cov-Atlas-Day+1.gif",
    "data/pocus_videos/convex/Pneu_northumbria_0409_set2_vid1.avi",
    "data/pocus_videos/convex/Reg_Avi_Video_004.mp4",
    "data/pocus_images/convex/Pneu_Avi_consolidated-lung.jpg",
    "data/pocus_videos/convex/Reg_northumbria_0409_set5_vid2.avi",
)


def _stand_in(mini: Miniature, relative: str, licence: str) -> None:
    """A synthetic file for one the sample lacks: a picture, an animated GIF or a 12-frame clip."""
    suffix = Path(relative).suffix.lower()
    if suffix == ".jpg":
        seed = seed_of(relative)
        mini.write(relative, encode(to_mode(synthetic_grey("us", 160, 120, seed), "RGB", seed), "JPEG"))
    elif suffix == ".gif":
        mini.write(relative, encode_gif(synthetic_frames(relative, (96, 96), 8)))
    else:
        mini.write(relative, encode_video(synthetic_frames(relative, (112, 112), 12), suffix))
    mini.note(relative, f"licence {licence or 'None'!r}; not in the sample: a stand-in for the demo's val/test splits")


def _pocus_key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", Path(name).stem.strip().lower())


def build_pocus(shared: Path) -> None:
    fresh("pocus_ultrasound")
    sample = shared / "jannisborn-covid19_ultrasound"
    mini = Miniature("pocus_ultrasound", sample)
    for text in ("README.md", "data/README.md", "data/data_from_butterfly.json"):
        mini.copy(text)
    with open(sample / "data/dataset_metadata.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_key = {_pocus_key(r["Filename"]): r for r in rows if r["Filename"].strip()}
    videos = sorted(p.relative_to(sample).as_posix() for p in (sample / "data/pocus_videos").rglob("*") if p.is_file())
    for relative in (*POCUS_KEEP, *videos):
        row = by_key.get(_pocus_key(relative), {})
        licence = row.get("License", "").strip()
        title = row.get("Title") or row.get("URL (Video Name)") or "POCUS dataset"
        credit = f"{title}; Born et al., Applied Sciences 11(2) 672 (2021)"
        real = allowed(licence) and "emergency" not in licence.lower()
        suffix = Path(relative).suffix.lower()
        if suffix in (".jpg", ".png"):
            if real:
                mini.real(relative, licence, credit)
            else:
                mini.fake(relative, "us", f"licence {licence or 'None'!r} (per-file License column)")
            continue
        if suffix == ".gif":
            frames = synthetic_frames(relative, (96, 96), 8)
            mini.write(relative, encode_gif(frames))
            mini.note(relative, f"licence {licence!r}; 8-frame animated GIF")
            continue
        if real:
            frames = read_frames(sample / relative, 12, 128)
            ATTRIBUTION.append((mini.source, relative, licence, credit + " (first 12 frames, downscaled)"))
        else:
            frames = synthetic_frames(relative, (112, 112), 12)
            mini.note(relative, f"licence {licence or 'None'!r}; 12-frame clip")
        mini.write(relative, encode_video(frames, suffix))
    for relative in POCUS_STAND_INS:
        _stand_in(mini, relative, by_key.get(_pocus_key(relative), {}).get("License", "").strip())
    held = {_pocus_key(r) for r in (*POCUS_KEEP, *videos, *POCUS_STAND_INS)}
    counts = {"No": 0, "Np": 0, "Yes": 0, "other": 0}

    def keep(_index: int, row: dict[str, str]) -> bool:
        if _pocus_key(row.get("Filename", "")) in held:
            return True
        bucket = row.get("InThisRepo", "") if row.get("InThisRepo", "") in counts else "other"
        counts[bucket] += 1
        return counts[bucket] <= 3  # rows for files not held: InThisRepo No / Np / Yes (absent here)

    mini.trim_csv("data/dataset_metadata.csv", keep)
    mini.finish()
