"""report.json and report.html: every check's verdict, every cut with both sides as thumbnails.

The HTML is one static page with its thumbnails as JPEG files in ``report_files/`` beside it (relative
links), so the folder can be moved, zipped or served as it is. Cuts with a failed check come first,
then warnings, then the rest in edit order; shot- and person-level results follow the same order. A
flagged person-level result (a face that is not its person's) also shows on the cuts into and out of
its shot, where an editor sees the face change.
"""

from __future__ import annotations

import html
import itertools
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from farm import files
from farm.edit.analysis import EditAnalysis, analyse_edit
from farm.edit.assemble import AssemblyResult
from farm.edit.checks.base import CheckResult, SubjectKind, Verdict
from farm.edit.checks.lipsync import LipSyncCheck, lip_sync_table, parse_curve
from farm.edit.retakes import RetakePlan
from farm.edit.timeline import EditShot

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
THUMBNAIL_DIR = "report_files"
_SEVERITY = {Verdict.FAIL: 0, Verdict.WARN: 1, Verdict.SKIP: 2, Verdict.PASS: 3}


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    html: Path
    thumbnails: Path


@dataclass(frozen=True)
class _Cut:
    index: int
    before: EditShot
    after: EditShot
    frame: int
    results: tuple[CheckResult, ...]

    @property
    def worst(self) -> Verdict:
        return min((r.verdict for r in self.results), key=_SEVERITY.__getitem__, default=Verdict.PASS)


def write_report(
    shots: Sequence[EditShot],
    assembly: AssemblyResult,
    results: Sequence[CheckResult],
    out_dir: Path,
    *,
    analysis: EditAnalysis | None = None,
    title: str = "edit",
    retakes: RetakePlan | None = None,
) -> ReportPaths:
    """Write the report; ``retakes`` (the retake plan of these results) adds each retake and why."""
    analysis = analysis or analyse_edit(shots, faces=False)
    thumbnails = _write_thumbnails(shots, analysis, out_dir)
    cuts = _cuts(shots, assembly, results)
    retakes = retakes or RetakePlan((), ())
    document = _report_json(shots, assembly, results, cuts, title)
    document["retakes"] = retakes.to_json()
    json_path = out_dir / REPORT_JSON
    files.write_text(json_path, json.dumps(document, indent=2, ensure_ascii=False) + "\n", fsync=False)
    html_path = out_dir / REPORT_HTML
    files.write_text(html_path, _report_html(shots, assembly, results, cuts, title, retakes), fsync=False)
    return ReportPaths(json_path, html_path, thumbnails)


def summary(results: Sequence[CheckResult]) -> dict[str, object]:
    counts = {verdict.value: sum(1 for r in results if r.verdict is verdict) for verdict in Verdict}
    return {
        "checks": len(results),
        **counts,
        "ok": counts[Verdict.FAIL.value] == 0,
        "retake": sorted({shot for r in results for shot in r.retake}),
    }


def _cuts(shots: Sequence[EditShot], assembly: AssemblyResult, results: Sequence[CheckResult]) -> list[_Cut]:
    cuts = []
    for index, (before, after) in enumerate(itertools.pairwise(shots)):
        related = tuple(
            r
            for r in results
            if (r.subject.kind is SubjectKind.CUT and r.subject.shots == (before.shot_id, after.shot_id))
            or (
                r.subject.kind is SubjectKind.PERSON
                and r.flagged
                and r.subject.shots[0] in (before.shot_id, after.shot_id)
            )
        )
        cuts.append(_Cut(index, before, after, assembly.shot(after.shot_id).span.first_frame, related))
    # cuts between non-adjacent shots (colour compares a person's setups across a scene)
    adjacent = {(c.before.shot_id, c.after.shot_id) for c in cuts}
    by_id = {shot.shot_id: shot for shot in shots}
    for result in results:
        pair = result.subject.shots
        if result.subject.kind is SubjectKind.CUT and pair not in adjacent:
            after = by_id[pair[1]]
            cuts.append(_Cut(len(cuts), by_id[pair[0]], after, assembly.shot(pair[1]).span.first_frame, (result,)))
    return sorted(cuts, key=lambda cut: (_SEVERITY[cut.worst], cut.frame, cut.index))


