#!/usr/bin/env bash
# Join a GPU node to the farm Ray cluster: one render slot per GPU.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 HEAD_IP:PORT" >&2
  exit 2
fi
GPUS="${GPUS:-$(nvidia-smi --list-gpus 2>/dev/null | wc -l)}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
export FARM_WEIGHTS_DIR="${FARM_WEIGHTS_DIR:-/mnt/farm/weights}"
ray start --address "$1" --num-gpus "$GPUS" --num-cpus "${CPUS:-$((GPUS * 4))}"
