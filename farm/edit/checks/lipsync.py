"""Lip sync: each shot's mouth movement against the speech it is laid with in the edit.

The mouth opening (dlib landmarks, every frame) is cross-correlated with the speech envelope (dB RMS
per frame) of the shot's audio as the edit plays it (after any ``audio.slip``); the lag with the
highest correlation is how far sound and picture are apart. Where the render was made in sliding
windows, each window seam is measured again on the frames around it, since a seam is where a model
loses the audio's timing.

Thresholds (the check entry's ``max_lead_ms``, ``max_lag_ms``, ``min_correlation``) default to what a
viewer notices. EBU Recommendation R37 (2007) asks that at the output of a broadcast chain sound be no
more than 40 ms early and 60 ms late against the picture (1 frame lead and ~1.5 frames lag at 25 fps);
ITU-R BT.1359-1 (1998) puts the detectability thresholds at about 45 ms early and 125 ms late, and
acceptability at 90 ms and 185 ms. A lag is searched within +-0.4 s (farm.media.lipsync). Sign: a
positive lag is sound late.

The value is how far the worst of the three is past its limit, as a multiple of it: max(lag / max_lag,
lead / max_lead, min_correlation / correlation). So 1.0 is on a limit and the threshold is 1.0. A shot
whose audio is silent while its mouth moves has no correlation (r = 0) and fails; one that is silent
and still has nothing to sync and is skipped; one in which no face is found is unmeasured. A failed
shot is retaken (new seed, then its model's escalation) unless the shot list slipped its audio on
purpose (``audio.slip``): no re-render moves the sound, so the finding says to fix the slip.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from farm.edit.checks.base import CheckContext, CheckResult, Measurement, Subject
from farm.edit.timeline import EditShot, SpeakerRegion
from farm.media.audio import AudioSlice, cut_audio
from farm.media.lipsync import (
    SyncMeasure,
    best_lag,
    is_silent,
    is_still,
    max_lag_frames,
    mouth_openings,
    speech_envelope,
)
from farm.media.video import read_frames
from farm.shotlist.types import CheckConfig, CheckPolicy

MAX_LEAD_MS = 40.0
"""EBU R37: sound at most 40 ms before the picture."""
MAX_LAG_MS = 60.0
"""EBU R37: sound at most 60 ms after the picture."""
MIN_CORRELATION = 0.3
"""Below this the mouth does not follow the speech at any lag: a wrong or silent track, or no lip sync."""
SEAM_CONTEXT_SECONDS = 1.6
"""A window seam is measured on this much either side of it (enough syllables to correlate)."""
RATIO_CAP = 99.0
"""The value when the correlation is zero or negative (the limit is infinitely far)."""


@dataclass(frozen=True)
class Limits:
    max_lead_ms: float = MAX_LEAD_MS
    max_lag_ms: float = MAX_LAG_MS
    min_correlation: float = MIN_CORRELATION

    @classmethod
    def of(cls, config: CheckConfig | None) -> Limits:
        given = config.limits if config else {}
        return cls(
            given.get("max_lead_ms", MAX_LEAD_MS),
            given.get("max_lag_ms", MAX_LAG_MS),
            given.get("min_correlation", MIN_CORRELATION),
        )

    def excess(self, lag_ms: float, correlation: float) -> float:
        """The worst of lag, lead and correlation as a multiple of its limit (> 1: over it)."""
        timing = lag_ms / max(self.max_lag_ms, 1e-9) if lag_ms > 0 else -lag_ms / max(self.max_lead_ms, 1e-9)
        fit = self.min_correlation / correlation if correlation > 0 else RATIO_CAP
        return min(max(timing, fit), RATIO_CAP)


class LipSyncCheck:
    """Mouth opening against speech envelope, per shot and per window seam (see the module docstring)."""

    name = "lip_sync"
    unit = "x limit"
    default_threshold = 1.0
    default_policy = CheckPolicy.RETAKE
    retakeable = True
    needs_pictures = False
    """It decodes each shot itself: it needs every frame's landmarks, which the shared analysis does not keep."""
    description = "lip sync: lag and correlation of mouth opening and speech envelope (EBU R37 limits)"

    def measure(self, context: CheckContext) -> Iterator[Measurement]:
        limits = Limits.of(context.continuity.checks.get(self.name) if context.continuity else None)
        for shot in context.shots:
            yield from self._measure_shot(context, shot, limits)

    def _measure_shot(self, context: CheckContext, shot: EditShot, limits: Limits) -> Iterator[Measurement]:
        """One measurement per person in the shot: a two-shot's speakers each read from their own region of
        the frame against their own audio (the mix would sync one mouth to both voices)."""
        if not shot.speakers:
            yield from self._measure_view(context, shot, limits, read_frames(shot.video), shot.audio, "")
            return
        for speaker in shot.speakers:
            frames = _region_frames(shot.video, speaker)
            label = f" ({speaker.character_id})"
            yield from self._measure_view(context, shot, limits, frames, speaker.audio, label)

    def _measure_view(
        self,
        context: CheckContext,
        shot: EditShot,
        limits: Limits,
        frames: Iterable[np.ndarray],
        sound: AudioSlice,
        who: str,
    ) -> Iterator[Measurement]:
        started = time.perf_counter()
        mouth = mouth_openings(frames)[: shot.frames]
        audio = cut_audio(sound.path, sound.sample_range)
        envelope = speech_envelope(audio, sound.sample_rate, shot.fps, len(mouth))
        first = context.assembly.shot(shot.shot_id).span.first_frame
        subject = Subject.shot(shot.shot_id)
        if who:
            subject = Subject(subject.kind, subject.shots, f"shot {shot.shot_id}{who}")
        if np.isnan(mouth).all():
            yield Measurement(
                subject,
                None,
                "",
                culprits=(shot.shot_id,),
                frame=first,
                unmeasured=f"no face found in its {len(mouth)} frames, so its lip sync is unchecked",
            )
            return
        if is_silent(envelope) and is_still(mouth):
            yield Measurement(subject, None, "", skip_reason="silent audio and a closed mouth: nothing to sync")
            return
        search = max_lag_frames(shot.fps)
        whole = best_lag(mouth, envelope, search)
        measured = self._judged(subject, shot, whole, limits, first, "", len(mouth))
        measured.details.update(curve_details(mouth, envelope))
        measured.details["ms_per_frame"] = round((time.perf_counter() - started) * 1000 / max(len(mouth), 1), 2)
        yield measured
        context_frames = max(search + 3, round(SEAM_CONTEXT_SECONDS * float(shot.fps)))
        for seam in shot.seams:
            lo, hi = max(0, seam - context_frames), min(len(mouth), seam + context_frames)
            around = best_lag(mouth[lo:hi], envelope[lo:hi], search)
            seam_subject = Subject(subject.kind, subject.shots, f"shot {shot.shot_id} window seam at frame {seam}")
            where = f" around the seam (frames {lo}-{hi - 1})"
            measured = self._judged(seam_subject, shot, around, limits, first + seam, where, hi - lo)
            measured.details.update(curve_details(mouth[lo:hi], envelope[lo:hi]))
            measured.details["seam_frame"] = seam
            yield measured

    def _judged(
        self, subject: Subject, shot: EditShot, sync: SyncMeasure, limits: Limits, frame: int, where: str, frames: int
    ) -> Measurement:
        lag_ms = sync.lag_frames * 1000.0 / float(shot.fps)
        direction = "in sync" if sync.lag_frames == 0 else "sound late" if sync.lag_frames > 0 else "sound early"
        slip = f"; audio slipped {shot.audio_slip:+d} frames in the shot list" if shot.audio_slip else ""
        unfixable = (
            f"its audio is slipped {shot.audio_slip:+d} frames by the shot list (audio.slip), which a re-render "
            "does not change: remove or correct the slip"
            if shot.audio_slip
            else ""
        )
        return Measurement(
            subject=subject,
            value=limits.excess(lag_ms, sync.correlation),
            detail=f"lag {sync.lag_frames:+d} frames ({lag_ms:+.0f} ms, {direction}), correlation "
            f"{sync.correlation:.2f}{where} (limits: lead {limits.max_lead_ms:g} ms, lag {limits.max_lag_ms:g} ms, "
            f"r >= {limits.min_correlation:g}){slip}",
            culprits=(shot.shot_id,),
            frame=frame,
            unfixable=unfixable,
            details={
                "lag_frames": sync.lag_frames,
                "lag_ms": round(lag_ms, 1),
                "correlation": round(sync.correlation, 4),
                "frames": frames,
                "audio_slip": shot.audio_slip,
            },
        )


