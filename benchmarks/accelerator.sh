#!/usr/bin/env bash
# PPO steps/s (gymnax CartPole and MinAtar Breakout, 1/256/2048 seeds), a quickstart
# generation and Brax PPO on whatever device jax finds; --quick for a CPU-sized run.
# Run from the repository root: bash benchmarks/accelerator.sh [--quick]
set -euo pipefail
python "$(dirname "$0")/accelerator.py" "$@"
