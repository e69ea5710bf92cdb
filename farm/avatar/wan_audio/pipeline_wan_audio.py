"""WanAudioPipeline: reference portrait + speech (+ prompt, camera move, previous shot) -> talking video.

The StableAvatar recipe on diffusers parts: a Wan2.1 image-to-video DiT (``WanAudioTransformer3DModel``)
hears wav2vec2 features through a timestep-aware audio adapter; guidance is three-way (nothing / audio /
audio + text); a shot of any length is denoised as overlapping windows blended at every step; the VAE
decodes in a stream so frames leave the pipeline as soon as they exist.

Frame layout. The causal VAE turns n + 1 latent frames into 4n + 1 video frames. A request for ``F``
frames renders ``P + F`` frames rounded *up* to 4n + 1, where ``P`` are the previous shot's last frames
when continuing (re-encoded and held fixed at every step, then dropped); the extra frames at the end are
rendered with the last audio feature held and are trimmed, so exactly ``F`` frames come out.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKLWan, DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.loaders import WanLoraLoaderMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from transformers import (
    CLIPImageProcessor,
    CLIPVisionModel,
    PreTrainedTokenizerBase,
    UMT5EncoderModel,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
)

from farm.avatar.wan_audio.audio_encoding import encode_speech, latent_frames_for, shot_audio_windows
from farm.avatar.wan_audio.sliding_window import WindowBlender, plan_windows
from farm.avatar.wan_audio.transformer_wan_audio import WanAudioTransformer3DModel
from farm.avatar.wan_audio.video_vae import decode_latents, encode_video, pixel_chunks

FrameCallback = Callable[[np.ndarray], None]
StepCallback = Callable[[int, int], None]
SpeakerRegion = tuple[float, float, float, float]
"""(left, top, right, bottom) of one speaker's part of the frame, in fractions of its width and height."""


@dataclass
class WanAudioPipelineOutput(BaseOutput):
    frames: np.ndarray | torch.Tensor | None
    """(F, H, W, 3) uint8 for ``output_type="np"`` (None when frames went to ``frame_callback``),
    or the final normalised latents for ``output_type="latent"``."""


@dataclass(frozen=True)
class GuidanceBranch:
    """One forward pass of the guidance batch: which prompt it reads and whether it hears the audio."""

    positive_text: bool
    hears_audio: bool


UNCONDITIONAL = GuidanceBranch(positive_text=False, hears_audio=False)
AUDIO_ONLY = GuidanceBranch(positive_text=False, hears_audio=True)
FULL = GuidanceBranch(positive_text=True, hears_audio=True)


@dataclass(frozen=True)
class GuidanceInputs:
    """What every window's guided prediction reads that stays the same for the whole shot."""

    text_states: Mapping[bool, torch.Tensor]
    """UMT5 states by ``GuidanceBranch.positive_text``: the prompt (True) and the negative prompt (False)."""
    image_states: torch.Tensor
    """CLIP vision states of the portrait."""
    branches: tuple[GuidanceBranch, ...]
    """The passes to run, from ``guidance_branches``."""
    text_scale: float
    audio_scale: float
    batch_branches: bool
    """Run the passes as one batch (fast) or one at a time (less memory)."""


def guidance_branches(text_scale: float, audio_scale: float) -> tuple[GuidanceBranch, ...]:
    """The passes that ``combine_guidance`` needs; scales of 1 drop the passes they would subtract."""
    if audio_scale != 1.0:
        return (UNCONDITIONAL, AUDIO_ONLY, FULL)
    if text_scale != 1.0:
        return (AUDIO_ONLY, FULL)
    return (FULL,)


def combine_guidance(predictions: list[torch.Tensor], text_scale: float, audio_scale: float) -> torch.Tensor:
    """uncond + a * (audio - uncond) + t * (full - audio): audio and text pull separately (StableAvatar)."""
    if len(predictions) == 3:
        uncond, audio, full = predictions
        return uncond + audio_scale * (audio - uncond) + text_scale * (full - audio)
    if len(predictions) == 2:
        audio, full = predictions
        return audio + text_scale * (full - audio)
    return predictions[0]


