"""Where the ffmpeg binary comes from.

imageio-ffmpeg ships a static ffmpeg with libx264 and AAC inside its wheel, so a fresh machine needs no
system package. ``FARM_FFMPEG`` points at another build (a studio's own, with NVENC say).
"""

from __future__ import annotations

import os
import shutil
from functools import cache


@cache
def ffmpeg_executable() -> str:
    configured = os.environ.get("FARM_FFMPEG")
    if configured:
        return shutil.which(configured) or configured
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
