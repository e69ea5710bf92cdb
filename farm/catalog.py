"""The model catalog: the quality tiers, the default model of each, and one YAML manifest per model in models/.

A manifest is what a studio edits to point farm at its weights or to tune a model's speed levers; the
shot list names the manifest. Loading one checks it fully, so a typo fails at submit time, not on the
cluster an hour later. The catalog is configuration, not model code: the shot-list validator, the
planner and the avatar adapters all read it, so it sits below all of them and imports none of them.
"""

from __future__ import annotations

import difflib
import enum
import hashlib
import json
import os
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from farm import defaults, files
from farm.digests import file_sha256
from farm.errors import ManifestError
from farm.settings import SHIPPED_MODELS_DIR, Settings


class Quality(enum.StrEnum):
    """The two tiers a shot renders at: ``preview`` (CPU previz, for timing and blocking) and ``final``."""

    PREVIEW = "preview"
    FINAL = "final"

    @property
    def default_model(self) -> str:
        """The model a shot of this tier uses when the shot list names none."""
        return DEFAULT_MODELS[self]


DEFAULT_QUALITY = Quality.PREVIEW
DEFAULT_MODELS: dict[Quality, str] = {Quality.PREVIEW: "previz", Quality.FINAL: "stableavatar-1.3b"}


@dataclass(frozen=True)
class Resources:
    """What one worker of this model reserves on a Ray node."""

    gpus: float = 0.0
    cpus: float = 1.0
    gpu_memory_gb: float = 0.0
    memory_gb: float = 1.0
    encode_threads: int = 0
    """CPU threads the shot's video encoder (x264) may use; 0 leaves it to x264. The encoder runs beside the
    model, so this is what it takes of ``cpus`` while the model's feeders keep the rest."""


RESOURCE_FIELDS = ("gpus", "cpus", "gpu_memory_gb", "memory_gb", "encode_threads")
RESOURCE_NUMBERS = ("gpus", "cpus", "gpu_memory_gb", "memory_gb")


def _resources(where: _Locator, raw: object) -> Resources:
    """``resources:``, every field checked where it is written (a bad count would only fail on the cluster)."""
    if raw is None:
        return Resources()
    raw = where.section("resources", raw, RESOURCE_FIELDS, needs=", ".join(RESOURCE_FIELDS))
    for name in RESOURCE_NUMBERS:
        value = raw.get(name, 0)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ManifestError(
                f"{where.at('resources', name)}: resources.{name} must be a number of at least 0, not {value!r}"
            )
    where.whole_number("resources", "encode_threads", raw.get("encode_threads", 0), 0, hint=" (0 lets x264 decide)")
    return Resources(**raw)


@dataclass(frozen=True)
class ModelDefaults:
    steps: int = 1
    text_guidance: float = 0.0
    audio_guidance: float = 0.0


@dataclass(frozen=True)
class StuckTimeout:
    """How long a render of this model may go without reporting progress before it counts as stuck."""

    seconds: float = defaults.STUCK_SECONDS
    seconds_per_frame: float = defaults.STUCK_SECONDS_PER_FRAME

    def for_frames(self, frames: int) -> float:
        return self.seconds + self.seconds_per_frame * frames


