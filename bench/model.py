"""Benchmark the wan_audio pipeline: seconds per denoising step, frames per second, memory, speed levers.

    python bench/model.py                      # CPU: the tiny model at a reduced size (pixels are noise)
    python bench/model.py --config full        # CUDA: the full 1.3B Wan2.1 architecture, random weights

Random weights make the pixels noise but not the timing: every matmul, attention and convolution of the
real architecture runs. All numbers in a table are measured side by side in one run, on one machine.

Columns: ``recipe`` is the steps and guidance passes per step the row renders a shot with (the full recipe:
``--full-steps`` steps of 3-way guidance; the distilled one: ``--distilled-steps`` guidance-free, one pass);
``s/step`` is one denoising step of one window (all its guidance passes); ``s/frame`` is seconds per output
frame end to end for a shot at the row's recipe (encoders, conditions and VAE decoding included: the measured
per-shot time outside the steps plus the recipe's steps at the measured s/step); the ratios are against the
baseline row; ``fps@N`` is video frames per second of wall time measured for a whole shot with N steps;
``x realtime`` is 25 fps over the recipe's s/frame (>1: faster than real time).

Rows: baseline (float32 on the CPU, bfloat16 on CUDA), bfloat16 (CPU), float8 weights (stored in
float8_e4m3fn, upcast per layer: diffusers' layerwise casting), regional torch.compile (``--compile``), the
FirstBlockCache step cache, the distilled 4-step guidance-free recipe (a fused LoRA costs nothing per step, so
its speed is the recipe's), then the memory levers. On the CPU the tiny config runs in about a minute, and
the ratios between rows are what CI can check without a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm.avatar.wan_audio.loading import enable_float8_weights
from farm.avatar.wan_audio.pipeline_wan_audio import WanAudioPipeline
from farm.avatar.wan_audio.tiny import tiny_components

VIDEO_FPS = 25
FULL_PASSES = 3
"""Guidance passes per step of the full recipe (nothing / audio / audio + text: StableAvatar's 3-way CFG)."""
GUIDANCE_FREE = {"text_guidance_scale": 1.0, "audio_guidance_scale": 1.0}

FULL_TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=12,
    attention_head_dim=128,
    in_channels=36,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=8960,
    num_layers=30,
    image_dim=1280,
    audio_dim=768,
    audio_adapter_layers=2,
    audio_adapter_heads=8,
)


