"""The dynamic weighted sliding window: unlimited shot length at the memory of one window.

The DiT was trained on clips of a fixed length (81 frames = 21 latent frames). A longer shot keeps the
latents of the *whole* shot and, at every denoising step, walks overlapping windows over them: each
window's velocity is predicted on its own, and where two windows overlap their predictions are blended
with weights that rise from 0 (all previous window) to 1 (all new window) along the overlap. Because the
flow-matching Euler step is linear in the prediction, blending predictions then stepping once equals
blending the stepped latents (StableAvatar blends after stepping); with one window nothing is blended, so
the result is exactly the single-pass one.

Weights follow ``log1p(x * (e - 1))`` normalised to [0, 1] ("log"): the new window takes over quickly,
which hides its start, where it is least informed. "linear" is the plain ramp.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

BLEND_SCHEMES = ("log", "linear")


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    """Exclusive."""

    @property
    def length(self) -> int:
        return self.end - self.start


def plan_windows(num_latents: int, window: int, overlap: int) -> list[Window]:
    """Windows of ``window`` latent frames, ``window - overlap`` apart, the last one flush with the end.

    Every window has the same length (one compiled graph, one conditioning tensor); the last one may
    overlap its predecessor by more than ``overlap``. A shot no longer than a window is one window.
    """
    if window < 1 or not 0 <= overlap < window:
        raise ValueError(f"need window >= 1 and 0 <= overlap < window, got window={window} overlap={overlap}")
    if num_latents <= window:
        return [Window(0, num_latents)]
    stride = window - overlap
    starts = list(range(0, num_latents - window, stride))
    starts.append(num_latents - window)
    return [Window(start, start + window) for start in starts]


def seam_frames(windows: list[Window], prefix_frames: int, frames: int) -> list[int]:
    """The shot's video frames at the middle of each overlap between consecutive windows: its seams.

    Latent 0 decodes to frame 0 and latent n >= 1 to frames 4n-3..4n (with ``prefix_frames`` of
    continuation in front, not part of the shot). The lip-sync check measures sync around each.
    """
    seams = []
    for before, after in itertools.pairwise(windows):
        middle = (after.start + before.end) / 2
        frame = max(0, round(4 * middle - 3)) - prefix_frames
        if 0 <= frame < frames:
            seams.append(frame)
    return seams


def blend_weights(length: int, scheme: str = "log") -> torch.Tensor:
    """(length,) weights of the *new* window across an overlap, 0 at its first frame and 1 at its last."""
    if scheme not in BLEND_SCHEMES:
        raise ValueError(f"unknown blend scheme {scheme!r}; use one of {', '.join(BLEND_SCHEMES)}")
    if length == 1:
        return torch.tensor([0.5], dtype=torch.float64)
    ramp = torch.linspace(0.0, 1.0, length, dtype=torch.float64)
    if scheme == "linear":
        return ramp
    curve = torch.log1p(ramp * (math.e - 1.0))
    return (curve - curve.min()) / (curve.max() - curve.min())


class WindowBlender:
    """Accumulates per-window predictions into one full-length prediction, blending the overlaps.

    Windows must arrive in order of their start. Only the full-length output tensor is held, so memory
    is that of the latents, however many windows the shot has.
    """

    def __init__(self, like: torch.Tensor, scheme: str = "log") -> None:
        self.output = torch.zeros_like(like)
        self.scheme = scheme
        self._covered_until = 0

    def add(self, window: Window, prediction: torch.Tensor) -> None:
        """``prediction`` is (B, C, window.length, H, W), frames ``window.start`` .. ``window.end``."""
        overlap = max(0, self._covered_until - window.start)
        if overlap:
            weight = blend_weights(overlap, self.scheme).to(prediction.device, prediction.dtype)
            weight = weight.view(1, 1, overlap, 1, 1)
            previous = self.output[:, :, window.start : window.start + overlap]
            self.output[:, :, window.start : window.start + overlap] = (
                weight * prediction[:, :, :overlap] + (1 - weight) * previous
            )
        self.output[:, :, window.start + overlap : window.end] = prediction[:, :, overlap:]
        self._covered_until = max(self._covered_until, window.end)