@dataclass(frozen=True)
class EscalationRung:
    """One rung of a model's retake escalation: what a retake changes once a shot's new seeds are used up.

    Rungs apply in order, each on top of the ones before: ``steps`` is a floor (a rung never lowers a
    shot's steps), the guidance scales replace the shot's, and ``render`` is laid over the render
    parameters (so it is part of the cache key, like them).
    """

    name: str
    steps: int | None = None
    text_guidance: float | None = None
    audio_guidance: float | None = None
    render: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DistilledRecipe:
    """The manifest's ``distilled:`` section: the few-step, guidance-free recipe a step- and CFG-distilled
    LoRA was trained for (lightx2v / CausVid style), the default for final quality when its file is there.

    Guidance scales of 1 drop the guidance passes entirely (one transformer pass per step instead of three),
    and the distillation fixes the step count and timestep shift it expects, so the recipe carries both.
    Without the file the manifest's full recipe runs, and the plan and every attempt say why.
    """

    lora: str
    """Relative to the weights folder (or absolute): a safetensors file or a diffusers LoRA folder."""
    steps: int = 4
    flow_shift: float | None = None
    lora_scale: float = 1.0
    text_guidance: float = 1.0
    audio_guidance: float = 1.0

    def lora_path(self, weights: Path) -> Path:
        return in_weights(weights, self.lora)

    @property
    def render_overlay(self) -> dict[str, Any]:
        """What the recipe lays over ``render:`` (the non-distilled escalation rung takes it off again)."""
        return {"lora": self.lora, "lora_scale": self.lora_scale, "flow_shift": self.flow_shift}

    @classmethod
    def parse(cls, where: _Locator, raw: object) -> DistilledRecipe | None:
        if raw is None:
            return None
        raw = where.section("distilled", raw, DISTILLED_FIELDS, needs="a lora")
        lora = raw.get("lora")
        if not isinstance(lora, str) or not lora.strip():
            raise ManifestError(
                f"{where.at('distilled', 'lora')}: distilled.lora must name the LoRA file, relative to the "
                f"weights folder (e.g. loras/4step.safetensors), not {lora!r}"
            )
        steps = where.whole_number(
            "distilled",
            "steps",
            raw.get("steps", 4),
            1,
            hint=" (the steps the distillation was trained for, usually 4-8)",
        )
        numbers: dict[str, float | None] = {}
        for name, default in (
            ("flow_shift", None),
            ("lora_scale", 1.0),
            ("text_guidance", 1.0),
            ("audio_guidance", 1.0),
        ):
            value = raw.get(name, default)
            if value is None and default is None:  # the scheduler's own shift
                numbers[name] = None
                continue
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ManifestError(
                    f"{where.at('distilled', name)}: distilled.{name} must be a positive number, not {value!r}"
                )
            numbers[name] = float(value)
        return cls(lora=lora, steps=steps, **numbers)  # type: ignore[arg-type]


DISTILLED_FIELDS = ("lora", "steps", "flow_shift", "lora_scale", "text_guidance", "audio_guidance")


@dataclass(frozen=True)
class ContextParallel:
    """The manifest's ``context_parallel:`` section: the GPU counts one shot of the model may be split over
    (sequence parallel, one node), and the shortest shot worth splitting. Whether a shot is split is the
    engine's choice (``farm.engine.gang``), from the measured scaling; this says only what the model allows.
    """

    degrees: tuple[int, ...]
    min_frames: int = 0

    @classmethod
    def parse(cls, where: _Locator, raw: object) -> ContextParallel | None:
        if raw is None:
            return None
        raw = where.section("context_parallel", raw, CONTEXT_PARALLEL_FIELDS, needs="degrees")
        degrees = raw.get("degrees")
        if (
            not isinstance(degrees, list)
            or not degrees
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 2 for n in degrees)
        ):
            raise ManifestError(
                f"{where.at('context_parallel', 'degrees')}: context_parallel.degrees must list GPU counts of at "
                f"least 2 (e.g. [2, 4, 8]), not {degrees!r}"
            )
        min_frames = where.whole_number("context_parallel", "min_frames", raw.get("min_frames", 0), 0)
        return cls(degrees=tuple(sorted(set(degrees))), min_frames=min_frames)


CONTEXT_PARALLEL_FIELDS = ("degrees", "min_frames")
FULL = "full"
DISTILLED = "distilled"