def _region_frames(video: Path, speaker: SpeakerRegion) -> Iterator[np.ndarray]:
    for frame in read_frames(video):
        left, top, right, bottom = speaker.pixel_box(frame.shape[1], frame.shape[0])
        yield frame[top:bottom, left:right]


def curve_details(mouth: np.ndarray, envelope: np.ndarray) -> dict[str, float | str]:
    """The two curves, compact, for the report's plot of a flagged shot (mouth in IODs, envelope in dB)."""
    return {
        "mouth_curve": ",".join("" if np.isnan(value) else f"{value:.3f}" for value in mouth),
        "envelope_curve": ",".join(f"{value:.1f}" for value in envelope),
    }


def parse_curve(text: str) -> np.ndarray:
    """The inverse of ``curve_details``' encoding; missing values come back as NaN."""
    return np.array([float(value) if value else np.nan for value in text.split(",")]) if text else np.zeros(0)


def lip_sync_table(results: Sequence[CheckResult]) -> list[dict[str, object]]:
    """Every lip_sync result as one row of figures (no curves): for the report and ``farm status --json``."""
    rows: list[dict[str, object]] = []
    for result in results:
        if result.check != LipSyncCheck.name:
            continue
        row: dict[str, object] = {"subject": result.subject.label, "shot": result.subject.shots[0]}
        for key in ("lag_frames", "lag_ms", "correlation", "seam_frame", "audio_slip", "ms_per_frame"):
            if key in result.details:
                row[key] = result.details[key]
        row["verdict"] = result.verdict.value
        rows.append(row)
    return rows
