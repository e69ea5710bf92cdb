"""Run in a fresh process: peak memory (RSS high-water mark) a tiny-model render adds, in bytes.

Usage: python -m tests.wan_memory_probe FRAMES SIZE [whole-decode]
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import torch

from tests.tiny_wan import portrait, render, speech, tiny_pipeline


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    frames, size = int(sys.argv[1]), int(sys.argv[2])
    whole_decode = len(sys.argv) > 3
    torch.set_num_threads(1)
    pipeline = tiny_pipeline()
    render(pipeline, num_frames=5, height=size, width=size, image=portrait(size))  # load lazy kernels
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    before = _status_kib("VmRSS")
    common = dict(num_frames=frames, height=size, width=size, image=portrait(size), audio=speech(frames))
    if whole_decode:  # what a pipeline without streaming would do: decode the whole shot at once
        latents = render(pipeline, output_type="latent", window_latent_frames=9, overlap_latent_frames=3, **common)
        from farm.avatar.wan_audio.video_vae import latent_statistics

        mean, inverse_std = latent_statistics(pipeline.vae, latents.device, latents.dtype)
        pipeline.vae.decode(latents / inverse_std + mean)
    else:
        render(pipeline, frame_callback=lambda chunk: None, window_latent_frames=9, overlap_latent_frames=3, **common)
    print((_status_kib("VmHWM") - before) * 1024)


if __name__ == "__main__":
    main()
