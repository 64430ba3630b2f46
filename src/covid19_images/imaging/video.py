"""Video frames by seeking: demux once for the frame times, seek to the keyframe, decode forward.

A loader samples every 10th frame of an ultrasound clip. Decoding from the start of the
clip for each sampled frame costs O(n^2) decodes per clip; instead the packet timestamps
(demuxing reads no pixels) give frame k's presentation time, the container seeks to the
keyframe at or before it, and only the frames from that keyframe to k are decoded. The
timestamps of recently used clips are kept (keyed by path, size and mtime).

Frame numbering is presentation order over the packets that carry data, the same count
``count_frames`` reports; container metadata is not trusted (MPEG program streams say 0).
Frame size and frame count are checked against :mod:`covid19_images.imaging.budget`
before anything is decoded.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from covid19_images.imaging.budget import check_frame_pixels, check_frames, max_frames


@lru_cache(maxsize=64)
def _frame_times(path: str, size: int, mtime_ns: int) -> tuple[int | None, ...]:
    """Presentation timestamps of every video packet with data, sorted (None entries: unknown pts)."""
    import av

    times: list[int | None] = []
    limit = max_frames()
    with av.open(path) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size:
                times.append(packet.pts)
                if len(times) > limit:
                    break
    if any(t is None for t in times):
        return tuple(times)
    return tuple(sorted(times))  # type: ignore[arg-type]


def frame_times(path: Path) -> tuple[int | None, ...]:
    info = os.stat(path)
    return _frame_times(os.fspath(path), info.st_size, info.st_mtime_ns)


def read_video_frame(path: Path, frame: int) -> tuple[np.ndarray, int]:
    """``(rgb pixels of frame index `frame`, frame count)``; raises ValueError/IndexError/av errors."""
    import av

    if frame < 0:
        raise IndexError(f"video frame {frame} does not exist")
    times = frame_times(path)
    check_frames(len(times), "video")
    if frame >= len(times):
        raise IndexError(f"video has {len(times)} frame(s); frame {frame} does not exist")
    with av.open(os.fspath(path)) as container:
        if not container.streams.video:
            raise ValueError("container has no video stream")
        stream = container.streams.video[0]
        check_frame_pixels(stream.codec_context.width, stream.codec_context.height, "video")
        target = times[frame]
        if target is not None and frame > 0:
            container.seek(target, stream=stream, backward=True, any_frame=False)
            for picture in container.decode(stream):
                if picture.pts is not None and picture.pts >= target:
                    if picture.pts == target:
                        return picture.to_ndarray(format="rgb24"), len(times)
                    break  # the decoder's timestamps differ from the packets': count from the start instead
            container.seek(0, stream=stream, backward=True, any_frame=False)
        decoded = 0  # no timestamps, the first frame, or a seek that did not land: decode from the start
        for picture in container.decode(stream):
            if decoded == frame:
                return picture.to_ndarray(format="rgb24"), len(times)
            decoded += 1
    raise IndexError(f"video has {decoded} decodable frame(s); frame {frame} does not exist")