def _audio_rows(audio_windows: torch.Tensor, rows: int) -> torch.Tensor:
    """The transformer's ``audio_embeds`` for ``rows`` guidance passes: (rows, F, N, D) for one speaker's
    (F, N, D) windows, (rows, S, F, N, D) for several speakers' (S, F, N, D)."""
    return audio_windows[None].expand(rows, *audio_windows.shape)


# Adapted from diffusers.pipelines.wan.pipeline_wan_i2v.prompt_clean
# Differs: its basic_clean and whitespace_clean folded in.
def prompt_clean(text: str) -> str:
    """Wan's prompt normalisation: fix mojibake, unescape HTML, collapse whitespace."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip()


def fit_image(image: PIL.Image.Image | np.ndarray, width: int, height: int) -> PIL.Image.Image:
    """The largest centred ``width`` x ``height``-shaped crop of ``image``, resized to that size."""
    picture = image if isinstance(image, PIL.Image.Image) else PIL.Image.fromarray(np.asarray(image))
    picture = picture.convert("RGB")
    if picture.size == (width, height):
        return picture
    scale = max(width / picture.width, height / picture.height)
    crop_w, crop_h = width / scale, height / scale
    left, top = (picture.width - crop_w) / 2, (picture.height - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    return picture.resize((width, height), PIL.Image.Resampling.LANCZOS, box=box)


def pixels_to_tensor(frame: np.ndarray | PIL.Image.Image) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, 1, H, W) float32 in [-1, 1]."""
    array = np.asarray(frame).astype(np.float32) / 255.0
    return (2.0 * torch.from_numpy(array).permute(2, 0, 1) - 1.0)[None, :, None]


def tensor_to_pixels(video: torch.Tensor) -> np.ndarray:
    """(1, 3, T, H, W) in [-1, 1] -> (T, H, W, 3) uint8."""
    unit = (video[0].float() / 2 + 0.5).clamp(0, 1)
    return (unit * 255).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()


