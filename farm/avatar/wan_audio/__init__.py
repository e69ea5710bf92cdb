"""The audio-driven avatar diffusion model (StableAvatar design on diffusers parts).

Submodules import torch and diffusers; import them directly (``farm.avatar.wan_audio.pipeline_wan_audio``)
so that importing this package, or the adapter, stays cheap.
"""
