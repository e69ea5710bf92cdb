"""The edit's laid dialogue to AAC: gain-adjusted and encoded in parallel pieces, joined packet by packet.

One AAC encode of a 33-minute edit is single-threaded in ffmpeg and was most of an assembly's time. The
timeline is cut instead into a few pieces on AAC frame boundaries (1024 samples), each encoded by its
own ffmpeg process from the same WAV through the same filters, and the pieces' packets are joined into
one stream without decoding them (PyAV, stream copy):

- every encoder but the first starts ``PRE_ROLL_FRAMES`` frames before its piece, and every encoder
  but the last runs ``POST_ROLL_FRAMES`` frames past it; those packets are dropped. An AAC frame decodes
  by overlapping its MDCT window with its neighbour's, so the frame either side of a join must have been
  coded from the same samples, with the same block-switching decision and a settled rate control and
  limiter: the rolls give every encoder at a join the same second of signal history and the look-ahead
  that the window decision needs. The decoded join differs from a single-pass encode by coding noise
  only, and no sample is lost or repeated (tests/test_audio_pieces.py decodes every join);
- the first piece keeps its encoder's 1024 priming samples, so the joined stream starts with them at
  pts -1024 and the mp4 muxer writes the same edit list a single encode gets: decoded audio starts at
  t = 0 with the first laid sample; the last piece keeps its encoder's final, shorter packet, so the
  stream lasts exactly the timeline.

The samples are piped to each encoder straight from the WAV, a block at a time: memory stays flat.
"""

from __future__ import annotations

import itertools
import wave
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from farm.edit.loudness import LoudnessMeasurement, StretchLoudness, StretchMeter, combine_stretches
from farm.errors import MediaError
from farm.media.ffmpeg import EDIT_AUDIO_RATE, EncodeSettings, Filter, encode_pcm_to_aac, start

AAC_FRAME_SAMPLES = 1024
"""Samples per AAC-LC frame; pieces are cut on multiples of it so packets line up across the pieces."""
AAC_PRIMING_SAMPLES = 1024
"""The delay ffmpeg's AAC encoder puts before the first real sample (the first packet's pts is -1024)."""
PRE_ROLL_FRAMES = 48
"""Frames (1.02 s) an encoder is given before its piece: its psychoacoustic state, rate control and the
peak limiter (60 ms release) settle to what a single pass would have there."""
POST_ROLL_FRAMES = 4
"""Frames an encoder is given past its piece: the look-ahead of its block-switching decision."""
MIN_PIECE_SECONDS = 30.0
"""No piece is shorter than this (but a shorter edit is one piece): the rolls cost ~3 % of a piece."""
PIECES_PER_WORKER = 3
"""Pieces queued per worker: a worker meters the piece it has just encoded while the others still
encode theirs, so only the last round's metering is not hidden behind an encode."""
_FEED_SAMPLES = 1 << 16
"""Samples written to an encoder's pipe at a time."""
_METER_SAMPLES = EDIT_AUDIO_RATE
"""Decoded samples metered at a time (a second: few calls, little memory)."""


@dataclass(frozen=True)
class AudioPiece:
    """One encoder's share of the timeline, in samples of the edit (48 kHz)."""

    first_sample: int
    """The first sample this piece contributes (a multiple of AAC_FRAME_SAMPLES)."""
    end_sample: int
    input_start: int
    """The first sample its encoder is given (the pre-roll before ``first_sample``)."""
    input_end: int

    @property
    def keeps_priming(self) -> bool:
        return self.first_sample == 0


def piece_count(total_samples: int, workers: int) -> int:
    """PIECES_PER_WORKER pieces per worker, but none under MIN_PIECE_SECONDS."""
    longest = max(1, int(total_samples / (MIN_PIECE_SECONDS * EDIT_AUDIO_RATE)))
    return max(1, min(workers * PIECES_PER_WORKER, longest))


def plan_pieces(total_samples: int, pieces: int) -> list[AudioPiece]:
    """``pieces`` near-equal shares of ``[0, total_samples)`` cut on AAC frame boundaries, with their rolls."""
    if total_samples <= 0:
        raise ValueError("an edit with no audio samples has nothing to encode")
    frames = -(-total_samples // AAC_FRAME_SAMPLES)
    pieces = max(1, min(pieces, frames))
    cuts = [round(index * frames / pieces) * AAC_FRAME_SAMPLES for index in range(pieces)] + [total_samples]
    planned = []
    for first, end in itertools.pairwise(cuts):
        planned.append(
            AudioPiece(
                first_sample=first,
                end_sample=end,
                input_start=max(0, first - PRE_ROLL_FRAMES * AAC_FRAME_SAMPLES),
                input_end=min(total_samples, end + POST_ROLL_FRAMES * AAC_FRAME_SAMPLES),
            )
        )
    return planned


@dataclass(frozen=True)
class EncodedAudio:
    plan: list[AudioPiece]
    loudness: LoudnessMeasurement
    """The loudness of the joined stream as a decoder gives it (integrated, true peak, range)."""


def encode_edit_audio(
    wav: Path,
    destination: Path,
    work: Path,
    *,
    filters: Sequence[Filter],
    settings: EncodeSettings,
    aac_coder: str,
    pieces: int,
    workers: int,
) -> EncodedAudio:
    """``wav`` (mono 16-bit, 48 kHz) through ``filters`` to one AAC stream in ``destination`` (an m4a).

    The pieces encode ``workers`` at a time, one ffmpeg process and one feeding thread each; their files go
    in ``work``. Each thread then decodes the piece it encoded and meters the samples it contributes, so
    the delivered audio's loudness is known when the last piece is, with no pass over the joined stream.
    """
    with wave.open(str(wav), "rb") as source:
        total = source.getnframes()
    plan = plan_pieces(total, pieces)
    paths = [work / f"audio_piece_{index:03d}.m4a" for index in range(len(plan))]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(plan)))) as pool:
        measured = [
            pool.submit(_encode_and_meter_piece, wav, piece, path, filters, settings, aac_coder)
            for piece, path in zip(plan, paths, strict=True)
        ]
        stretches = [future.result() for future in measured]
    join_pieces(list(zip(plan, paths, strict=True)), destination)
    return EncodedAudio(plan, combine_stretches(stretches, EDIT_AUDIO_RATE, total))


