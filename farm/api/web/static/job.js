// One job, live: the timeline strip, the shots, the edit (player, flagged cuts, loudness, review) and the
// event log, redrawn from the API whenever the job's event stream says something changed.
"use strict";
(() => {
  const section = document.getElementById("job");
  const jobId = section.dataset.job;
  const api = `/api/jobs/${jobId}`;
  const player = document.getElementById("player");
  const KINDS = ["job.submitted", "job.state", "job.driver", "shot.created", "shot.started", "shot.finished",
    "shot.cached", "shot.cancelled", "shot.requeued", "shot.recovered", "shot.failed", "node.blocklisted",
    "render.finished", "edit.recorded", "job.priority", "job.held", "manager.lease", "show.changed",
    "edit.reviewed"];
  let shownEdit = null;
  let pending = null;

  function drawSummary(job) {
    const status = document.getElementById("job-status");
    status.className = "badge " + job.producer_status;
    status.textContent = farm.labels[job.producer_status];
    document.getElementById("job-state").textContent = job.state;
    document.getElementById("job-progress").textContent = `${job.shots.done}/${job.shots.total} shots`;
    document.getElementById("job-edit").textContent =
      job.edit_version ? `v${job.edit_version} ${job.edit_verdict}` : "none yet";
    const review = document.getElementById("review");
    const mayReview = ["producer", "admin"].includes(section.dataset.role);
    review.hidden = !(mayReview && job.edit_version && ["done", "failed"].includes(job.state));
  }

  function drawStrip(shots) {
    const strip = document.getElementById("strip");
    strip.innerHTML = "";
    for (const shot of shots) {
      const item = farm.element("li", { class: `shot ${shot.state}`, "data-shot": shot.shot_id,
        title: `${shot.shot_id}: ${shot.state}` }, farm.element("span", { class: "label" }, shot.shot_id));
      if (shot.state === "done") {
        // lazy: a 1,000-shot strip asks only for the thumbnails on screen
        item.prepend(farm.element("img", { loading: "lazy", alt: "", width: 96, height: 64,
          src: `${api}/shots/${encodeURIComponent(shot.shot_id)}/thumbnail?k=${shot.cache_key}` }));
      }
      strip.append(item);
    }
  }

  function drawShots(shots) {
    const body = document.querySelector("#shots tbody");
    body.innerHTML = "";
    for (const shot of shots) {
      const error = shot.last_error
        ? farm.element("a", { href: `${api}/logs?shot=${encodeURIComponent(shot.shot_id)}&latest=true`,
          target: "_blank" }, shot.last_error)
        : "";
      const progress = shot.state === "running" && shot.progress !== null
        ? `${Math.round(shot.progress * 100)}% ${shot.phase || ""}` : "";
      body.append(farm.element("tr", { "data-shot": shot.shot_id },
        farm.element("td", {}, shot.shot_id),
        farm.element("td", {}, shot.cached ? `${shot.state} (cached)` : shot.state),
        farm.element("td", {}, shot.attempts),
        farm.element("td", {}, shot.worker ? `${shot.worker} ${shot.node || ""}` : "-"),
        farm.element("td", {}, shot.duration_seconds === null ? "-" : `${shot.duration_seconds.toFixed(1)} s`),
        farm.element("td", {}, progress),
        farm.element("td", { class: "error-cell" }, error)));
    }
  }

  function basename(path) { return path ? path.split("/").pop() : null; }

  async function drawEdit(edit) {
    document.getElementById("edit-empty").hidden = true;
    document.getElementById("edit").hidden = false;
    const files = `${api}/edits/${edit.version}/files`;
    document.getElementById("edit-verdict").className = "verdict " + edit.verdict;
    document.getElementById("edit-verdict").textContent = `continuity ${edit.verdict}` +
      (edit.review ? ` · ${edit.review}${edit.review_comment ? ": " + edit.review_comment : ""}` : "");
    document.getElementById("edit-report").href = `${files}/${basename(edit.report_path) || "report.html"}`;
    const video = `${files}/${basename(edit.video_path)}`;
    if (player.dataset.src !== video) {
      player.dataset.src = video;
      player.src = video;
    }
    const report = await farm.call("GET", `${files}/report.json`).catch(() => null);
    const cuts = document.getElementById("cuts");
    cuts.innerHTML = "";
    if (report) {
      const [num, den] = String(report.edit.fps).split("/").map(Number);
      const fps = num / (den || 1);
      const flagged = report.cuts.filter((cut) => cut.verdict === "fail" || cut.verdict === "warn");
      for (const cut of flagged) {
        const seconds = cut.frame / fps;
        const checks = cut.results.filter((r) => r.verdict !== "pass").map((r) => r.check).join(", ");
        const button = farm.element("button", { type: "button", class: cut.verdict, "data-seconds": seconds.toFixed(3),
          "data-cut": `${cut.before}>${cut.after}` },
          `${cut.before} → ${cut.after} at ${seconds.toFixed(2)} s: ${cut.verdict} (${checks})`);
        button.addEventListener("click", () => { player.pause(); player.currentTime = seconds; });
        cuts.append(farm.element("li", {}, button));
      }
      if (!flagged.length) cuts.append(farm.element("li", {}, "none: every cut passed"));
      drawLoudness(edit, report.edit.loudness.target_lufs, report.edit.duration_seconds);
    }
  }

  async function drawLoudness(edit, target, duration) {
    const svg = document.getElementById("loudness");
    const { points } = await farm.call("GET", `${api}/edits/${edit.version}/loudness`);
    const floor = -60;
    const y = (lufs) => 120 - Math.max(0, Math.min(1, (lufs - floor) / -floor)) * 120;
    const x = (t) => (t / Math.max(duration, 0.001)) * 600;
    const line = (key) => points.filter((p) => p[key] !== null).map((p) => `${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
    svg.innerHTML = `<line x1="0" x2="600" y1="${y(target)}" y2="${y(target)}" stroke="#b06000" stroke-dasharray="4 3"/>` +
      `<polyline fill="none" stroke="#1a73e8" stroke-width="1.5" points="${line("momentary")}"/>` +
      `<polyline fill="none" stroke="#137333" stroke-width="1" points="${line("short_term")}"/>`;
    svg.dataset.points = String(points.length);
  }

  async function load() {
    const detail = await farm.call("GET", api);
    drawSummary(detail.job);
    drawStrip(detail.shots);
    drawShots(detail.shots);
    const { latest, versions } = await farm.call("GET", `${api}/edits`);
    const select = document.getElementById("edit-version");
    if (latest && select.options.length !== versions.length) {
      select.innerHTML = "";
      for (const edit of versions) select.append(farm.element("option", { value: edit.version }, `v${edit.version} (${edit.verdict})`));
      select.value = latest.version;
    }
    const chosen = versions.find((edit) => String(edit.version) === select.value) || latest;
    if (chosen && (shownEdit === null || shownEdit.version !== chosen.version || shownEdit.review !== chosen.review)) {
      shownEdit = chosen;
      await drawEdit(chosen);
    }
    section.dataset.loaded = String(Date.now());
  }

  function soon() {
    if (pending) return;
    pending = setTimeout(() => { pending = null; load().catch(console.error); }, 250);
  }

  const LOG_LIMIT = 200;

  function logLine(event) {
    return farm.element("li", {},
      farm.element("span", { class: "kind" }, `${event.at.slice(11, 19)} ${event.kind} `),
      `${event.shot_id ? event.shot_id + " " : ""}${event.message || event.new_state || ""}`);
  }

  async function follow() {
    // The last events first (a long job has 100,000: the log shows the newest), then the stream after them.
    const log = document.getElementById("events");
    const { events } = await farm.call("GET", `${api}/events?limit=${LOG_LIMIT}`);
    for (const event of events) log.prepend(logLine(event));
    const after = events.length ? events[events.length - 1].id : 0;
    const stream = new EventSource(`${api}/events/stream?after=${after}`);
    const show = (message) => {
      log.prepend(logLine(JSON.parse(message.data)));
      while (log.children.length > LOG_LIMIT) log.lastChild.remove();
      soon();
    };
    for (const kind of KINDS) stream.addEventListener(kind, show);
    stream.addEventListener("end", () => { stream.close(); soon(); });
  }

  document.getElementById("edit-version").addEventListener("change", () => { shownEdit = null; load(); });
  async function review(decision) {
    const result = document.getElementById("review-result");
    const shots = document.getElementById("review-shots").value.split(/[\s,]+/).filter(Boolean);
    try {
      const answer = await farm.call("POST", `${api}/review`, {
        review: decision, comment: document.getElementById("review-comment").value, shots });
      result.textContent = `edit v${answer.edit.version} ${answer.edit.review}; status: ${farm.labels[answer.producer_status]}`;
      shownEdit = null;
      await load();
    } catch (failure) {
      result.textContent = failure.message;
    }
  }
  document.getElementById("approve").addEventListener("click", () => review("approved"));
  document.getElementById("retake").addEventListener("click", () => review("retake"));

  load().catch(console.error);
  follow().catch(console.error);
})();
