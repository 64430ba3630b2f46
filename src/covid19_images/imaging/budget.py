"""How big a file may say it is before we believe it: frames and pixels, checked before allocation.

A header is a claim, not a fact: an 8 KB APNG can claim 2^31 frames, a 360 KB 16-bit PNG
13000 x 13000 pixels (3.4 GB to decode), a 10 KB ``.nii.gz`` a 1 x 1 x 10^7 volume (ten
million CT items). Every decoder path asks :func:`check_frame_pixels` and
:func:`check_frames` with the header's numbers *before* it allocates or loops, and the
loaders ask again for the manifest's frame counts (a manifest can be edited). An
over-budget file is a :class:`OverBudget` (a ``DecodeError``): one problem naming the
file at sync time, a clear error at load time, never a MemoryError or millions of items.

The budgets are far above any real chest image (X-rays are at most ~4300 x 4300, CT
slices 512 x 512 to 1024 x 1024, CT volumes and ultrasound clips hold hundreds to a few
thousand frames) and can be raised for unusual data with environment variables:

* ``COVID19_IMAGES_MAX_FRAME_PIXELS`` (default 2^26 = 67,108,864, e.g. 8192 x 8192);
* ``COVID19_IMAGES_MAX_FRAMES`` (default 20,000 frames, slices or video frames per file).
"""

from __future__ import annotations

import os

#: Pixels of one decoded frame (width x height); above this a file is refused before decoding.
MAX_FRAME_PIXELS = 1 << 26
#: Frames (slices, video frames, animation frames) of one file.
MAX_FRAMES = 20_000
FRAME_PIXELS_ENV = "COVID19_IMAGES_MAX_FRAME_PIXELS"
FRAMES_ENV = "COVID19_IMAGES_MAX_FRAMES"


class OverBudget(ValueError):
    """A file whose header claims more frames or pixels than the budget allows."""


class InvalidSetting(ValueError):
    """An environment variable holds a value the program cannot use; the message names it."""


def _limit(env: str, default: int) -> int:
    """The budget ``$env`` sets, or ``default`` when unset or blank.

    A value that is not a positive whole number is refused outright (:class:`InvalidSetting`):
    read per file, ``abc`` made every image "over budget" and dropped whole sources, and a
    ``0`` quietly meant the default.
    """
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise InvalidSetting(f"${env}={text!r} is not a positive whole number (default {default:,}): fix or unset it")
    return int(text)


def budget_settings() -> dict[str, int]:
    """Every budget in force, checked (:class:`InvalidSetting`): what sync validates before it reads a
    file, and part of every source's cache key (a budget decides which files become rows)."""
    return {"max_frame_pixels": max_frame_pixels(), "max_frames": max_frames()}


def max_frame_pixels() -> int:
    return _limit(FRAME_PIXELS_ENV, MAX_FRAME_PIXELS)


def max_frames() -> int:
    return _limit(FRAMES_ENV, MAX_FRAMES)


def check_frame_pixels(width: int, height: int, what: str) -> None:
    """Refuse a frame of ``width`` x ``height`` over the pixel budget (or with a side below 1)."""
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise OverBudget(f"{what} claims a {width} x {height} frame; not an image")
    limit = max_frame_pixels()
    if width * height > limit:
        raise OverBudget(
            f"{what} claims {width} x {height} = {width * height:,} pixels per frame, over the budget of "
            f"{limit:,} (set ${FRAME_PIXELS_ENV} to allow more); refused before decoding"
        )


def check_frames(frames: int, what: str) -> None:
    """Refuse a frame count over the budget (a header that lies, or a clip too long to sample)."""
    limit = max_frames()
    if int(frames) > limit:
        raise OverBudget(
            f"{what} claims {int(frames):,} frames, over the budget of {limit:,} "
            f"(set ${FRAMES_ENV} to allow more); refused before decoding"
        )