@dataclass(frozen=True)
class SegmentPolicy:
    """How a take longer than the model's window is split (manifest ``segments:``).

    The planner cuts a long shot at the quietest speech pause between ``min_seconds`` and ``max_seconds``
    into the segment (a hard cut at ``max_seconds`` when there is no pause); each segment continues from
    the last frames of the one before, and every ``reanchor_every``-th segment is pulled back to the
    reference portrait so colour and identity cannot drift over a long take.
    """

    min_seconds: float
    max_seconds: float
    reanchor_every: int = 4

    @classmethod
    def parse(cls, path: Path, raw: object) -> SegmentPolicy | None:
        if raw is None:
            return None
        where = f"{path}: segments"
        if not isinstance(raw, dict):
            raise ManifestError(f"{where} must be a mapping (min_seconds, max_seconds, reanchor_every)")
        unknown = sorted(set(raw) - {"min_seconds", "max_seconds", "reanchor_every"})
        if unknown:
            raise ManifestError(
                f"{where}: unknown field(s) {', '.join(unknown)}; allowed are max_seconds, min_seconds, reanchor_every"
            )
        low, high = raw.get("min_seconds"), raw.get("max_seconds")
        every = raw.get("reanchor_every", 4)
        for name, value in (("min_seconds", low), ("max_seconds", high)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ManifestError(f"{where}: {name} must be a positive number of seconds, not {value!r}")
        if low > high:
            raise ManifestError(f"{where}: min_seconds {low} is more than max_seconds {high}; swap them")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ManifestError(f"{where}: reanchor_every must be a whole number of at least 1, not {every!r}")
        return cls(float(low), float(high), every)


@dataclass(frozen=True)
class ModelManifest:
    name: str
    adapter: str
    quality: Quality
    """The tier the model renders (preview or final)."""
    source: Path
    description: str = ""
    weights: Path | None = None
    resources: Resources = Resources()
    defaults: ModelDefaults = ModelDefaults()
    size_multiple: int = 2
    continuation_frames: int = 1
    render_params: dict[str, Any] = field(default_factory=dict)
    """Adapter parameters that change pixels (window size, dtype, ...); part of every cache key."""
    low_memory: dict[str, Any] = field(default_factory=dict)
    """Render parameters laid over ``render_params`` when a render runs out of device memory."""
    stuck: StuckTimeout = StuckTimeout()
    """When a silent render is killed and run elsewhere (scaled by the shot's frames)."""
    escalation: tuple[EscalationRung, ...] = ()
    """What a continuity retake tries, rung by rung, once the shot's new seeds are used up."""
    segments: SegmentPolicy | None = None
    """How a take longer than the model's window is split; None renders every shot in one piece."""
    distilled: DistilledRecipe | None = None
    """The few-step recipe of ``distilled:``; in force (laid over defaults and render) when ``recipe`` says so."""
    context_parallel: ContextParallel | None = None
    """The GPU counts a shot may be split over; None: every shot on one GPU."""
    recipe: str = FULL
    """``distilled`` when the distilled recipe is the default, else ``full``."""
    recipe_note: str = ""
    """Why: the LoRA that is fused, or which file is missing (the plan and every attempt repeat it)."""

    def render_params_at(self, escalation: int) -> dict[str, Any]:
        """The render parameters with the first ``escalation`` rungs' overlays laid over them."""
        params = dict(self.render_params)
        for rung in self.escalation[:escalation]:
            params.update(rung.render)
        return params


_FIELDS = {
    "name",
    "adapter",
    "quality",
    "tier",
    "description",
    "weights",
    "resources",
    "defaults",
    "size_multiple",
    "continuation_frames",
    "render",
    "low_memory",
    "stuck",
    "escalation",
    "segments",
    "distilled",
    "context_parallel",
}
_RUNG_FIELDS = {"name", "steps", "text_guidance", "audio_guidance", "render"}


WEIGHTS_DIR_VARIABLE = "FARM_WEIGHTS_DIR"


def load_manifest(path: Path, weights_dir: Path | None = None) -> ModelManifest:
    """The manifest at ``path``; ``${FARM_WEIGHTS_DIR}`` in its weights path becomes ``weights_dir``."""
    import yaml  # only where manifests are read: `farm status` imports the catalog for Quality alone

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"{path}: cannot read model manifest ({exc})") from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: a model manifest must be a mapping")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ManifestError(f"{path}: unknown field(s) {', '.join(unknown)}; allowed are {', '.join(sorted(_FIELDS))}")
    if "tier" in raw:  # the field's first name; it means what quality means everywhere else
        if "quality" in raw:
            raise ManifestError(f"{path}: give 'quality' only ('tier' is its older name)")
        raw = {("quality" if key == "tier" else key): value for key, value in raw.items()}
    for required in ("name", "adapter", "quality"):
        if required not in raw:
            raise ManifestError(f"{path}: missing required field '{required}'")
    where = _Locator(path)
    resources = _resources(where, raw.get("resources"))
    distilled = DistilledRecipe.parse(where, raw.get("distilled"))
    context_parallel = ContextParallel.parse(where, raw.get("context_parallel"))
    try:
        manifest = ModelManifest(
            name=str(raw["name"]),
            adapter=str(raw["adapter"]),
            quality=Quality(raw["quality"]),
            source=path,
            description=str(raw.get("description", "")),
            weights=_weights_path(path, raw.get("weights"), weights_dir),
            resources=resources,
            defaults=ModelDefaults(**(raw.get("defaults") or {})),
            size_multiple=int(raw.get("size_multiple", 2)),
            continuation_frames=int(raw.get("continuation_frames", 1)),
            render_params=dict(raw.get("render") or {}),
            low_memory=dict(raw.get("low_memory") or {}),
            stuck=StuckTimeout(**(raw.get("stuck") or {})),
            escalation=_escalation(path, raw.get("escalation")),
            segments=SegmentPolicy.parse(path, raw.get("segments")),
            distilled=distilled,
            context_parallel=context_parallel,
        )
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    return with_recipe(manifest)


