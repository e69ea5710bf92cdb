#!/usr/bin/env bash
# Start the Ray head for farm: it runs drivers and the dashboard (job submission), not renders.
set -euo pipefail
: "${RAY_PORT:=6379}"
: "${DASHBOARD_PORT:=8265}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
ray start --head \
  --port "$RAY_PORT" \
  --dashboard-host 0.0.0.0 --dashboard-port "$DASHBOARD_PORT" \
  --num-gpus 0 \
  --num-cpus "${HEAD_CPUS:-4}" \
  --system-config '{"health_check_period_ms": 1000, "health_check_failure_threshold": 5}'
echo "head ready: workers join with infra/ray/start-worker.sh $(hostname -I | awk '{print $1}'):$RAY_PORT"
