"""Convert StableAvatar's published checkpoints into a WanAudioPipeline directory (diffusers layout).

StableAvatar ships its checkpoints as the folder ``huggingface-cli download FrancisRing/StableAvatar``
creates (see its README):

    SRC/Wan2.1-Fun-V1.1-1.3B-InP/       the Wan2.1 base in the original Wan layout
        config.json                          DiT shape: dim, ffn_dim, num_heads, num_layers, in_dim, ...
        diffusion_pytorch_model.safetensors  DiT weights, original key names (blocks.N.self_attn.q, ...)
        Wan2.1_VAE.pth                       VAE, original key names (or a diffusers ``vae/`` folder)
        models_t5_umt5-xxl-enc-bf16.pth      UMT5-XXL encoder, Wan's own key names
        models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth   open-clip ViT-H/14 (+ XLM-R text tower)
        google/umt5-xxl/                     the tokenizer
    SRC/wav2vec2-base-960h/             transformers layout already
    SRC/StableAvatar-1.3B/transformer3d-square.pt    (or -rec-vec.pt) the trained DiT + audio modules

The trained ``.pt`` holds the DiT with StableAvatar's audio parts: ``blocks.N.cross_attn.k_vocal`` /
``v_vocal`` (frame-local audio attention) and ``vocal_projector.*`` (the timestep-aware audio adapter).
Its keys are laid over the base DiT's, then every name is mapped to this package's layout (the diffusers
Wan names plus ``audio_adapter.*`` and ``attn2.to_k_audio``/``to_v_audio``) and loaded strictly, so a
key that does not map, or a tensor of the wrong shape, stops the conversion instead of leaving a
silently random weight.

Components are converted and saved one at a time (the T5-XXL encoder alone is 11 GB), into a temporary
folder that is renamed to the destination only when everything succeeded.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

BASE_DIR = "Wan2.1-Fun-V1.1-1.3B-InP"
WAV2VEC_DIR = "wav2vec2-base-960h"
STABLEAVATAR_DIR = "StableAvatar-1.3B"
VARIANTS = {"square": "transformer3d-square.pt", "rec-vec": "transformer3d-rec-vec.pt"}

AUDIO_ADAPTER_HEADS = 8
"""StableAvatar's vocal projector uses 8 heads (a constant in its code, not visible in tensor shapes)."""
CLIP_HEAD_DIM = 80
"""open-clip ViT-H/14: 1280 wide, 16 heads of 80."""
FLOW_SHIFT = 5.0
"""StableAvatar's sampler shift (its wan_civitai.yaml)."""


class ConversionError(ValueError):
    """The source folder is not a StableAvatar checkpoint this converter understands."""


@dataclass(frozen=True)
class SourceLayout:
    base: Path
    wav2vec: Path
    trained: Path

    @classmethod
    def find(cls, source: Path, variant: str = "square") -> SourceLayout:
        if variant not in VARIANTS:
            raise ConversionError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
        layout = cls(source / BASE_DIR, source / WAV2VEC_DIR, source / STABLEAVATAR_DIR / VARIANTS[variant])
        for path in (layout.base / "config.json", layout.wav2vec, layout.trained):
            if not path.exists():
                raise ConversionError(
                    f"{path} is missing; SRC must be StableAvatar's checkpoints folder "
                    f"(with {BASE_DIR}/, {WAV2VEC_DIR}/ and {STABLEAVATAR_DIR}/)"
                )
        return layout


# ------------------------------------------------------------------------------------------ the DiT

