// The jobs page: every few seconds, each row's status, edit, state, progress and GPU-hours from /api/jobs.
"use strict";
(() => {
  const table = document.getElementById("jobs");
  async function refresh() {
    const { jobs } = await farm.call("GET", "/api/jobs?limit=200");
    for (const job of jobs) {
      const row = table.querySelector(`tr[data-job="${job.id}"]`);
      if (!row) continue;
      row.className = "status-" + job.producer_status;
      const status = row.querySelector('[data-field="status"]');
      status.className = "badge " + job.producer_status;
      status.textContent = farm.labels[job.producer_status];
      row.querySelector('[data-field="state"]').textContent = job.state;
      row.querySelector('[data-field="edit"]').innerHTML = "";
      row.querySelector('[data-field="edit"]').append(job.edit_version
        ? farm.element("span", { class: "verdict " + job.edit_verdict }, `v${job.edit_version} ${job.edit_verdict}`)
        : "-");
      const progress = row.querySelector('[data-field="progress"]');
      progress.innerHTML = "";
      progress.append(farm.element("progress", { max: 1, value: job.shots.fraction_done }),
        ` ${job.shots.done}/${job.shots.total}`);
      row.querySelector('[data-field="gpu"]').textContent = job.gpu_hours.toFixed(2);
    }
  }
  setInterval(() => refresh().catch(() => {}), 5000);
})();
