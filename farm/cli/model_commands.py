"""``farm model``: list model manifests, convert StableAvatar weights, build a tiny test model."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from farm.catalog import ModelCatalog
from farm.cli.options import json_option, print_json, settings_from, settings_options, stderr, stdout
from farm.errors import UsageError


@click.group()
def model() -> None:
    """Model manifests and weights."""


@model.command(name="list")
@json_option
@settings_options
def list_models(json_output: bool, **flags: object) -> None:
    """List the model manifests and whether their weights are installed.

    \b
    Examples:
      farm model list
      farm model list --models-dir /studio/models --json
    """
    settings = settings_from(**flags)
    catalog = ModelCatalog.for_settings(settings)
    rows = []
    for name in catalog.names():
        manifest = catalog.get(name)
        weights = manifest.weights
        rows.append(
            {
                "name": name,
                "adapter": manifest.adapter,
                "quality": manifest.quality.value,
                "weights": str(weights) if weights else None,
                "installed": weights is None or (weights / "model_index.json").is_file(),
                "manifest": str(manifest.source),
            }
        )
    if json_output:
        print_json(rows)
        return
    table = Table("model", "adapter", "quality", "weights", "installed")
    for row in rows:
        table.add_row(
            row["name"], row["adapter"], row["quality"], row["weights"] or "-", "yes" if row["installed"] else "no"
        )
    stdout.print(table)


@model.command()
@click.argument("source", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.argument("destination", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--variant",
    type=click.Choice(["square", "rec-vec"]),
    default="square",
    show_default=True,
    help="Which StableAvatar-1.3B transformer to convert (transformer3d-<variant>.pt).",
)
def convert(source: Path, destination: Path, variant: str) -> None:
    """Convert StableAvatar's checkpoints folder SOURCE into a pipeline folder DESTINATION.

    SOURCE is what `huggingface-cli download FrancisRing/StableAvatar` creates (Wan2.1-Fun-V1.1-1.3B-InP/,
    wav2vec2-base-960h/, StableAvatar-1.3B/). Point the manifest's `weights` at DESTINATION.

    \b
    Example:
      farm model convert ~/downloads/StableAvatar ~/.local/share/farm/weights/stableavatar-1.3b
    """
    from farm.avatar.wan_audio.convert import ConversionError, convert_stableavatar

    try:
        convert_stableavatar(source, destination, variant, report=lambda step: stderr.print(f"converting {step}"))
    except ConversionError as exc:
        raise UsageError(f"farm model convert: {exc}") from exc
    stdout.print(f"converted {source} -> {destination}")


@model.command(name="create-tiny")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights.")
def create_tiny(directory: Path, seed: int) -> None:
    """Save a tiny randomly initialised wan_audio pipeline to DIRECTORY (for tests and demos).

    It runs through exactly the code the real model uses, in seconds on a CPU, but was never trained:
    its pixels are noise.

    \b
    Example:
      farm model create-tiny ~/.local/share/farm/weights/tiny-avatar
    """
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"farm model create-tiny: {directory} exists and is not empty; choose a new directory")
    from farm.avatar.wan_audio.tiny import create_tiny_model

    create_tiny_model(directory, seed)
    stdout.print(f"tiny wan_audio model (random weights, noise pixels) saved to {directory}")


COMMANDS = [model]