_DIT_RULES: list[tuple[str, str]] = [
    # the audio adapter (StableAvatar's "vocal projector")
    (r"^vocal_projector\.proj_model\.proj\.", "audio_adapter.proj_in."),
    (r"^vocal_projector\.proj_model\.norm\.", "audio_adapter.norm_in."),
    (r"^vocal_projector\.blocks\.(\d+)\.modulation$", r"audio_adapter.blocks.\1.scale_shift_table"),
    (r"^vocal_projector\.blocks\.(\d+)\.norm3\.", r"audio_adapter.blocks.\1.norm2."),
    (r"^vocal_projector\.blocks\.(\d+)\.cross_attn\.o\.", r"audio_adapter.blocks.\1.attn.to_out.0."),
    (r"^vocal_projector\.blocks\.(\d+)\.cross_attn\.([qkv])\.", r"audio_adapter.blocks.\1.attn.to_\2."),
    (r"^vocal_projector\.blocks\.(\d+)\.cross_attn\.(norm_[qk])\.", r"audio_adapter.blocks.\1.attn.\2."),
    (r"^vocal_projector\.blocks\.(\d+)\.ffn\.", r"audio_adapter.blocks.\1.ffn."),
    (r"^vocal_projector\.final_head\.final_proj\.", "audio_adapter.proj_out."),
    (r"^vocal_projector\.final_head\.modulation$", "audio_adapter.scale_shift_table"),
    # embeddings and head
    (r"^text_embedding\.0\.", "condition_embedder.text_embedder.linear_1."),
    (r"^text_embedding\.2\.", "condition_embedder.text_embedder.linear_2."),
    (r"^time_embedding\.0\.", "condition_embedder.time_embedder.linear_1."),
    (r"^time_embedding\.2\.", "condition_embedder.time_embedder.linear_2."),
    (r"^time_projection\.1\.", "condition_embedder.time_proj."),
    (r"^img_emb\.proj\.0\.", "condition_embedder.image_embedder.norm1."),
    (r"^img_emb\.proj\.1\.", "condition_embedder.image_embedder.ff.net.0.proj."),
    (r"^img_emb\.proj\.3\.", "condition_embedder.image_embedder.ff.net.2."),
    (r"^img_emb\.proj\.4\.", "condition_embedder.image_embedder.norm2."),
    (r"^head\.head\.", "proj_out."),
    (r"^head\.modulation$", "scale_shift_table"),
    (r"^patch_embedding\.", "patch_embedding."),
    # transformer blocks
    (r"^blocks\.(\d+)\.modulation$", r"blocks.\1.scale_shift_table"),
    (r"^blocks\.(\d+)\.self_attn\.o\.", r"blocks.\1.attn1.to_out.0."),
    (r"^blocks\.(\d+)\.self_attn\.([qkv])\.", r"blocks.\1.attn1.to_\2."),
    (r"^blocks\.(\d+)\.self_attn\.(norm_[qk])\.", r"blocks.\1.attn1.\2."),
    (r"^blocks\.(\d+)\.cross_attn\.o\.", r"blocks.\1.attn2.to_out.0."),
    (r"^blocks\.(\d+)\.cross_attn\.([qkv])\.", r"blocks.\1.attn2.to_\2."),
    (r"^blocks\.(\d+)\.cross_attn\.(norm_[qk])\.", r"blocks.\1.attn2.\2."),
    (r"^blocks\.(\d+)\.cross_attn\.k_img\.", r"blocks.\1.attn2.add_k_proj."),
    (r"^blocks\.(\d+)\.cross_attn\.v_img\.", r"blocks.\1.attn2.add_v_proj."),
    (r"^blocks\.(\d+)\.cross_attn\.norm_k_img\.", r"blocks.\1.attn2.norm_added_k."),
    (r"^blocks\.(\d+)\.cross_attn\.k_vocal\.", r"blocks.\1.attn2.to_k_audio."),
    (r"^blocks\.(\d+)\.cross_attn\.v_vocal\.", r"blocks.\1.attn2.to_v_audio."),
    # Wan's norm3 is the cross-attention norm, which diffusers calls norm2
    (r"^blocks\.(\d+)\.norm3\.", r"blocks.\1.norm2."),
    (r"^blocks\.(\d+)\.ffn\.0\.", r"blocks.\1.ffn.net.0.proj."),
    (r"^blocks\.(\d+)\.ffn\.2\.", r"blocks.\1.ffn.net.2."),
]
_DIT_PATTERNS = [(re.compile(pattern), replacement) for pattern, replacement in _DIT_RULES]


def rename(key: str, patterns: list[tuple[re.Pattern[str], str]], what: str) -> str:
    for pattern, replacement in patterns:
        renamed, count = pattern.subn(replacement, key)
        if count:
            return renamed
    raise ConversionError(f"{what}: no mapping for checkpoint key {key!r}")


def convert_dit_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """StableAvatar / Wan original DiT keys -> WanAudioTransformer3DModel keys."""
    state = {key.removeprefix("model.diffusion_model."): value for key, value in state.items()}
    return {rename(key, _DIT_PATTERNS, "transformer"): value for key, value in state.items()}