def in_weights(weights: Path, value: str) -> Path:
    """A path the manifest gives inside its weights folder (``~`` and ``$VARS`` expanded; absolute stays)."""
    path = Path(os.path.expandvars(os.path.expanduser(value)))
    return path if path.is_absolute() else weights / path


def with_recipe(manifest: ModelManifest) -> ModelManifest:
    """``manifest`` with its distilled recipe in force where the LoRA is in the weights folder.

    The recipe replaces the defaults (steps, guidance) and lays its LoRA and shift over ``render``, so the
    plan, the cache key and the worker all see the recipe that runs. Absent, the full recipe stays, and
    ``recipe_note`` says what is missing, so a slow night is explained before it starts.
    """
    recipe = manifest.distilled
    if recipe is None:
        return manifest
    weights = manifest.weights
    if weights is None or "$" in str(weights):
        note = f"distilled LoRA {recipe.lora} not looked for: the weights folder {weights} is not set"
        return replace(manifest, recipe=FULL, recipe_note=note)
    lora = recipe.lora_path(weights)
    if not lora.exists():
        return replace(manifest, recipe=FULL, recipe_note=f"distilled LoRA {recipe.lora} missing from {weights}")
    return replace(
        manifest,
        defaults=ModelDefaults(recipe.steps, recipe.text_guidance, recipe.audio_guidance),
        render_params={**manifest.render_params, **recipe.render_overlay},
        recipe=DISTILLED,
        recipe_note=f"distilled LoRA {recipe.lora} fused at load: {recipe.steps} steps, "
        + (
            "guidance-free"
            if recipe.text_guidance == recipe.audio_guidance == 1.0
            else f"guidance {recipe.text_guidance:g}/{recipe.audio_guidance:g}"
        ),
    )


class _Locator:
    """Line and column of a manifest's fields, for errors that point where the mistake is written.

    The file is composed into YAML nodes only when an error needs a place (a good manifest never pays).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._root: Any = None

    def section(self, name: str, raw: object, allowed: tuple[str, ...], *, needs: str) -> dict[str, Any]:
        """``raw``, the manifest's ``name:`` section, once it is a mapping of ``allowed`` fields only."""
        if not isinstance(raw, dict):
            raise ManifestError(f"{self.at(name)}: {name} must be a mapping with {needs}")
        unknown = sorted(set(raw) - set(allowed))
        if unknown:
            raise ManifestError(
                f"{self.at(name, unknown[0], key=True)}: {name}.{unknown[0]} is not a field of {name}; "
                f"allowed are {', '.join(allowed)}"
            )
        return raw

    def whole_number(self, section: str, name: str, value: object, minimum: int, *, hint: str = "") -> int:
        """``value`` of ``section.name`` once it is a whole number of at least ``minimum``."""
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ManifestError(
                f"{self.at(section, name)}: {section}.{name} must be a whole number of at least {minimum}{hint}, "
                f"not {value!r}"
            )
        return value

    def at(self, *keys: str, key: bool = False) -> str:
        """``file:line:column`` of the value at ``keys`` (of its key with ``key``), else of its nearest parent."""
        import yaml

        if self._root is None:
            try:
                self._root = yaml.compose(self.path.read_text(encoding="utf-8")) or False
            except (OSError, yaml.YAMLError):
                self._root = False
        node, mark = self._root, None
        for name in keys:
            if not isinstance(node, yaml.MappingNode):
                break
            found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == name), None)
            if found is None:
                break
            mark = found[0].start_mark if key and name == keys[-1] else found[1].start_mark
            node = found[1]
        if mark is None:
            return str(self.path)
        return f"{self.path}:{mark.line + 1}:{mark.column + 1}"


