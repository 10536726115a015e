#!/bin/bash
# Improved DDPM on Fashion-MNIST at CPU scale: one network trained with configs/fmnist-iddpm.toml
# (cosine table, learned variances, hybrid loss) and a small U-Net (16 channels x [1, 2, 2], one
# block per level, attention at 7x7), float32, then N samples of the EMA weights by each sampler
# of the paper's comparison on the same network: the ancestral chain respaced to K steps with the
# learned variances, with the fixed beta~ (fixed-small) and beta (fixed-large) variances, and
# DDIM (eta = 0, diffusers' leading spacing) through the eps half; FMNIST-FD of each (default classifier).
# Usage: bash tools/bench/iddpm_cpu.sh   (STEPS, BATCH, N, K, SEED, THREADS override; ~20 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-800}
BATCH=${BATCH:-32}
N=${N:-1000}
K=${K:-50}
SEED=${SEED:-0}
OUT=${OUT:-out/iddpm_cpu}
mkdir -p "$OUT"
eval "$(cargo xtask env)"
cargo xtask run -- build -q -p diffusion --bin diffusion
D=target/debug/diffusion
RUN=$OUT/run
SMALL=(--set model.model_channels=16 --set model.groups=8 --set model.num_res_blocks=1
  --set model.dropout=0.0 --set train.precision=\"fp32\" --set train.ema_decays=[0.99,0.999]
  --set sample.ema=0.99 --set train.warmup_steps=0 --set train.lr=5e-4 --set seed="$SEED"
  --set train.sample_every=0 --set train.checkpoint_every=0 --set sample.n="$N"
  --set cpu_threads="${THREADS:-0}")
t0=$(date +%s)
$D train --config configs/fmnist-iddpm.toml --out "$RUN" --steps "$STEPS" --batch-size "$BATCH" \
  "${SMALL[@]}" --set sample.steps="$K" > "$OUT/train.log" 2>&1
echo "trained $STEPS updates in $(( $(date +%s) - t0 )) s: $(grep -o 'mean loss of the last [0-9]*: [0-9.]*' "$OUT/train.log")"
mv "$RUN/samples.npy" "$OUT/learned.npy"
printf "%-34s %-6s %s\n" sampler steps fmnist_fd
fd() { $D eval --fmnist-fd "$1" 2>/dev/null | sed -n 's/^fmnist_fd=\([0-9.]*\).*/\1/p'; }
printf "%-34s %-6s %s\n" "ancestral, learned variance" "$K" "$(fd "$OUT/learned.npy")"
# The same checkpoint (0 more updates), sampled again with another sampler or variance.
resample() { # name, --set overrides...
  local name=$1; shift
  $D train --config configs/fmnist-iddpm.toml --out "$RUN" --resume --steps "$STEPS" \
    --batch-size "$BATCH" "${SMALL[@]}" --set sample.steps="$K" "$@" > "$OUT/$name.log" 2>&1
  mv "$RUN/samples.npy" "$OUT/$name.npy"
}
resample fixed_small --set loss.variance=\"fixed-small\"
printf "%-34s %-6s %s\n" "ancestral, fixed beta~ (small)" "$K" "$(fd "$OUT/fixed_small.npy")"
resample fixed_large --set loss.variance=\"fixed-large\"
printf "%-34s %-6s %s\n" "ancestral, fixed beta (large)" "$K" "$(fd "$OUT/fixed_large.npy")"
resample ddim --set sample.solver=\"ddim\" --set sample.grid=\"leading\"   # no x0 clipping
printf "%-34s %-6s %s\n" "ddim, leading, eps half, no clip" "$K" "$(fd "$OUT/ddim.npy")"