def dit_config(wan_config: dict[str, object], state: dict[str, torch.Tensor]) -> dict[str, object]:
    """WanAudioTransformer3DModel config from Wan's config.json and the trained tensors' shapes."""
    dim, heads = int(wan_config["dim"]), int(wan_config["num_heads"])  # type: ignore[arg-type]
    image = state.get("img_emb.proj.0.weight")
    adapter_blocks = {int(m.group(1)) for k in state if (m := re.match(r"vocal_projector\.blocks\.(\d+)\.", k))}
    return dict(
        patch_size=(1, 2, 2),
        num_attention_heads=heads,
        attention_head_dim=dim // heads,
        in_channels=int(state["patch_embedding.weight"].shape[1]),
        out_channels=int(wan_config.get("out_dim", 16)),  # type: ignore[arg-type]
        text_dim=int(state["text_embedding.0.weight"].shape[1]),
        freq_dim=int(wan_config.get("freq_dim", 256)),  # type: ignore[arg-type]
        ffn_dim=int(wan_config["ffn_dim"]),  # type: ignore[arg-type]
        num_layers=int(wan_config["num_layers"]),  # type: ignore[arg-type]
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=float(wan_config.get("eps", 1e-6)),  # type: ignore[arg-type]
        image_dim=int(image.shape[0]) if image is not None else None,
        added_kv_proj_dim=dim if image is not None else None,
        audio_dim=int(state["vocal_projector.proj_model.proj.weight"].shape[1]),
        audio_adapter_layers=len(adapter_blocks),
        audio_adapter_heads=AUDIO_ADAPTER_HEADS,
        audio_tokens_per_frame=2,
        audio_context_frames=2,
    )


def _check_audio_parts(state: dict[str, torch.Tensor], trained: Path) -> None:
    if "vocal_projector.proj_model.proj.weight" not in state or not any(".k_vocal." in k for k in state):
        raise ConversionError(f"{trained}: no vocal_projector / k_vocal weights; is this a StableAvatar checkpoint?")
    dim = state["patch_embedding.weight"].shape[0]
    adapter_dim = state["vocal_projector.proj_model.proj.weight"].shape[0]
    if adapter_dim != dim:
        raise ConversionError(f"{trained}: audio adapter width {adapter_dim} differs from the DiT's {dim}")


# ------------------------------------------------------------------------------------ text encoder

_T5_RULES: list[tuple[str, str]] = [
    (r"^blocks\.(\d+)\.norm1\.weight$", r"encoder.block.\1.layer.0.layer_norm.weight"),
    (r"^blocks\.(\d+)\.attn\.([qkvo])\.weight$", r"encoder.block.\1.layer.0.SelfAttention.\2.weight"),
    (
        r"^blocks\.(\d+)\.pos_embedding\.embedding\.weight$",
        r"encoder.block.\1.layer.0.SelfAttention.relative_attention_bias.weight",
    ),
    (r"^blocks\.(\d+)\.norm2\.weight$", r"encoder.block.\1.layer.1.layer_norm.weight"),
    (r"^blocks\.(\d+)\.ffn\.gate\.0\.weight$", r"encoder.block.\1.layer.1.DenseReluDense.wi_0.weight"),
    (r"^blocks\.(\d+)\.ffn\.fc1\.weight$", r"encoder.block.\1.layer.1.DenseReluDense.wi_1.weight"),
    (r"^blocks\.(\d+)\.ffn\.fc2\.weight$", r"encoder.block.\1.layer.1.DenseReluDense.wo.weight"),
    (r"^norm\.weight$", "encoder.final_layer_norm.weight"),
    (r"^token_embedding\.weight$", "shared.weight"),
]
_T5_PATTERNS = [(re.compile(pattern), replacement) for pattern, replacement in _T5_RULES]