class WanAudioPipeline(DiffusionPipeline, WanLoraLoaderMixin):
    """Audio-driven talking-avatar video with a Wan2.1 I2V DiT (StableAvatar design).

    Components: ``vae`` (AutoencoderKLWan), ``text_encoder`` + ``tokenizer`` (UMT5), ``image_encoder`` +
    ``image_processor`` (CLIP vision), ``audio_encoder`` + ``feature_extractor`` (wav2vec2),
    ``transformer`` (WanAudioTransformer3DModel) and ``scheduler`` (flow matching).

    It follows diffusers' ``WanImageToVideoPipeline`` step by step (the zeroed-audio test renders exactly
    like it); each place adapted from diffusers says so in an ``# Adapted from`` comment, so a fix there
    can be carried over.
    """

    model_cpu_offload_seq = "text_encoder->image_encoder->audio_encoder->transformer->vae"

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_encoder: UMT5EncoderModel,
        image_processor: CLIPImageProcessor,
        image_encoder: CLIPVisionModel,
        feature_extractor: Wav2Vec2FeatureExtractor,
        audio_encoder: Wav2Vec2Model,
        vae: AutoencoderKLWan,
        transformer: WanAudioTransformer3DModel,
        scheduler: FlowMatchEulerDiscreteScheduler,
    ) -> None:
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            image_processor=image_processor,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            audio_encoder=audio_encoder,
            vae=vae,
            transformer=transformer,
            scheduler=scheduler,
        )
        self.vae_scale_factor_temporal = vae.config.scale_factor_temporal
        self.vae_scale_factor_spatial = vae.config.scale_factor_spatial
        self._offload_device: torch.device | None = None

    # ----------------------------------------------------------------------------------- device placement

    def enable_component_offload(self, device: str | torch.device) -> None:
        """Keep every component on the CPU and move each to ``device`` only while it runs.

        diffusers' ``enable_model_cpu_offload`` hooks ``forward``; the streaming VAE code drives the
        encoder and decoder modules directly, so the pipeline moves components itself.
        """
        self._offload_device = torch.device(device)
        self.to("cpu")

    @property
    def device_for_compute(self) -> torch.device:
        return self._offload_device or self._execution_device

    @contextlib.contextmanager
    def _component(self, module: torch.nn.Module) -> Iterator[torch.nn.Module]:
        if self._offload_device is None:
            yield module
            return
        module.to(self._offload_device)
        try:
            yield module
        finally:
            module.to("cpu")
            if self._offload_device.type == "cuda":
                torch.cuda.empty_cache()

    # ----------------------------------------------------------------------------------------- inputs

    # Adapted from diffusers.pipelines.wan.pipeline_wan_i2v.WanImageToVideoPipeline.check_inputs
    # Differs: checks this pipeline's own inputs; the size multiple (VAE x DiT patch) is computed as in its
    # __call__, and a size off it is refused rather than rounded down.
    def check_inputs(
        self,
        audio: np.ndarray | Sequence[np.ndarray],
        height: int,
        width: int,
        num_frames: int,
        fps: float,
        sample_rate: int,
        camera_strength: float,
        continuation_frames: np.ndarray | None,
        speaker_regions: Sequence[SpeakerRegion] | None = None,
    ) -> None:
        multiple = self.vae_scale_factor_spatial * self.transformer.config.patch_size[1]
        if height % multiple or width % multiple:
            raise ValueError(f"height and width must be multiples of {multiple}, got {width}x{height}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {num_frames}")
        if fps <= 0 or sample_rate <= 0:
            raise ValueError(f"fps and sample_rate must be positive, got fps={fps} sample_rate={sample_rate}")
        voices = [audio] if speaker_regions is None else list(audio)
        if speaker_regions is not None and len(voices) != len(speaker_regions):
            raise ValueError(f"{len(voices)} speakers' audio but {len(speaker_regions)} speaker regions")
        if any(np.asarray(voice).ndim != 1 for voice in voices):
            raise ValueError("audio must be mono: a 1-D array of samples (one per speaker)")
        for region in speaker_regions or ():
            left, top, right, bottom = region
            if not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
                raise ValueError(f"a speaker region must be (left, top, right, bottom) within [0, 1], got {region}")
        if not 0.0 <= camera_strength <= 1.0:
            raise ValueError(f"camera_strength must be within [0, 1], got {camera_strength}")
        if continuation_frames is not None:
            frames = np.asarray(continuation_frames)
            if frames.ndim != 4 or frames.shape[1:] != (height, width, 3) or len(frames) == 0:
                raise ValueError(f"continuation_frames must be (k, {height}, {width}, 3), got {frames.shape}")

    # Adapted from diffusers.pipelines.wan.pipeline_wan_i2v.WanImageToVideoPipeline._get_t5_prompt_embeds
    # Differs: one prompt, one video; the padding is zeroed through the attention mask instead of slicing and
    # re-padding; the encoder may be offloaded.
    def encode_prompt(self, prompt: str, device: torch.device, max_sequence_length: int = 512) -> torch.Tensor:
        """(1, max_sequence_length, text_dim) UMT5 states; positions after the prompt's tokens are zero."""
        tokens = self.tokenizer(
            [prompt_clean(prompt)],
            padding="max_length",
            max_length=max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        with self._component(self.text_encoder):
            text_device = self.text_encoder.device
            states = self.text_encoder(
                tokens.input_ids.to(text_device), tokens.attention_mask.to(text_device)
            ).last_hidden_state
        mask = tokens.attention_mask.to(states.device).bool()[..., None]
        return states.masked_fill(~mask, 0.0).to(device)

    # Adapted from diffusers.pipelines.wan.pipeline_wan_i2v.WanImageToVideoPipeline.encode_image
    # Differs: one portrait; the encoder may be offloaded.
    def encode_image(self, image: PIL.Image.Image, device: torch.device) -> torch.Tensor:
        """CLIP vision states of the portrait (penultimate layer, as Wan I2V was trained)."""
        with self._component(self.image_encoder):
            inputs = self.image_processor(images=image, return_tensors="pt").to(self.image_encoder.device)
            states = self.image_encoder(**inputs, output_hidden_states=True).hidden_states[-2]
        return states.to(device)

    def encode_audio(
        self, audio: np.ndarray, sample_rate: int, fps: float, num_frames: int, prefix_frames: int, num_latents: int
    ) -> torch.Tensor:
        """(num_latents, tokens per window, audio_dim) wav2vec2 windows, one per latent frame."""
        with self._component(self.audio_encoder):
            speech = encode_speech(audio, sample_rate, self.feature_extractor, self.audio_encoder)
        return shot_audio_windows(
            speech,
            fps=fps,
            speech_frames=num_frames,
            prefix_frames=prefix_frames,
            num_latents=num_latents,
            tokens_per_frame=self.transformer.config.audio_tokens_per_frame,
            context_frames=self.transformer.config.audio_context_frames,
        )

    # Adapted from diffusers.pipelines.wan.pipeline_wan_i2v.WanImageToVideoPipeline.prepare_latents
    # Differs: only its condition half (mask + known-frame latents); any number of known frames open the window
    # (diffusers: the first frame, optionally the last), encoded by the streaming VAE.
    def prepare_condition(
        self, known_frames: list[np.ndarray | PIL.Image.Image], num_latents: int, device: torch.device
    ) -> torch.Tensor:
        """The I2V conditioning of one window: (1, 4 + z, num_latents, h, w) = [mask | known-frame latents].

        ``known_frames`` open the window (the portrait alone, or a previous shot's last frames); the rest
        of the window is zeros in pixel space with mask 0, which is how Wan I2V marks "generate this".
        """
        pixel_frames = (num_latents - 1) * self.vae_scale_factor_temporal + 1
        known = known_frames[:pixel_frames]
        height, width = np.asarray(known[0]).shape[:2]

        def frames() -> Iterator[torch.Tensor]:
            for frame in known:
                yield pixels_to_tensor(frame)
            blank = torch.zeros(1, 3, 1, height, width)
            for _ in range(pixel_frames - len(known)):
                yield blank

        with self._component(self.vae):
            latents = encode_video(self.vae, pixel_chunks(frames())).to(device)
        known_mask = torch.zeros(pixel_frames)
        known_mask[: len(known)] = 1.0
        per_latent = torch.cat([known_mask[:1].repeat(self.vae_scale_factor_temporal), known_mask[1:]])
        mask = per_latent.view(num_latents, self.vae_scale_factor_temporal).transpose(0, 1)
        mask = mask[None, :, :, None, None].expand(1, -1, -1, *latents.shape[-2:]).to(device, latents.dtype)
        return torch.cat([mask, latents], dim=1)

    # Adapted from diffusers.pipelines.wan.pipeline_wan_i2v.WanImageToVideoPipeline.prepare_latents
    # Differs: only its noise half; one video, sized in latent frames.
    def prepare_latents(
        self, num_latents: int, height: int, width: int, device: torch.device, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Initial noise (1, z, num_latents, h, w), float32 whatever the transformer's dtype."""
        shape = (
            1,
            self.vae.config.z_dim,
            num_latents,
            height // self.vae_scale_factor_spatial,
            width // self.vae_scale_factor_spatial,
        )
        return randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)

    def encode_frames(self, frames: Iterable[np.ndarray], device: torch.device) -> torch.Tensor:
        """Normalised latents of a 4n + 1 frame video given as (H, W, 3) uint8 frames, streamed."""
        with self._component(self.vae):
            return encode_video(self.vae, pixel_chunks(pixels_to_tensor(f) for f in frames)).to(device)

    # ------------------------------------------------------------------------------------- denoising

    # Adapted from diffusers.pipelines.wan.pipeline_wan_i2v.WanImageToVideoPipeline.__call__
    # Differs: the body of its denoising loop, for one window; three-way audio/text guidance (StableAvatar)
    # instead of cond/uncond, its passes batched into one transformer call.
    def predict_window(
        self,
        window_index: int,
        latents: torch.Tensor,
        condition: torch.Tensor,
        timestep: torch.Tensor,
        audio_windows: torch.Tensor,
        guidance: GuidanceInputs,
        speaker_masks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The guided velocity for one window; guidance passes run as one batch or one by one.

        ``audio_windows`` is (window, N, D) for one speaker, or (S, window, N, D) for several speakers routed
        by ``speaker_masks``.
        """
        dtype = self.transformer.dtype
        model_input = torch.cat([latents, condition], dim=1).to(dtype)
        branches = guidance.branches
        groups = [branches] if guidance.batch_branches else [(branch,) for branch in branches]
        predictions: list[torch.Tensor] = []
        for group_index, group in enumerate(groups):
            rows = len(group)
            with self.transformer.cache_context(f"window-{window_index}-{group_index}"):
                velocity = self.transformer(
                    hidden_states=model_input.expand(rows, -1, -1, -1, -1),
                    timestep=timestep.expand(rows),
                    encoder_hidden_states=torch.cat([guidance.text_states[b.positive_text] for b in group]).to(dtype),
                    encoder_hidden_states_image=guidance.image_states.expand(rows, -1, -1).to(dtype),
                    audio_embeds=_audio_rows(audio_windows, rows).to(dtype),
                    audio_keep=torch.tensor([b.hears_audio for b in group], device=latents.device),
                    speaker_masks=speaker_masks,
                    return_dict=False,
                )[0]
            predictions.extend(velocity.float().split(1))
        return combine_guidance(predictions, guidance.text_scale, guidance.audio_scale)

    # ------------------------------------------------------------------------------------------ call

    @torch.no_grad()
    def __call__(
        self,
        image: PIL.Image.Image | np.ndarray,
        audio: np.ndarray | Sequence[np.ndarray],
        prompt: str,
        negative_prompt: str = "",
        height: int = 480,
        width: int = 832,
        num_frames: int = 81,
        fps: float = 25.0,
        sample_rate: int = 16000,
        num_inference_steps: int = 40,
        text_guidance_scale: float = 3.0,
        audio_guidance_scale: float = 5.0,
        generator: torch.Generator | None = None,
        continuation_frames: np.ndarray | None = None,
        camera_video: Iterable[np.ndarray] | None = None,
        camera_strength: float = 1.0,
        window_latent_frames: int = 21,
        overlap_latent_frames: int = 5,
        blend: str = "log",
        max_sequence_length: int = 512,
        guidance_batch: bool = True,
        decode_chunk_latents: int = 4,
        output_type: str = "np",
        frame_callback: FrameCallback | None = None,
        step_callback: StepCallback | None = None,
        speaker_regions: Sequence[SpeakerRegion] | None = None,
        return_dict: bool = True,
    ) -> WanAudioPipelineOutput | tuple:
        r"""Render ``num_frames`` frames of ``image`` speaking ``audio``.

        Adapted from diffusers.pipelines.wan.pipeline_wan_i2v.WanImageToVideoPipeline.__call__: the same steps
        (encode, timesteps, latents, denoise, decode) with speech, sliding windows, a continuation prefix,
        a camera reference video and streamed decoding added; one video per call, no precomputed embeddings.

        Args:
            image (`PIL.Image.Image` or `np.ndarray`):
                The reference portrait, PIL or (H, W, 3) uint8 at any size. It is centre-cropped and resized to
                the output shape; it is the CLIP image condition and the known first frame of every window
                (but the first window of a continued shot, which opens on `continuation_frames`).
            audio (`np.ndarray`):
                Mono float samples in [-1, 1] at `sample_rate`, `num_frames / fps` seconds long. Its wav2vec2
                features, one window per latent frame, drive the mouth.
            prompt (`str`):
                What the shot shows (camera phrase included); cleaned as Wan cleans prompts, encoded by UMT5.
            negative_prompt (`str`, defaults to `""`):
                The text of the guidance passes that do not read `prompt`; encoded unless both guidance
                scales are 1, when those passes are dropped.
            height (`int`, defaults to 480):
                Output height in pixels; a multiple of the VAE's spatial factor times the DiT patch (16 for
                Wan2.1), else a `ValueError`.
            width (`int`, defaults to 832):
                Output width in pixels; the same multiple as `height`.
            num_frames (`int`, defaults to 81):
                Frames to return, any count from 1: the pipeline renders up to the next 4n + 1 and trims.
            fps (`float`, defaults to 25.0):
                Frame rate of the output; places every frame against its span of `audio`.
            sample_rate (`int`, defaults to 16000):
                Sample rate of `audio`. wav2vec2's feature extractor accepts only the rate it was trained at
                (16 kHz) and raises a `ValueError` for any other.
            num_inference_steps (`int`, defaults to 40):
                Steps of the flow-matching schedule. With a camera move only the last `camera_strength`
                share of them runs.
            text_guidance_scale (`float`, defaults to 3.0):
                How hard the prompt pulls: `t` in `uncond + a * (audio - uncond) + t * (full - audio)`.
                1 (with `audio_guidance_scale` 1) drops the passes it would subtract.
            audio_guidance_scale (`float`, defaults to 5.0):
                How hard the speech pulls: `a` above. 1 drops the unconditional pass.
            generator (`torch.Generator`, *optional*):
                Seeds the initial noise: the same generator state gives the same frames. Without one the
                noise comes from torch's global generator.
            continuation_frames (`np.ndarray`, *optional*):
                (k, H, W, 3) uint8, the previous shot's last frames. The last 4n + 1 of them (the most that fit
                in k) are re-encoded and held fixed at every step, then dropped from the output, so this shot
                starts where that one stopped.
            camera_video (`Iterable[np.ndarray]`, *optional*):
                `num_frames` (H, W, 3) uint8 frames of the camera move over the portrait, read lazily. Used only
                with `camera_strength` < 1.
            camera_strength (`float`, defaults to 1.0):
                In [0, 1]: the share of the schedule that runs when `camera_video` is given. Below 1, denoising
                starts from the camera video noised to that level, so the move shapes the whole shot; 1 starts
                from pure noise and leaves `camera_video` unused; 0 still runs one step.
            window_latent_frames (`int`, defaults to 21):
                Latent frames per sliding window (21 latents are 81 frames, the length Wan2.1 was trained on).
                A shot no longer than one window is denoised in one pass.
            overlap_latent_frames (`int`, defaults to 5):
                Latent frames neighbouring windows share, blended at every step; less than
                `window_latent_frames`.
            blend (`str`, defaults to `"log"`):
                How overlapping windows are weighted across the overlap: `"log"` or `"linear"` (see
                `sliding_window.blend_weights`).
            max_sequence_length (`int`, defaults to 512):
                UMT5 tokens per prompt: longer prompts are truncated, shorter ones padded with zero states.
            guidance_batch (`bool`, defaults to `True`):
                Run the guidance passes as one batch (fast) or one at a time (less memory); same frames either way
                up to floating-point rounding.
            decode_chunk_latents (`int`, defaults to 4):
                Latent frames the VAE decodes per chunk (about 4 frames each); fewer use less memory.
            output_type (`str`, defaults to `"np"`):
                `"np"` for (F, H, W, 3) uint8 frames, `"latent"` for the final normalised latents, undecoded
                (continuation prefix and padding included).
            frame_callback (`Callable[[np.ndarray], None]`, *optional*):
                Receives (t, H, W, 3) uint8 chunks in order as the VAE decodes them; the output then carries no
                frames, so memory stays flat for any length.
            step_callback (`Callable[[int, int], None]`, *optional*):
                Called with (steps done, steps total) after every denoising step.
            speaker_regions (`Sequence[tuple[float, float, float, float]]`, *optional*):
                For a shot with several people speaking (a two-shot): `audio` is then one mono track per
                speaker, and each speaker's (left, top, right, bottom) region of the frame, in fractions of
                its width and height, receives that speaker's audio alone (MultiTalk's routing problem,
                solved by region). Without it `audio` is one track that the whole frame hears.
            return_dict (`bool`, defaults to `True`):
                Return a `WanAudioPipelineOutput` rather than the tuple `(frames,)`.

        Returns:
            `WanAudioPipelineOutput` or `tuple`: the frames (None when they went to `frame_callback`), or the
            latents for `output_type="latent"`.

        Raises:
            ValueError: an input `check_inputs` refuses (size, frame count, fps, sample rate, camera strength,
                continuation shape), or a `camera_video` with no frames.
        """
        self.check_inputs(
            audio, height, width, num_frames, fps, sample_rate, camera_strength, continuation_frames, speaker_regions
        )
        device = self.device_for_compute
        temporal = self.vae_scale_factor_temporal

        # 1. Frame layout: [continuation prefix | requested frames | padding to 4n + 1]
        prefix = []
        if continuation_frames is not None:
            usable = (len(continuation_frames) - 1) // temporal * temporal + 1
            prefix = list(np.asarray(continuation_frames)[-usable:])
        num_latents = latent_frames_for(len(prefix) + num_frames)
        fixed_latents = latent_frames_for(len(prefix)) if prefix else 0

        # 2. Conditions: text, portrait, speech
        text_states = {True: self.encode_prompt(prompt, device, max_sequence_length)}
        branches = guidance_branches(text_guidance_scale, audio_guidance_scale)
        if any(not branch.positive_text for branch in branches):
            text_states[False] = self.encode_prompt(negative_prompt, device, max_sequence_length)
        portrait = fit_image(image, width, height)
        image_states = self.encode_image(portrait, device)
        voices = [audio] if speaker_regions is None else list(audio)
        audio_windows = torch.stack(
            [self.encode_audio(voice, sample_rate, fps, num_frames, len(prefix), num_latents) for voice in voices]
        ).to(device)
        speaker_masks = None
        if speaker_regions is not None:
            speaker_masks = self.speaker_token_masks(speaker_regions, height, width).to(device)

        # 3. Timesteps; a camera move starts part-way down the schedule from its reference video
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        # Adapted from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img.StableDiffusionImg2ImgPipeline.get_timesteps  # noqa: E501
        # Differs: camera_strength plays its strength, and at least one step always runs.
        start_index = 0
        if camera_video is not None and camera_strength < 1.0:
            start_index = num_inference_steps - min(int(num_inference_steps * camera_strength), num_inference_steps)
            start_index = min(start_index, num_inference_steps - 1)
        timesteps = timesteps[start_index:]
        self.scheduler.set_begin_index(start_index)
        sigmas = self.scheduler.sigmas.to(device)

        # 4. Latents: noise, or the camera reference video noised to the starting level
        noise = self.prepare_latents(num_latents, height, width, device, generator)
        latents = noise
        if start_index > 0:
            camera = self._camera_latents(camera_video, prefix, num_frames, num_latents, device)
            latents = (1.0 - sigmas[start_index]) * camera + sigmas[start_index] * noise
        motion = self.encode_frames(prefix, device) if prefix else None
        if motion is not None:
            latents[:, :, :fixed_latents] = self._noised(motion, noise[:, :, :fixed_latents], sigmas[start_index])

        # 5. Window conditions: every window opens on the portrait; a continued shot's first on its prefix
        windows = plan_windows(num_latents, window_latent_frames, overlap_latent_frames)
        conditions = {window.length: None for window in windows}
        for length in conditions:
            conditions[length] = self.prepare_condition([portrait], length, device)
        first_condition = self.prepare_condition(prefix, windows[0].length, device) if prefix else None

        # 6. Denoising: every step walks all windows, blends their velocities, and steps once
        guidance = GuidanceInputs(
            text_states=text_states,
            image_states=image_states,
            branches=branches,
            text_scale=text_guidance_scale,
            audio_scale=audio_guidance_scale,
            batch_branches=guidance_batch,
        )
        for step, timestep in enumerate(timesteps):
            blender = WindowBlender(latents, blend)
            for index, window in enumerate(windows):
                condition = first_condition if (index == 0 and first_condition is not None) else None
                blender.add(
                    window,
                    self.predict_window(
                        index,
                        latents[:, :, window.start : window.end],
                        condition if condition is not None else conditions[window.length],
                        timestep,
                        audio_windows[:, window.start : window.end]
                        if speaker_masks is not None
                        else audio_windows[0, window.start : window.end],
                        guidance,
                        speaker_masks,
                    ),
                )
            latents = self.scheduler.step(blender.output, timestep, latents, return_dict=False)[0]
            if motion is not None:
                level = sigmas[start_index + step + 1]
                latents[:, :, :fixed_latents] = self._noised(motion, noise[:, :, :fixed_latents], level)
            if step_callback is not None:
                step_callback(step + 1, len(timesteps))
        if self.transformer.is_cache_enabled:
            self.transformer._reset_stateful_cache()  # step-cache state belongs to this shot only

        if output_type == "latent":
            self.maybe_free_model_hooks()
            return WanAudioPipelineOutput(frames=latents) if return_dict else (latents,)

        # 7. Decode in a stream: drop the continuation prefix, stop after the requested frames
        collected: list[np.ndarray] = []
        deliver = frame_callback or collected.append
        with self._component(self.vae):
            for chunk in self._trimmed_frames(latents, len(prefix), num_frames, decode_chunk_latents):
                deliver(chunk)
        self.maybe_free_model_hooks()
        frames = np.concatenate(collected) if collected else None
        return WanAudioPipelineOutput(frames=frames) if return_dict else (frames,)

    # ------------------------------------------------------------------------------------------ helpers

    def speaker_token_masks(self, regions: Sequence[SpeakerRegion], height: int, width: int) -> torch.Tensor:
        """(S, tokens per latent frame) bool: the DiT tokens whose centre lies in each speaker's region.

        ValueError when a region is too small to hold a token, or two regions share one (a token must hear
        one voice: overlapping regions would mix two people's speech on one mouth).
        """
        cell_y = self.vae_scale_factor_spatial * self.transformer.config.patch_size[1]
        cell_x = self.vae_scale_factor_spatial * self.transformer.config.patch_size[2]
        rows, columns = height // cell_y, width // cell_x
        centre_y = (torch.arange(rows, dtype=torch.float64) + 0.5) / rows
        centre_x = (torch.arange(columns, dtype=torch.float64) + 0.5) / columns
        masks = []
        for left, top, right, bottom in regions:
            inside_y = (centre_y >= top) & (centre_y < bottom)
            inside_x = (centre_x >= left) & (centre_x < right)
            masks.append((inside_y[:, None] & inside_x[None, :]).flatten())
        stacked = torch.stack(masks)
        for index, mask in enumerate(stacked):
            if not bool(mask.any()):
                raise ValueError(f"speaker {index}'s region {regions[index]} holds no {cell_x}x{cell_y} px token")
        if bool((stacked.sum(dim=0) > 1).any()):
            raise ValueError("speaker regions overlap: each part of the frame must hear one speaker")
        return stacked

    @staticmethod
    def _noised(clean: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The flow-matching interpolant at noise level ``sigma``."""
        return (1.0 - sigma) * clean + sigma * noise

    def _camera_latents(
        self,
        camera_video: Iterable[np.ndarray],
        prefix: list[np.ndarray],
        num_frames: int,
        num_latents: int,
        device: torch.device,
    ) -> torch.Tensor:
        """Latents of [prefix | camera frames | last camera frame held] at the rendered length."""
        rendered = (num_latents - 1) * self.vae_scale_factor_temporal + 1

        def frames() -> Iterator[np.ndarray]:
            yield from prefix
            count, last = len(prefix), None
            for frame in camera_video:
                if count == len(prefix) + num_frames:
                    break
                last = frame
                count += 1
                yield frame
            if last is None:
                raise ValueError("camera_video yielded no frames")
            for _ in range(rendered - count):
                yield last

        return self.encode_frames(frames(), device)

    def _trimmed_frames(self, latents: torch.Tensor, skip: int, keep: int, chunk_latents: int) -> Iterator[np.ndarray]:
        seen = 0
        for pixels in decode_latents(self.vae, latents, chunk_latents):
            chunk = tensor_to_pixels(pixels)
            start, end = seen, seen + len(chunk)
            seen = end
            lo, hi = max(start, skip), min(end, skip + keep)
            if lo < hi:
                yield chunk[lo - start : hi - start]
            if end >= skip + keep:
                break


__all__ = ["WanAudioPipeline", "WanAudioPipelineOutput"]