def _escalation(path: Path, raw: object) -> tuple[EscalationRung, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ManifestError(f"{path}: escalation must be a list of rungs (mappings with a name)")
    rungs = []
    for index, entry in enumerate(raw, start=1):
        where = f"{path}: escalation rung {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ManifestError(f"{where} must be a mapping with a name (e.g. name: more steps)")
        unknown = sorted(set(entry) - _RUNG_FIELDS)
        if unknown:
            raise ManifestError(
                f"{where}: unknown field(s) {', '.join(unknown)}; allowed are {', '.join(sorted(_RUNG_FIELDS))}"
            )
        render = entry.get("render") or {}
        if not isinstance(render, dict):
            raise ManifestError(f"{where}: render must be a mapping of render parameters")
        steps = entry.get("steps")
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
            raise ManifestError(f"{where}: steps must be a whole number of at least 1, not {steps!r}")
        rungs.append(
            EscalationRung(
                name=entry["name"],
                steps=steps,
                text_guidance=_optional_float(where, "text_guidance", entry.get("text_guidance")),
                audio_guidance=_optional_float(where, "audio_guidance", entry.get("audio_guidance")),
                render=dict(render),
            )
        )
    return tuple(rungs)


def _optional_float(where: str, name: str, value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ManifestError(f"{where}: {name} must be a number, not {value!r}")
    return float(value)


def _weights_path(manifest_path: Path, value: object, weights_dir: Path | None) -> Path | None:
    if value in (None, ""):
        return None
    text = str(value)
    if weights_dir is not None:
        text = string.Template(text).safe_substitute({WEIGHTS_DIR_VARIABLE: str(weights_dir)})
    if "$" in text:
        return Path(text)  # left unresolved; weights_digest says which variable to set
    weights = Path(os.path.expanduser(text))
    return weights if weights.is_absolute() else (manifest_path.parent / weights).resolve()


class ModelCatalog:
    """The manifests in a models directory, by name."""

    @classmethod
    def for_settings(cls, settings: Settings) -> ModelCatalog:
        return cls(settings.models_dir, settings.weights_dir)

    def __init__(self, models_dir: Path, weights_dir: Path | None = None) -> None:
        self.models_dir = models_dir
        self._manifests: dict[str, ModelManifest] = {}
        for path in sorted(models_dir.glob("*.yaml")):
            manifest = load_manifest(path, weights_dir)
            if manifest.name in self._manifests:
                raise ManifestError(
                    f"{path}: model name '{manifest.name}' is also used by {self._manifests[manifest.name].source}"
                )
            self._manifests[manifest.name] = manifest

    def names(self) -> list[str]:
        return sorted(self._manifests)

    def __contains__(self, name: object) -> bool:
        return name in self._manifests

    def get(self, name: str) -> ModelManifest:
        try:
            return self._manifests[name]
        except KeyError:
            raise ManifestError(f"no model named '{name}' in {self.models_dir}; {self.suggest(name)}") from None

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=1)
        known = ", ".join(self.names()) or "none"
        return f"did you mean '{close[0]}'? (models: {known})" if close else f"models: {known}"


def weights_digest(manifest: ModelManifest, memo_file: Path | None = None) -> str:
    """sha256 over every file of the weights directory (relative path + content).

    Hashing gigabytes of weights on every plan would be slow, so per-file digests are memoised in
    ``memo_file`` keyed on path, size and modification time.
    """
    if manifest.weights is None:
        return "no-weights"
    if "$" in str(manifest.weights):
        raise ManifestError(
            f"{manifest.source}: the weights path {manifest.weights} of model '{manifest.name}' uses a variable "
            f"that is not set; set {WEIGHTS_DIR_VARIABLE} to the folder holding your model weights"
        )
    if not manifest.weights.is_dir():
        raise ManifestError(
            f"{manifest.source}: weights directory {manifest.weights} for model '{manifest.name}' does not exist; "
            f"see {SHIPPED_MODELS_DIR / 'README.md'} for how to install or convert weights"
        )
    memo: dict[str, str] = {}
    if memo_file is not None and memo_file.exists():
        try:
            memo = json.loads(memo_file.read_text())
        except (OSError, json.JSONDecodeError):
            memo = {}
    outer = hashlib.sha256()
    for file in sorted(p for p in manifest.weights.rglob("*") if p.is_file()):
        stat = file.stat()
        memo_key = f"{file}:{stat.st_size}:{stat.st_mtime_ns}"
        if memo_key not in memo:
            memo[memo_key] = file_sha256(file)
        outer.update(f"{file.relative_to(manifest.weights).as_posix()}\0{memo[memo_key]}\n".encode())
    if memo_file is not None:
        _write_memo(memo_file, memo)
    return outer.hexdigest()


def _write_memo(memo_file: Path, memo: dict[str, str]) -> None:
    memo_file.parent.mkdir(parents=True, exist_ok=True)
    files.write_text(memo_file, json.dumps(memo), fsync=False)