def convert_t5(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """Wan's umT5 encoder -> transformers UMT5EncoderModel (state dict, config kwargs).

    Wan's feed-forward computes ``fc1(x) * gelu(gate(x))``: ``gate`` is UMT5's ``wi_0`` (activated),
    ``fc1`` its ``wi_1``. Every layer has its own relative position buckets, as in UMT5.
    """
    converted = {rename(key, _T5_PATTERNS, "text encoder"): value for key, value in state.items()}
    converted["encoder.embed_tokens.weight"] = converted["shared.weight"]
    vocab, d_model = state["token_embedding.weight"].shape
    buckets, heads = state["blocks.0.pos_embedding.embedding.weight"].shape
    config = dict(
        vocab_size=int(vocab),
        d_model=int(d_model),
        d_kv=int(state["blocks.0.attn.q.weight"].shape[0]) // int(heads),
        d_ff=int(state["blocks.0.ffn.fc1.weight"].shape[0]),
        num_layers=len({k.split(".")[1] for k in state if k.startswith("blocks.")}),
        num_heads=int(heads),
        relative_attention_num_buckets=int(buckets),
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu",
        layer_norm_epsilon=1e-6,
        pad_token_id=0,
        eos_token_id=1,
    )
    return converted, config


# ------------------------------------------------------------------------------------ image encoder


def convert_clip(state: dict[str, torch.Tensor], prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """open-clip ViT (Wan's ``visual.*``) -> transformers CLIPVisionModel (state dict, config kwargs).

    The fused ``to_qkv`` projection is split into q, k and v; the text tower and the projection head are
    not needed (Wan conditions on the penultimate layer's tokens) and are dropped.
    """
    visual = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
    layers = sorted({int(k.split(".")[1]) for k in visual if k.startswith("transformer.")})
    hidden = int(visual["pos_embedding"].shape[-1])
    patch = int(visual["patch_embedding.weight"].shape[-1])
    positions = int(visual["pos_embedding"].shape[1])
    out: dict[str, torch.Tensor] = {
        f"{prefix}embeddings.patch_embedding.weight": visual["patch_embedding.weight"],
        f"{prefix}embeddings.class_embedding": visual["cls_embedding"].reshape(hidden),
        f"{prefix}embeddings.position_embedding.weight": visual["pos_embedding"].reshape(positions, hidden),
        f"{prefix}pre_layrnorm.weight": visual["pre_norm.weight"],
        f"{prefix}pre_layrnorm.bias": visual["pre_norm.bias"],
        f"{prefix}post_layernorm.weight": visual["post_norm.weight"],
        f"{prefix}post_layernorm.bias": visual["post_norm.bias"],
    }
    for index in layers:
        source, target = f"transformer.{index}.", f"{prefix}encoder.layers.{index}."
        for kind in ("weight", "bias"):
            q, k, v = visual[f"{source}attn.to_qkv.{kind}"].chunk(3, dim=0)
            out.update({f"{target}self_attn.{n}_proj.{kind}": t for n, t in (("q", q), ("k", k), ("v", v))})
            out[f"{target}self_attn.out_proj.{kind}"] = visual[f"{source}attn.proj.{kind}"]
            out[f"{target}layer_norm1.{kind}"] = visual[f"{source}norm1.{kind}"]
            out[f"{target}layer_norm2.{kind}"] = visual[f"{source}norm2.{kind}"]
            out[f"{target}mlp.fc1.{kind}"] = visual[f"{source}mlp.0.{kind}"]
            out[f"{target}mlp.fc2.{kind}"] = visual[f"{source}mlp.2.{kind}"]
    config = dict(
        hidden_size=hidden,
        intermediate_size=int(visual["transformer.0.mlp.0.weight"].shape[0]),
        num_hidden_layers=len(layers),
        num_attention_heads=max(hidden // CLIP_HEAD_DIM, 1),
        image_size=patch * math.isqrt(positions - 1),
        patch_size=patch,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
    )
    return out, config


# ------------------------------------------------------------------------------------------ driver


def _load(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def _load_strict(
    model_class: type, config: object, state: dict[str, torch.Tensor], what: str, match_prefix: bool = False
) -> torch.nn.Module:
    """Build the model without allocating weights and load ``state`` into it, every key accounted for.

    ``match_prefix`` adds the model's ``vision_model.`` prefix when its transformers version has one.
    """
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = model_class(config) if not isinstance(config, dict) else model_class(**config)
    expected = set(model.state_dict())
    if match_prefix and all(key.startswith("vision_model.") for key in expected):
        state = {f"vision_model.{key}": value for key, value in state.items()}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ConversionError(f"{what}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def convert_stableavatar(
    source: Path, destination: Path, variant: str = "square", report: Callable[[str], None] = print
) -> Path:
    """Convert StableAvatar's checkpoints folder ``source`` into a WanAudioPipeline folder ``destination``."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
    from transformers import (
        AutoTokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        UMT5Config,
        UMT5EncoderModel,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
    )

    from farm.avatar.wan_audio.transformer_wan_audio import WanAudioTransformer3DModel

    layout = SourceLayout.find(source, variant)
    if destination.exists() and any(destination.iterdir()):
        raise ConversionError(f"{destination} exists and is not empty; choose a new destination")
    staging = destination.with_name(f".{destination.name}.converting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    saved: dict[str, object] = {}
    try:
        report("transformer: base DiT + StableAvatar weights")
        wan_config = json.loads((layout.base / "config.json").read_text())
        state: dict[str, torch.Tensor] = {}
        base_weights = layout.base / "diffusion_pytorch_model.safetensors"
        if base_weights.exists():
            state.update(_load(base_weights))
        state.update({k.removeprefix("model.diffusion_model."): v for k, v in _load(layout.trained).items()})
        _check_audio_parts(state, layout.trained)
        config = dit_config(wan_config, state)
        transformer = _load_strict(WanAudioTransformer3DModel, config, convert_dit_state_dict(state), "transformer")
        saved["transformer"] = _save(transformer, staging / "transformer")
        del state, transformer

        report("vae")
        saved["vae"] = _save(_convert_vae(layout.base, AutoencoderKLWan), staging / "vae")

        report("text encoder (umT5)")
        t5_state, t5_config = convert_t5(_load(layout.base / "models_t5_umt5-xxl-enc-bf16.pth"))
        text_encoder = _load_strict(UMT5EncoderModel, UMT5Config(**t5_config), t5_state, "text encoder")
        saved["text_encoder"] = _save(text_encoder, staging / "text_encoder")
        del t5_state, text_encoder
        saved["tokenizer"] = _save(
            AutoTokenizer.from_pretrained(layout.base / "google" / "umt5-xxl"), staging / "tokenizer"
        )

        report("image encoder (CLIP ViT-H/14)")
        clip_source = _load(layout.base / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth")
        with_prefix = any(
            k.startswith("vision_model.")
            for k in CLIPVisionModel(
                CLIPVisionConfig(
                    hidden_size=8,
                    intermediate_size=8,
                    num_hidden_layers=1,
                    num_attention_heads=1,
                    image_size=4,
                    patch_size=2,
                )
            ).state_dict()
        )
        clip_state, clip_config = convert_clip(clip_source, "vision_model." if with_prefix else "")
        image_encoder = _load_strict(CLIPVisionModel, CLIPVisionConfig(**clip_config), clip_state, "image encoder")
        saved["image_encoder"] = _save(image_encoder, staging / "image_encoder")
        size = clip_config["image_size"]
        saved["image_processor"] = _save(
            CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
            staging / "image_processor",
        )
        del clip_source, image_encoder

        report("audio encoder (wav2vec2)")
        saved["audio_encoder"] = _save(Wav2Vec2Model.from_pretrained(layout.wav2vec), staging / "audio_encoder")
        saved["feature_extractor"] = _save(
            Wav2Vec2FeatureExtractor.from_pretrained(layout.wav2vec), staging / "feature_extractor"
        )
        saved["scheduler"] = _save(FlowMatchEulerDiscreteScheduler(shift=FLOW_SHIFT), staging / "scheduler")
        _write_model_index(staging, saved)
        if destination.exists():
            destination.rmdir()
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report(f"done: {destination}")
    return destination


def _convert_vae(base: Path, vae_class: type) -> torch.nn.Module:
    """Wan2.1_VAE.pth through diffusers' own key conversion, or a diffusers ``vae/`` folder as it is."""
    if (base / "vae" / "config.json").exists():
        return vae_class.from_pretrained(base / "vae", local_files_only=True)
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    state = convert_wan_vae_to_diffusers(_load(base / "Wan2.1_VAE.pth"))
    return _load_strict(vae_class, {}, state, "vae")


def _save(component: object, directory: Path) -> object:
    component.save_pretrained(directory)  # type: ignore[attr-defined]
    return component


def _write_model_index(directory: Path, components: dict[str, object]) -> None:
    """model_index.json naming each component's library and class, as ``save_pretrained`` would."""
    import diffusers

    index: dict[str, object] = {"_class_name": "WanAudioPipeline", "_diffusers_version": diffusers.__version__}
    for name, component in sorted(components.items()):
        module = type(component).__module__
        library = module.split(".")[0]
        index[name] = [library if library in ("diffusers", "transformers") else module, type(component).__name__]
    (directory / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
