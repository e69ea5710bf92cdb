#!/usr/bin/env bash
# The manager container's command (kubernetes/manager.yaml runs it as `farm-manager`): `farm serve`, joined
# to the cluster's Ray, answering HTTP on 0.0.0.0:8765.
#
# Every setting comes from the environment, none from this command line (any process in the pod can read a
# command line): FARM_RAY_ADDRESS (the head, e.g. farm-head-svc:6379), FARM_DATABASE_URL (from the farm-db
# Secret; farm serve reads it itself), FARM_DATA_DIR, and FARM_LISTEN to listen elsewhere.
set -euo pipefail

: "${FARM_RAY_ADDRESS:?set FARM_RAY_ADDRESS to the Ray head, e.g. farm-head-svc:6379}"
: "${FARM_DATABASE_URL:?set FARM_DATABASE_URL (the Deployment takes it from the farm-db Secret)}"
listen="${FARM_LISTEN:-0.0.0.0:8765}"

# A Ray driver talks to a raylet on its own machine, so the manager's pod joins the cluster as a node, one
# that offers no CPU and no GPU: nothing is ever scheduled here. A ray:// address (Ray Client) needs none.
case "$FARM_RAY_ADDRESS" in
    ray://*) ;;
    *)
        ray start --address "$FARM_RAY_ADDRESS" --num-cpus 0 --num-gpus 0 \
            --object-store-memory "${FARM_OBJECT_STORE_BYTES:-500000000}" --disable-usage-stats
        ;;
esac

exec farm serve --address "$FARM_RAY_ADDRESS" --listen "$listen"
