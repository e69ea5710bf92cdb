"""A tiny, randomly initialised WanAudioPipeline: every real component class, a few thousand parameters.

For tests, demos and CI without weights: it loads and runs through exactly the code the 1.3B model uses
(``from_pretrained`` included), in well under a second per shot on a CPU. Its pixels are noise, since
nothing was trained. The audio cross-attention projections, which a real model starts at zero, get
random values here so that the audio visibly changes the output.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_WORDS = [
    "a",
    "an",
    "the",
    "man",
    "woman",
    "person",
    "speaks",
    "talks",
    "says",
    "calmly",
    "in",
    "at",
    "of",
    "with",
    "and",
    "office",
    "room",
    "light",
    "warm",
    "soft",
    "evening",
    "morning",
    "dark",
    "suit",
    "tie",
    "grey",
    "hair",
    "red",
    "gold",
    "curtains",
    "camera",
    "static",
    "shot",
    "slowly",
    "pushes",
    "pulls",
    "pans",
    "left",
    "right",
    "cranes",
    "up",
    "down",
    "handheld",
    "sway",
    "smooth",
    "face",
    "toward",
    "back",
    "from",
    "gentle",
    "natural",
    "locked",
    "off",
    "older",
    "answers",
    "nods",
    "smiles",
    "reports",
    "news",
    "relieved",
    "good",
    "night",
    "turns",
    "away",
    "blurry",
    "low",
    "quality",
    "static",
    "frame",
]

TINY_TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=36,
    out_channels=16,
    text_dim=32,
    freq_dim=256,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    image_dim=8,
    rope_max_seq_len=1024,
    audio_dim=16,
    audio_adapter_layers=2,
    audio_adapter_heads=2,
    audio_tokens_per_frame=2,
    audio_context_frames=2,
)


def _tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in TINY_WORDS:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def tiny_components(seed: int = 0) -> dict[str, object]:
    """The components of a tiny pipeline, each built from ``seed`` (same seed, same weights)."""
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

    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_ff=37,
            d_kv=8,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            feed_forward_proj="gated-gelu",
            pad_token_id=0,
            eos_token_id=1,
        )
    ).eval()
    torch.manual_seed(seed + 1)
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=8,
            projection_dim=8,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=16,
            intermediate_size=16,
            patch_size=4,
        )
    ).eval()
    image_processor = CLIPImageProcessor(crop_size={"height": 16, "width": 16}, size={"shortest_edge": 16})
    torch.manual_seed(seed + 2)
    audio_encoder = Wav2Vec2Model(
        Wav2Vec2Config(
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            conv_dim=(16,) * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            vocab_size=32,
        )
    ).eval()
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=False
    )
    torch.manual_seed(seed + 3)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    ).eval()
    torch.manual_seed(seed + 4)
    transformer = WanAudioTransformer3DModel(**TINY_TRANSFORMER).eval()
    with torch.no_grad():
        for block in transformer.blocks:
            for projection in (block.attn2.to_k_audio, block.attn2.to_v_audio):
                projection.weight.normal_(0.0, 0.5)
                projection.bias.normal_(0.0, 0.1)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=5.0)
    return dict(
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


def build_tiny_pipeline(seed: int = 0):  # type: ignore[no-untyped-def]
    from farm.avatar.wan_audio.pipeline_wan_audio import WanAudioPipeline

    return WanAudioPipeline(**tiny_components(seed))


def create_tiny_model(directory: Path, seed: int = 0) -> Path:
    """Build a tiny pipeline and ``save_pretrained`` it to ``directory`` (absent or empty), atomically."""
    import shutil

    staging = directory.with_name(f".{directory.name}.creating")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        build_tiny_pipeline(seed).save_pretrained(staging)
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory
