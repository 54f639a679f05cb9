"""A video file as the virtual camera's scenes: its frames, sampled to at most MAX_FRAMES, each held for the time
it covers in the video (PyAV decodes; any container and codec FFmpeg reads)."""
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
MAX_FRAMES = 300          # decoded frames kept in memory (320x240-ish RGB each after the camera's scaling)
MAX_SIDE = 640            # frames are shrunk to this before they are kept: the camera takes 320x240 of them


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def frames(path):
    """([(name, RGB array)], hold_ms per frame). ValueError naming the file when it holds no decodable video."""
    import av
    path = Path(path)
    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise ValueError("%s: no video stream in it" % path)
            stream = box.streams.video[0]
            rate = float(stream.average_rate or 25)
            total = stream.frames or 0
            step = max(1, -(-total // MAX_FRAMES)) if total else 1
            out = []
            for i, fr in enumerate(box.decode(stream)):
                if i % step:
                    continue
                img = fr.to_image()
                img.thumbnail((MAX_SIDE, MAX_SIDE))
                out.append(("%s#%d" % (path.name, i), np.asarray(img.convert("RGB"))))
                if len(out) >= MAX_FRAMES:
                    break
    except av.error.FFmpegError as e:
        raise ValueError("%s: not a video FFmpeg reads (%s)" % (path, e)) from None
    if not out:
        raise ValueError("%s: no frames in its video stream" % path)
    return out, 1000.0 * step / rate