def _encode_and_meter_piece(
    wav: Path, piece: AudioPiece, path: Path, filters: Sequence[Filter], settings: EncodeSettings, aac_coder: str
) -> StretchLoudness:
    _encode_piece(wav, piece, path, filters, settings, aac_coder)
    return meter_piece(path, piece)


def _encode_piece(
    wav: Path, piece: AudioPiece, path: Path, filters: Sequence[Filter], settings: EncodeSettings, aac_coder: str
) -> None:
    command = encode_pcm_to_aac(
        path, sample_rate=EDIT_AUDIO_RATE, filters=filters, settings=settings, aac_coder=aac_coder
    )
    encoder = start(command, f"encoding the edit's audio from {piece.input_start / EDIT_AUDIO_RATE:.3f} s")
    try:
        with wave.open(str(wav), "rb") as source:
            source.setpos(piece.input_start)
            remaining = piece.input_end - piece.input_start
            while remaining > 0:
                block = source.readframes(min(_FEED_SAMPLES, remaining))
                if not block:
                    raise MediaError(f"{wav}: ends before sample {piece.input_end}")
                encoder.write(block)
                remaining -= len(block) // 2
    except BaseException:
        encoder.kill()
        raise
    encoder.finish()


def meter_piece(path: Path, piece: AudioPiece) -> StretchLoudness:
    """The loudness of the samples ``piece`` contributes to the joined stream, decoded from its own file.

    The decoder runs from the piece's first packet, so the meter's filters have warmed up on the pre-roll
    by ``first_sample``. Only the frame either side of a join differs from the joined stream's decode
    (overlapped with the neighbour's frame there rather than this encoder's roll): by coding noise.
    """
    import av

    with av.open(str(path)) as source:
        audio = source.streams.audio[0]
        meter = StretchMeter(
            EDIT_AUDIO_RATE, audio.codec_context.channels, piece.first_sample, piece.end_sample, piece.input_start
        )
        tick = audio.time_base * EDIT_AUDIO_RATE
        if tick.denominator != 1:
            raise MediaError(f"{path.name}: audio timestamps in {audio.time_base} s, not whole samples")
        expected = 0
        pending: list[np.ndarray] = []
        for frame in source.decode(audio):
            local = frame.pts * tick.numerator if frame.pts is not None else expected
            if local != expected:
                raise MediaError(f"{path.name}: decoded audio at sample {local} where {expected} was due")
            pending.append(frame.to_ndarray())
            expected += frame.samples
            if len(pending) * AAC_FRAME_SAMPLES >= _METER_SAMPLES:
                meter.feed(np.concatenate(pending, axis=1))
                pending = []
        if pending:
            meter.feed(np.concatenate(pending, axis=1))
    if piece.input_start + expected < piece.end_sample:
        raise MediaError(f"{path.name}: decodes to sample {piece.input_start + expected}, short of {piece.end_sample}")
    return meter.result()


def join_pieces(pieces: Sequence[tuple[AudioPiece, Path]], destination: Path) -> None:
    """The pieces' packets, rolls dropped, as one AAC stream in an mp4 (no decoding: packets are copied).

    Each packet is re-stamped with its place on the edit's timeline; the first piece's priming packet
    keeps pts -1024, from which the muxer writes the edit list that hides the priming. A piece whose
    packets do not start at -1024 (another encoder delay) or do not follow on without a gap is refused
    rather than joined out of place.
    """
    import av

    sample = Fraction(1, EDIT_AUDIO_RATE)
    expected = -AAC_PRIMING_SAMPLES
    # the edit list's duration is in the movie's timescale: at the sample rate it ends on the exact sample
    with av.open(str(destination), "w", format="mp4", options={"movie_timescale": str(EDIT_AUDIO_RATE)}) as output:
        stream = None
        for piece, path in pieces:
            with av.open(str(path)) as source:
                audio = source.streams.audio[0]
                if stream is None:
                    stream = output.add_stream_from_template(audio)
                kept_from = (-AAC_PRIMING_SAMPLES if piece.keeps_priming else piece.first_sample) - piece.input_start
                kept_to = piece.end_sample - piece.input_start
                packets = (packet for packet in source.demux(audio) if packet.pts is not None)  # None: the end
                for index, packet in enumerate(packets):
                    local = int(packet.pts * audio.time_base / sample)
                    if index == 0 and local != -AAC_PRIMING_SAMPLES:
                        raise MediaError(f"{path.name}: the encoder's first packet is at {local}, not -1024")
                    if not kept_from <= local < kept_to:
                        continue
                    placed = local + piece.input_start
                    if placed != expected:
                        raise MediaError(f"{path.name}: a packet at sample {placed} where {expected} was due")
                    duration = int((packet.duration or 0) * audio.time_base / sample)
                    packet.stream = stream
                    packet.time_base = sample
                    packet.pts = packet.dts = placed
                    packet.duration = duration
                    output.mux(packet)
                    expected = placed + duration
    total = pieces[-1][0].end_sample
    if expected != total:
        raise MediaError(f"{destination.name}: the joined audio ends at sample {expected}, the timeline at {total}")
