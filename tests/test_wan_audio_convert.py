"""`farm model convert`: StableAvatar's published checkpoint layout -> a loadable WanAudioPipeline folder.

The synthetic checkpoint below is written from the key names and shapes of StableAvatar's released code
(wan/models/wan_fantasy_transformer3d_1B.py, vocal_projector_fantasy_1B.py, wan_text_encoder.py,
wan_image_encoder.py), at toy sizes, with random values.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from farm.avatar.wan_audio.convert import ConversionError, convert_stableavatar
from farm.avatar.wan_audio.pipeline_wan_audio import WanAudioPipeline
from farm.avatar.wan_audio.tiny import tiny_components
from tests.tiny_wan import render

DIM, HEADS, LAYERS, FFN, TEXT_DIM, IMAGE_DIM, AUDIO_DIM = 256, 2, 2, 64, 32, 160, 16


def _random(generator: torch.Generator):  # type: ignore[no-untyped-def]
    return lambda *shape: torch.randn(*shape, generator=generator) * 0.02


def published_dit(seed: int) -> dict[str, torch.Tensor]:
    r = _random(torch.Generator().manual_seed(seed))
    state = {
        "patch_embedding.weight": r(DIM, 36, 1, 2, 2),
        "patch_embedding.bias": r(DIM),
        "text_embedding.0.weight": r(DIM, TEXT_DIM),
        "text_embedding.0.bias": r(DIM),
        "text_embedding.2.weight": r(DIM, DIM),
        "text_embedding.2.bias": r(DIM),
        "time_embedding.0.weight": r(DIM, 256),
        "time_embedding.0.bias": r(DIM),
        "time_embedding.2.weight": r(DIM, DIM),
        "time_embedding.2.bias": r(DIM),
        "time_projection.1.weight": r(6 * DIM, DIM),
        "time_projection.1.bias": r(6 * DIM),
        "img_emb.proj.0.weight": 1 + r(IMAGE_DIM),
        "img_emb.proj.0.bias": r(IMAGE_DIM),
        "img_emb.proj.1.weight": r(IMAGE_DIM, IMAGE_DIM),
        "img_emb.proj.1.bias": r(IMAGE_DIM),
        "img_emb.proj.3.weight": r(DIM, IMAGE_DIM),
        "img_emb.proj.3.bias": r(DIM),
        "img_emb.proj.4.weight": 1 + r(DIM),
        "img_emb.proj.4.bias": r(DIM),
        "head.head.weight": r(16 * 4, DIM),
        "head.head.bias": r(16 * 4),
        "head.modulation": r(1, 2, DIM),
    }
    for i in range(LAYERS):
        block = f"blocks.{i}."
        state[block + "modulation"] = r(1, 6, DIM)
        for attention, projections in (("self_attn", "qkvo"), ("cross_attn", "qkvo")):
            for name in projections:
                state[f"{block}{attention}.{name}.weight"] = r(DIM, DIM)
                state[f"{block}{attention}.{name}.bias"] = r(DIM)
            state[f"{block}{attention}.norm_q.weight"] = 1 + r(DIM)
            state[f"{block}{attention}.norm_k.weight"] = 1 + r(DIM)
        for name in ("k_img", "v_img", "k_vocal", "v_vocal"):
            state[f"{block}cross_attn.{name}.weight"] = r(DIM, DIM)
            state[f"{block}cross_attn.{name}.bias"] = r(DIM)
        state[block + "cross_attn.norm_k_img.weight"] = 1 + r(DIM)
        state[block + "norm3.weight"] = 1 + r(DIM)
        state[block + "norm3.bias"] = r(DIM)
        state[block + "ffn.0.weight"], state[block + "ffn.0.bias"] = r(FFN, DIM), r(FFN)
        state[block + "ffn.2.weight"], state[block + "ffn.2.bias"] = r(DIM, FFN), r(DIM)
    vocal = "vocal_projector."
    state[vocal + "proj_model.proj.weight"] = r(DIM, AUDIO_DIM)
    state[vocal + "proj_model.norm.weight"], state[vocal + "proj_model.norm.bias"] = 1 + r(DIM), r(DIM)
    for j in range(2):
        block = f"{vocal}blocks.{j}."
        state[block + "modulation"] = r(1, 6, DIM)
        state[block + "norm3.weight"], state[block + "norm3.bias"] = 1 + r(DIM), r(DIM)
        for name in "qkvo":
            state[f"{block}cross_attn.{name}.weight"], state[f"{block}cross_attn.{name}.bias"] = r(DIM, DIM), r(DIM)
        state[block + "cross_attn.norm_q.weight"] = 1 + r(DIM)
        state[block + "cross_attn.norm_k.weight"] = 1 + r(DIM)
        state[block + "ffn.0.weight"], state[block + "ffn.0.bias"] = r(2 * DIM, DIM), r(2 * DIM)
        state[block + "ffn.2.weight"], state[block + "ffn.2.bias"] = r(DIM, 2 * DIM), r(DIM)
    state[vocal + "final_head.final_proj.weight"] = r(DIM, DIM)
    state[vocal + "final_head.final_proj.bias"] = r(DIM)
    state[vocal + "final_head.modulation"] = r(1, 2, DIM)
    return state


def published_t5(vocab: int) -> dict[str, torch.Tensor]:
    r = _random(torch.Generator().manual_seed(7))
    state = {"token_embedding.weight": r(vocab, TEXT_DIM) * 50, "norm.weight": 1 + r(TEXT_DIM)}
    for i in range(2):
        block = f"blocks.{i}."
        state.update({f"{block}attn.{n}.weight": r(TEXT_DIM, TEXT_DIM) * 20 for n in "qkvo"})
        state[block + "norm1.weight"], state[block + "norm2.weight"] = 1 + r(TEXT_DIM), 1 + r(TEXT_DIM)
        state[block + "pos_embedding.embedding.weight"] = r(32, 4)
        state[block + "ffn.gate.0.weight"], state[block + "ffn.fc1.weight"] = r(40, TEXT_DIM), r(40, TEXT_DIM)
        state[block + "ffn.fc2.weight"] = r(TEXT_DIM, 40)
    return state


def published_clip() -> dict[str, torch.Tensor]:
    r = _random(torch.Generator().manual_seed(8))
    width = IMAGE_DIM  # two heads of 80, like ViT-H/14 has sixteen
    state = {
        "visual.patch_embedding.weight": r(width, 3, 4, 4),
        "visual.cls_embedding": r(1, 1, width),
        "visual.pos_embedding": r(1, 17, width),
        "visual.pre_norm.weight": 1 + r(width),
        "visual.pre_norm.bias": r(width),
        "visual.post_norm.weight": 1 + r(width),
        "visual.post_norm.bias": r(width),
        "visual.head": r(width, IMAGE_DIM),
        "textual.token_embedding.weight": r(10, 8),
    }
    for i in range(3):
        layer = f"visual.transformer.{i}."
        for norm in ("norm1", "norm2"):
            state[f"{layer}{norm}.weight"], state[f"{layer}{norm}.bias"] = 1 + r(width), r(width)
        state[layer + "attn.to_qkv.weight"], state[layer + "attn.to_qkv.bias"] = r(3 * width, width), r(3 * width)
        state[layer + "attn.proj.weight"], state[layer + "attn.proj.bias"] = r(width, width), r(width)
        state[layer + "mlp.0.weight"], state[layer + "mlp.0.bias"] = r(64, width), r(64)
        state[layer + "mlp.2.weight"], state[layer + "mlp.2.bias"] = r(width, 64), r(width)
    return state


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A StableAvatar checkpoints folder in its published layout, at toy size."""
    source = tmp_path_factory.mktemp("stableavatar")
    base = source / "Wan2.1-Fun-V1.1-1.3B-InP"
    base.mkdir()
    config = {"dim": DIM, "ffn_dim": FFN, "freq_dim": 256, "in_dim": 36, "model_type": "i2v", "num_heads": HEADS}
    (base / "config.json").write_text(json.dumps({**config, "num_layers": LAYERS, "out_dim": 16, "eps": 1e-6}))
    base_dit = {k: v for k, v in published_dit(seed=1).items() if "vocal" not in k}
    save_file(base_dit, str(base / "diffusion_pytorch_model.safetensors"))
    trained = published_dit(seed=2)
    (source / "StableAvatar-1.3B").mkdir()
    torch.save({"state_dict": trained}, source / "StableAvatar-1.3B" / "transformer3d-square.pt")

    tiny = tiny_components()
    tiny["tokenizer"].save_pretrained(base / "google" / "umt5-xxl")
    tiny["vae"].save_pretrained(base / "vae")
    torch.save(published_t5(len(tiny["tokenizer"])), base / "models_t5_umt5-xxl-enc-bf16.pth")
    torch.save(published_clip(), base / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth")
    tiny["audio_encoder"].save_pretrained(source / "wav2vec2-base-960h")
    tiny["feature_extractor"].save_pretrained(source / "wav2vec2-base-960h")
    return source, trained


@pytest.fixture(scope="module")
def converted(checkpoint: tuple[Path, dict[str, torch.Tensor]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_stableavatar(checkpoint[0], tmp_path_factory.mktemp("out") / "stableavatar", report=lambda _: None)


@pytest.fixture(scope="module")
def loaded(converted: Path) -> WanAudioPipeline:
    pipeline = WanAudioPipeline.from_pretrained(converted, local_files_only=True)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_converted_checkpoint_loads_offline_and_renders(loaded: WanAudioPipeline) -> None:
    pipeline = loaded
    frames = render(pipeline, num_frames=5)

    assert frames.shape == (5, 32, 32, 3)
    assert pipeline.transformer.config.num_attention_heads == HEADS
    assert pipeline.transformer.config.audio_dim == AUDIO_DIM


def test_stableavatar_weights_land_in_their_places(
    checkpoint: tuple[Path, dict[str, torch.Tensor]], loaded: WanAudioPipeline
) -> None:
    trained = checkpoint[1]
    model = loaded.transformer
    block, adapter = model.blocks[1], model.audio_adapter.blocks[0]

    pairs = {
        "blocks.1.cross_attn.k_vocal.weight": block.attn2.to_k_audio.weight,
        "blocks.1.cross_attn.v_vocal.bias": block.attn2.to_v_audio.bias,
        "blocks.1.cross_attn.k_img.weight": block.attn2.add_k_proj.weight,
        "blocks.1.norm3.weight": block.norm2.weight,  # Wan's cross-attention norm is diffusers' norm2
        "blocks.1.self_attn.o.weight": block.attn1.to_out[0].weight,
        "blocks.1.modulation": block.scale_shift_table,
        "vocal_projector.blocks.0.cross_attn.q.weight": adapter.attn.to_q.weight,
        "vocal_projector.blocks.0.norm3.bias": adapter.norm2.bias,
        "vocal_projector.proj_model.proj.weight": model.audio_adapter.proj_in.weight,
        "vocal_projector.final_head.modulation": model.audio_adapter.scale_shift_table,
        "head.head.weight": model.proj_out.weight,
        "img_emb.proj.3.weight": model.condition_embedder.image_embedder.ff.net[2].weight,
    }
    for published, loaded in pairs.items():
        torch.testing.assert_close(loaded, trained[published], rtol=0, atol=0, msg=published)


def test_text_and_image_encoders_are_mapped_from_wans_own_layouts(
    checkpoint: tuple[Path, dict[str, torch.Tensor]], loaded: WanAudioPipeline
) -> None:
    pipeline = loaded
    base = checkpoint[0] / "Wan2.1-Fun-V1.1-1.3B-InP"
    t5 = torch.load(base / "models_t5_umt5-xxl-enc-bf16.pth")
    clip = torch.load(base / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth")

    feed_forward = pipeline.text_encoder.encoder.block[1].layer[1].DenseReluDense
    torch.testing.assert_close(feed_forward.wi_0.weight, t5["blocks.1.ffn.gate.0.weight"])
    torch.testing.assert_close(feed_forward.wi_1.weight, t5["blocks.1.ffn.fc1.weight"])
    vision = getattr(pipeline.image_encoder, "vision_model", pipeline.image_encoder)  # transformers 4 / 5
    attention = vision.encoder.layers[2].self_attn
    torch.testing.assert_close(attention.k_proj.weight, clip["visual.transformer.2.attn.to_qkv.weight"][160:320])
    assert pipeline.image_encoder.config.num_attention_heads == 2
    assert np.isclose(pipeline.scheduler.config.shift, 5.0)


def test_an_unknown_key_stops_the_conversion_and_leaves_nothing_behind(
    checkpoint: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path
) -> None:
    source = checkpoint[0]
    broken = tmp_path / "broken"
    (broken / "StableAvatar-1.3B").mkdir(parents=True)
    for name in ("Wan2.1-Fun-V1.1-1.3B-InP", "wav2vec2-base-960h"):
        (broken / name).symlink_to(source / name)
    state = {**checkpoint[1], "blocks.0.cross_attn.mystery.weight": torch.zeros(2)}
    torch.save(state, broken / "StableAvatar-1.3B" / "transformer3d-square.pt")
    destination = tmp_path / "converted"

    with pytest.raises(ConversionError, match=r"mystery"):
        convert_stableavatar(broken, destination, report=lambda _: None)

    assert not destination.exists()
    assert not any(p.name.endswith(".converting") for p in tmp_path.iterdir())
