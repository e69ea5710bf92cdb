"""Tiny WanAudioPipeline fixtures: real component classes, random weights, a 32x32 portrait, noise speech."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from farm.avatar.wan_audio.pipeline_wan_audio import WanAudioPipeline
from farm.avatar.wan_audio.tiny import build_tiny_pipeline
from farm.catalog import ModelManifest, load_manifest

SIZE = 32
FPS = 25

# Tiny tensors gain nothing from a second thread, and on a shared 2-core box OpenMP threads that spin
# while descheduled make every op several times slower.
torch.set_num_threads(1)


def tiny_pipeline(seed: int = 0) -> WanAudioPipeline:
    pipeline = build_tiny_pipeline(seed)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def portrait(size: int = SIZE, seed: int = 0) -> np.ndarray:
    """A textured disc on a gradient: enough structure for the VAE and CLIP to see something."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.stack([xx * 255 // size, yy * 255 // size, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    disc = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size / 3) ** 2
    noise = np.random.default_rng(seed).integers(0, 60, (size, size, 3))
    image[disc] = (200 + noise[disc] // 2).astype(np.uint8)
    return image


def speech(frames: int, seed: int = 0, fps: int = FPS) -> np.ndarray:
    """``frames / fps`` seconds of 16 kHz noise shaped by a syllable-rate envelope."""
    samples = frames * 16000 // fps
    rng = np.random.default_rng(seed)
    envelope = 0.5 + 0.5 * np.sin(np.linspace(0, 2 * np.pi * 4 * samples / 16000, samples) + rng.uniform(0, 6))
    return (0.3 * envelope * rng.standard_normal(samples)).astype(np.float32)


def render(pipeline: WanAudioPipeline, **overrides: Any) -> np.ndarray:
    """Frames (or latents with output_type="latent") of a small default shot, with ``overrides``."""
    frames = overrides.pop("num_frames", 9)
    arguments: dict[str, Any] = dict(
        image=portrait(),
        audio=speech(frames),
        prompt="a man speaks calmly in an office",
        negative_prompt="blurry low quality",
        height=SIZE,
        width=SIZE,
        num_frames=frames,
        fps=FPS,
        num_inference_steps=2,
        text_guidance_scale=3.0,
        audio_guidance_scale=4.0,
        generator=torch.Generator().manual_seed(overrides.pop("seed", 0)),
    )
    arguments.update(overrides)
    return pipeline(**arguments).frames


def saved_tiny_model(directory: Path, seed: int = 0) -> Path:
    tiny_pipeline(seed).save_pretrained(directory)
    return directory


def tiny_manifest(directory: Path, weights: Path, render_params: str = "", low_memory: str = "") -> ModelManifest:
    """A wan_audio manifest file written to ``directory`` that points at ``weights``."""
    text = (
        "name: tiny-avatar\nadapter: wan_audio\nquality: final\n"
        f"weights: {weights}\n"
        "resources: {gpus: 0, cpus: 1}\n"
        "defaults: {steps: 2, text_guidance: 3.0, audio_guidance: 4.0}\n"
        "size_multiple: 16\ncontinuation_frames: 5\n"
        f"render: {{{render_params}}}\nlow_memory: {{{low_memory}}}\n"
    )
    path = directory / "tiny-avatar.yaml"
    path.write_text(text)
    return load_manifest(path)