@contextlib.contextmanager
def default_device_and_dtype(device: str, dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def full_components(device: str) -> dict[str, object]:
    """Wan2.1 1.3B I2V + UMT5-XXL + CLIP ViT-H/14 + wav2vec2-base, randomly initialised on ``device``."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        UMT5Config,
        UMT5EncoderModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
    )

    from farm.avatar.wan_audio.transformer_wan_audio import WanAudioTransformer3DModel

    tokenizer = tiny_components()["tokenizer"]  # token ids only index the embedding; any vocabulary will do
    with default_device_and_dtype(device, torch.bfloat16):
        transformer = WanAudioTransformer3DModel(**FULL_TRANSFORMER).eval()
        text_encoder = UMT5EncoderModel(
            UMT5Config(
                vocab_size=256384,
                d_model=4096,
                d_kv=64,
                d_ff=10240,
                num_layers=24,
                num_heads=64,
                relative_attention_num_buckets=32,
                feed_forward_proj="gated-gelu",
            )
        ).eval()
    with default_device_and_dtype(device, torch.float32):
        vae = AutoencoderKLWan().eval()
        image_encoder = CLIPVisionModel(
            CLIPVisionConfig(
                hidden_size=1280,
                intermediate_size=5120,
                num_hidden_layers=32,
                num_attention_heads=16,
                image_size=224,
                patch_size=14,
                hidden_act="gelu",
            )
        ).eval()
        audio_encoder = Wav2Vec2Model(Wav2Vec2Config()).eval()
    return dict(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        image_processor=CLIPImageProcessor(),
        image_encoder=image_encoder,
        feature_extractor=Wav2Vec2FeatureExtractor(),
        audio_encoder=audio_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
    )


@dataclass
class Measurement:
    setting: str
    seconds_per_step: float
    frames_per_second: dict[int, float]
    other_seconds: float
    """Per shot, outside the denoising steps: text/image/audio encoding, conditions, VAE decoding."""
    peak_memory_gb: float | None
    note: str = ""
    recipe_steps: int = 40
    passes: int = FULL_PASSES
    frames: int = 1

    @property
    def seconds_per_frame(self) -> float:
        """End to end per output frame at the row's recipe: the time outside the steps plus its steps."""
        return (self.other_seconds + self.recipe_steps * self.seconds_per_step) / self.frames

    def realtime(self) -> float:
        return 1.0 / (self.seconds_per_frame * VIDEO_FPS)


class Bench:
    def __init__(self, pipeline: WanAudioPipeline, device: str, height: int, width: int, frames: int) -> None:
        self.pipeline, self.device = pipeline, device
        self.height, self.width, self.frames = height, width, frames
        rng = np.random.default_rng(0)
        self.image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        self.audio = (0.1 * rng.standard_normal(frames * 16000 // VIDEO_FPS)).astype(np.float32)

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def render(self, steps: int, **options: object) -> tuple[float, list[float]]:
        """Wall seconds for a whole shot and the duration of each denoising step."""
        stamps: list[float] = []

        def on_step(done: int, total: int) -> None:
            self._sync()
            stamps.append(time.perf_counter())

        self._sync()
        started = time.perf_counter()
        self.pipeline(
            image=self.image,
            audio=self.audio,
            prompt="a man speaks calmly in an office",
            negative_prompt="blurry low quality",
            height=self.height,
            width=self.width,
            num_frames=self.frames,
            num_inference_steps=steps,
            generator=torch.Generator().manual_seed(0),
            frame_callback=lambda chunk: None,
            step_callback=on_step,
            **options,  # type: ignore[arg-type]
        )
        self._sync()
        finished = time.perf_counter()
        steps_s = [b - a for a, b in zip([started, *stamps], stamps, strict=False)][1:]  # drop the first (setup)
        return finished - started, steps_s

    def measure(
        self,
        setting: str,
        step_counts: list[int],
        note: str = "",
        repeats: int = 2,
        recipe_steps: int = 40,
        **options: object,
    ) -> Measurement:
        """Best of ``repeats`` per step count: on a shared machine the minimum is the least disturbed run."""
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        self.render(2, **options)  # warm-up: kernels, allocator, compilation
        per_step: list[float] = []
        rates: dict[int, float] = {}
        totals: list[tuple[int, float]] = []
        for steps in step_counts:
            runs = [self.render(steps, **options) for _ in range(repeats)]
            total = min(run[0] for run in runs)
            per_step.extend(min(run[1]) for run in runs if run[1])
            rates[steps] = self.frames / total
            totals.append((steps, total))
        step_s = float(np.min(per_step))
        other = float(np.median([total - steps * step_s for steps, total in totals]))
        peak = torch.cuda.max_memory_allocated() / 2**30 if self.device.startswith("cuda") else None
        passes = 1 if options.get("text_guidance_scale") == options.get("audio_guidance_scale") == 1.0 else FULL_PASSES
        return Measurement(setting, step_s, rates, other, peak, note, recipe_steps, passes, self.frames)


Lever = tuple[str, Callable[[WanAudioPipeline], dict[str, object]], Callable[[WanAudioPipeline], None], str]


def levers(device: str, with_compile: bool) -> list[Lever]:
    """(name, switch on -> extra call options, switch off, note), measured in this order."""
    from diffusers.hooks import FirstBlockCacheConfig

    def nothing(pipeline: WanAudioPipeline) -> None:
        return None

    def cache_on(pipeline: WanAudioPipeline) -> dict[str, object]:
        pipeline.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.05))
        return {}

    def tiling_on(pipeline: WanAudioPipeline) -> dict[str, object]:
        pipeline.vae.enable_tiling(
            tile_sample_min_height=128,
            tile_sample_min_width=128,
            tile_sample_stride_height=96,
            tile_sample_stride_width=96,
        )
        return {}

    def offload_on(pipeline: WanAudioPipeline) -> dict[str, object]:
        pipeline.enable_component_offload(device)
        return {}

    def offload_off(pipeline: WanAudioPipeline) -> None:
        pipeline._offload_device = None
        pipeline.to(device)

    kept: list[torch.nn.Module] = []

    def float8_on(pipeline: WanAudioPipeline) -> dict[str, object]:
        """On a copy of the DiT: layerwise casting cannot be undone (diffusers refuses to)."""
        kept.append(pipeline.transformer)
        stored = copy.deepcopy(pipeline.transformer)
        enable_float8_weights(stored, stored.dtype)
        pipeline.transformer = stored
        return {}

    def float8_off(pipeline: WanAudioPipeline) -> None:
        pipeline.transformer = kept.pop()
        gc.collect()

    chosen: list[Lever] = [
        ("float8 weights (layerwise casting)", float8_on, float8_off, "half bf16's weight memory"),
        (
            "FirstBlockCache 0.05",
            cache_on,
            lambda p: p.transformer.disable_cache(),
            "random weights: hit rate not representative",
        ),
        ("guidance passes one by one", lambda p: {"guidance_batch": False}, nothing, "low_memory setting"),
        ("VAE tiling", tiling_on, lambda p: p.vae.disable_tiling(), ""),
        ("component offload", offload_on, offload_off, "low_memory setting"),
    ]
    if device.startswith("cuda"):

        def flash(pipeline: WanAudioPipeline) -> dict[str, object]:
            pipeline.transformer.set_attention_backend("_native_flash")
            return {}

        chosen.append(("attention: SDPA flash", flash, lambda p: p.transformer.set_attention_backend("native"), ""))
    if with_compile:

        def compiled(pipeline: WanAudioPipeline) -> dict[str, object]:
            pipeline.transformer.compile_repeated_blocks(fullgraph=True)
            return {}

        chosen.append(("regional torch.compile", compiled, nothing, "stays on for later rows"))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=["small", "full"], default=None, help="default: full on CUDA, else small")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--height", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--frames", type=int, help="default 81 (one full window); 33 for the small config")
    parser.add_argument("--steps", default=None, help="step counts for the fps columns (default 4,8,30; CPU 3)")
    parser.add_argument("--full-steps", type=int, default=40, help="steps of the full recipe (the manifest's 40)")
    parser.add_argument("--distilled-steps", type=int, default=4, help="steps of the distilled recipe")
    parser.add_argument("--no-levers", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also measure regional torch.compile (slow to build)")
    parser.add_argument("--repeats", type=int, default=2, help="renders per step count; the fastest counts")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1 is steadiest on a shared box)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    config = args.config or ("full" if args.device.startswith("cuda") else "small")
    if not args.device.startswith("cuda"):
        torch.set_num_threads(args.threads)
    height = args.height or (480 if config == "full" else 128)
    width = args.width or (832 if config == "full" else 224)
    frames = args.frames or (81 if config == "full" else 33)
    step_counts = [int(s) for s in (args.steps or ("4,8,30" if args.device.startswith("cuda") else "3")).split(",")]
    built = time.perf_counter()
    components = full_components(args.device) if config == "full" else tiny_components()
    pipeline = WanAudioPipeline(**components).to(args.device)
    pipeline.set_progress_bar_config(disable=True)
    build_s = time.perf_counter() - built
    bench = Bench(pipeline, args.device, height, width, frames)

    full, distilled = args.full_steps, args.distilled_steps
    rows = [bench.measure("baseline", step_counts, repeats=args.repeats, recipe_steps=full)]
    if args.device == "cpu":
        pipeline.transformer.to(torch.bfloat16)
        rows.append(bench.measure("DiT in bfloat16", step_counts, "CPU bf16 matmuls are slow", args.repeats, full))
        pipeline.transformer.to(torch.float32)
    rows.append(
        bench.measure(
            f"distilled {distilled}-step", step_counts, "guidance-free; a fused LoRA costs nothing per step",
            args.repeats, distilled, **GUIDANCE_FREE,
        )
    )  # fmt: skip
    if not args.no_levers:
        for name, switch_on, switch_off, note in levers(args.device, args.compile):
            options = switch_on(pipeline)
            rows.append(bench.measure(name, step_counts, note, args.repeats, full, **options))
            switch_off(pipeline)

    device_name = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
    )
    parameters = sum(p.numel() for p in pipeline.transformer.parameters())
    header = (
        f"wan_audio bench: {config} config ({parameters:,} DiT parameters, random weights) on {device_name}; "
        f"{width}x{height}, {frames} frames (one window), build {build_s:.1f}s"
    )
    if args.json:
        records = [{**asdict(r), "seconds_per_frame": r.seconds_per_frame} for r in rows]
        print(json.dumps({"header": header, "rows": records}, indent=2))
        return
    print(header)
    columns = ["setting", "recipe", "s/step", "other s", "s/frame", *[f"fps@{s}" for s in step_counts]]
    print(" | ".join([*columns, "x realtime", "peak GB", "note"]))
    baseline = rows[0]
    for row in rows:
        fps = [f"{row.frames_per_second[s]:.2f}" for s in step_counts]
        step_ratio = baseline.seconds_per_step / row.seconds_per_step
        frame_ratio = baseline.seconds_per_frame / row.seconds_per_frame
        print(
            " | ".join(
                [
                    row.setting,
                    f"{row.recipe_steps} x {row.passes} pass{'es' if row.passes > 1 else ''}",
                    f"{row.seconds_per_step:.4f} ({step_ratio:.2f}x)",
                    f"{row.other_seconds:.2f}",
                    f"{row.seconds_per_frame:.4f} ({frame_ratio:.2f}x)",
                    *fps,
                    f"{row.realtime():.3f}",
                    f"{row.peak_memory_gb:.1f}" if row.peak_memory_gb is not None else "-",
                    row.note,
                ]
            )
        )


if __name__ == "__main__":
    main()