def _thumb(shot_id: str, side: str) -> str:
    return f"{THUMBNAIL_DIR}/{shot_id}.{side}.jpg"


def _write_thumbnails(shots: Sequence[EditShot], analysis: EditAnalysis, out_dir: Path) -> Path:
    staging = files.temporary_dir(out_dir, prefix=f".{THUMBNAIL_DIR}.")
    try:
        for shot in shots:
            # Inside the staging folder, which is renamed into place whole: no file of it needs its own rename.
            (staging / f"{shot.shot_id}.first.jpg").write_bytes(analysis[shot.shot_id].first_thumbnail)
            (staging / f"{shot.shot_id}.last.jpg").write_bytes(analysis[shot.shot_id].last_thumbnail)
        final = out_dir / THUMBNAIL_DIR
        if final.exists():
            shutil.rmtree(final)
        files.publish(staging, final, fsync=False)  # a folder: renamed whole
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _report_json(
    shots: Sequence[EditShot],
    assembly: AssemblyResult,
    results: Sequence[CheckResult],
    cuts: Sequence[_Cut],
    title: str,
) -> dict[str, object]:
    return {
        "title": title,
        "summary": summary(results),
        "edit": assembly.to_json(),
        "cuts": [
            {
                "before": cut.before.shot_id,
                "after": cut.after.shot_id,
                "frame": cut.frame,
                "verdict": cut.worst.value,
                "thumbnails": {
                    "before": _thumb(cut.before.shot_id, "last"),
                    "after": _thumb(cut.after.shot_id, "first"),
                },
                "results": [r.to_json() for r in cut.results],
            }
            for cut in cuts
        ],
        "shots": [
            {
                "shot": shot.shot_id,
                "scene": shot.scene_id,
                "character": shot.character_id,
                "person": shot.person,
                "cache_key": shot.cache_key,
                "video": str(shot.video),
                "thumbnails": {"first": _thumb(shot.shot_id, "first"), "last": _thumb(shot.shot_id, "last")},
            }
            for shot in shots
        ],
        "lip_sync": lip_sync_table(results),
        "results": [r.to_json() for r in sorted(results, key=lambda r: _SEVERITY[r.verdict])],
    }


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{margin:0 0 4px}table{border-collapse:collapse}td,th{padding:3px 8px;text-align:left;border-bottom:1px solid #ddd}
.cut{border:1px solid #ccc;border-radius:6px;padding:10px;margin:10px 0;display:flex;gap:16px}
.cut img{width:240px;display:block}.sides{display:flex;gap:6px}.sides figure{margin:0}
figcaption{font-size:12px;color:#555}.fail{background:#fde2e1}.warn{background:#fff4cc}
.pass{color:#2b7a2b}.skip{color:#888}.badge{font-weight:bold;text-transform:uppercase;padding:1px 6px;border-radius:4px}
.badge.fail{background:#d93025;color:#fff}.badge.warn{background:#f9ab00;color:#000}.badge.pass{background:#e6f4ea}
.badge.skip{background:#eee}
"""


def _report_html(
    shots: Sequence[EditShot],
    assembly: AssemblyResult,
    results: Sequence[CheckResult],
    cuts: Sequence[_Cut],
    title: str,
    retakes: RetakePlan,
) -> str:
    e = html.escape
    counts = summary(results)
    loud = assembly.to_json()["loudness"]
    assert isinstance(loud, dict)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}: continuity report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1><p>{len(shots)} shots, {assembly.frames} frames at {assembly.fps} fps "
        f"({float(assembly.duration):.2f} s), {assembly.width}x{assembly.height}; "
        f"{assembly.copied} shots stream-copied, {assembly.reencoded} re-encoded.</p>",
        f"<p>Loudness {_num(loud['before']['integrated_lufs'])} LUFS before, "
        f"{_num(loud['after']['integrated_lufs'])} LUFS / {_num(loud['after']['true_peak_dbtp'])} dBTP after "
        f"(target {loud['target_lufs']} LUFS, ceiling {loud['true_peak_ceiling_dbtp']} dBTP, gain {loud['gain_db']} dB"
        f"{', limited by the true-peak ceiling' if loud['peak_limited'] else ''}).</p>",
        _badges(counts),
        _retakes_list(retakes),
        _lip_sync_section(results),
        "<h2>Cuts</h2>",
    ]
    for cut in cuts:
        parts.append(f"<div class='cut {cut.worst.value}'><div class='sides'>")
        parts.append(_figure(_thumb(cut.before.shot_id, "last"), f"{cut.before.shot_id} (last frame)"))
        parts.append(_figure(_thumb(cut.after.shot_id, "first"), f"{cut.after.shot_id} (first frame)"))
        parts.append(f"</div><div><b>{e(cut.before.shot_id)} &rarr; {e(cut.after.shot_id)}</b> at frame {cut.frame}")
        parts.append(_results_table(cut.results) + "</div></div>")
    parts.append("<h2>Shots and people</h2>")
    per_shot = [r for r in results if r.subject.kind is not SubjectKind.CUT]
    by_shot: dict[str, list[CheckResult]] = {}
    for result in per_shot:
        by_shot.setdefault(result.subject.shots[0], []).append(result)
    ordered = sorted(
        shots,
        key=lambda s: min((_SEVERITY[r.verdict] for r in by_shot.get(s.shot_id, [])), default=3),
    )
    for shot in ordered:
        shot_results = by_shot.get(shot.shot_id, [])
        worst = min((r.verdict for r in shot_results), key=_SEVERITY.__getitem__, default=Verdict.PASS)
        parts.append(f"<div class='cut {worst.value}'><div class='sides'>")
        parts.append(_figure(_thumb(shot.shot_id, "first"), f"{shot.shot_id} (first frame)"))
        parts.append(
            f"</div><div><b>{e(shot.shot_id)}</b> scene {e(shot.scene_id)}, {e(shot.character_id)}, "
            f"cache key <code>{e(shot.cache_key[:12])}</code>"
        )
        parts.append(_results_table(shot_results) + "</div></div>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _badges(counts: dict[str, object]) -> str:
    badges = " ".join(
        f"<span class='badge {verdict}'>{counts[verdict]} {label}</span>"
        for verdict, label in (("fail", "fail"), ("warn", "warn"), ("pass", "pass"), ("skip", "skipped"))
    )
    retake = counts["retake"]
    assert isinstance(retake, list)
    return f"<p>{badges}" + (f" &mdash; retake: {html.escape(', '.join(retake))}" if retake else "") + "</p>"


def _retakes_list(plan: RetakePlan) -> str:
    """What is retaken and why, what no retake can fix, and what has no retakes left."""
    e = html.escape
    items = [f"<li><b>{e(r.shot_id)}</b>: {e(r.reason)}</li>" for r in plan.retakes]
    items += [f"<li><b>{e(n.shot_id)}</b> not retaken ({e(n.check)}): {e(n.reason)}</li>" for n in plan.not_retaken]
    items += [f"<li><b>{e(shot)}</b>: no retakes left; it stays failed</li>" for shot in plan.exhausted]
    return f"<h2>Retakes</h2><ul>{''.join(items)}</ul>" if items else ""


def _lip_sync_section(results: Sequence[CheckResult]) -> str:
    """Lag and correlation of every shot and seam; each flagged one with its two curves drawn."""
    rows = lip_sync_table(results)
    if not rows:
        return ""
    e = html.escape
    cells = "".join(
        f"<tr class='{row['verdict']}'><td><span class='badge {row['verdict']}'>{row['verdict']}</span></td>"
        f"<td>{e(str(row['subject']))}</td><td>{_num(row.get('lag_frames'))}</td><td>{_num(row.get('lag_ms'))}</td>"
        f"<td>{_num(row.get('correlation'))}</td></tr>"
        for row in rows
    )
    head = "<tr><th>verdict</th><th>shot</th><th>lag (frames, + sound late)</th><th>lag ms</th><th>r</th></tr>"
    plots = [
        f"<figure><figcaption>{e(r.message)}</figcaption>{lip_sync_svg(r)}</figure>"
        for r in results
        if r.check == LipSyncCheck.name and r.flagged and "mouth_curve" in r.details
    ]
    return f"<h2>Lip sync</h2><table>{head}{cells}</table>" + "".join(plots)


SVG_WIDTH, SVG_HEIGHT = 720, 140


def lip_sync_svg(result: CheckResult) -> str:
    """The mouth opening (blue) and the speech envelope (orange) of one shot, each scaled to its own range."""
    mouth = parse_curve(str(result.details.get("mouth_curve", "")))
    envelope = parse_curve(str(result.details.get("envelope_curve", "")))
    lines = [
        _polyline(mouth, "#1a73e8", "mouth opening (landmarks)"),
        _polyline(envelope, "#e8710a", "speech envelope (dB RMS)"),
    ]
    legend = (
        "<text x='6' y='14' font-size='11' fill='#1a73e8'>mouth opening</text>"
        "<text x='110' y='14' font-size='11' fill='#e8710a'>speech envelope</text>"
        f"<text x='{SVG_WIDTH - 6}' y='14' font-size='11' text-anchor='end'>{len(mouth)} frames</text>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{SVG_WIDTH}' height='{SVG_HEIGHT}' "
        f"viewBox='0 0 {SVG_WIDTH} {SVG_HEIGHT}' style='border:1px solid #ddd'>{legend}{''.join(lines)}</svg>"
    )


def _polyline(curve: object, colour: str, title: str) -> str:
    values = np.asarray(curve, dtype=np.float64)
    known = values[~np.isnan(values)]
    if len(values) < 2 or not len(known):
        return ""
    low, span = float(known.min()), max(float(np.ptp(known)), 1e-9)
    step = SVG_WIDTH / (len(values) - 1)
    points = " ".join(
        f"{index * step:.1f},{SVG_HEIGHT - 8 - (value - low) / span * (SVG_HEIGHT - 30):.1f}"
        for index, value in enumerate(values)
        if not np.isnan(value)
    )
    return (
        f"<polyline fill='none' stroke='{colour}' stroke-width='1.5' points='{points}'>"
        f"<title>{html.escape(title)}</title></polyline>"
    )


def _figure(source: str, caption: str) -> str:
    e = html.escape
    return f"<figure><img src='{e(source)}' alt='{e(caption)}'><figcaption>{e(caption)}</figcaption></figure>"


def _results_table(results: Sequence[CheckResult]) -> str:
    e = html.escape
    rows = [
        f"<tr class='{r.verdict.value}'><td><span class='badge {r.verdict.value}'>{r.verdict.value}</span></td>"
        f"<td>{e(r.check)}</td><td>{_num(r.measured)} / {r.threshold:g} {e(r.unit)}</td>"
        f"<td>{e(r.policy.value)}</td><td>{e(r.message)}</td></tr>"
        for r in sorted(results, key=lambda r: _SEVERITY[r.verdict])
    ]
    head = "<tr><th>verdict</th><th>check</th><th>measured / threshold</th><th>policy</th><th>finding</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _num(value: object) -> str:
    return "&ndash;" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)
