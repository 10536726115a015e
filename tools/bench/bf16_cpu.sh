#!/bin/bash
# bf16 training checked on the CPU (DIFFUSION_BF16_ON_CPU=1 forces the CUDA code path: the
# bfloat16 compute copy, flat buffers, float32 masters) for one or more `diffusion` binaries side
# by side, e.g. the current build against an older commit's:
#   git worktree add /tmp/old adfeb86 && (cd /tmp/old && cargo xtask run -- build --release -p diffusion --bin diffusion)
#   BINS="target/release/diffusion /tmp/old/target/release/diffusion" bash tools/bench/bf16_cpu.sh
# MODE=fmnist (default): the recipe of tools/bench/quality_cpu.sh (small U-Net, 600 updates at
#   batch 32, EMA 0.99, 1000 EDM-Heun samples), FMNIST-FD per run (about 70 s per run on 2 cores);
# MODE=toy: configs/toy2d-edm.toml (MLP with Fourier features), sliced W2 per run (seconds).
# PRECISIONS (default "bf16") may add fp32; SEEDS default "0 1 2 3 4 5 6 7 8 9".
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${MODE:-fmnist}
BINS=${BINS:-target/release/diffusion}
PRECISIONS=${PRECISIONS:-bf16}
SEEDS=${SEEDS:-"0 1 2 3 4 5 6 7 8 9"}
OUT=${OUT:-out/bf16_cpu}
mkdir -p "$OUT"
eval "$(cargo xtask env)"
cargo xtask run -- build -q --release -p diffusion --bin diffusion
CFG=$OUT/recipe.toml
sed "s/^ema_decays = .*/ema_decays = [0.99]/; s/^ema = .*/ema = 0.99/" tools/bench/gpu/fmnist-edm-compare.toml > "$CFG"
for s in $SEEDS; do
  for b in $BINS; do
    for p in $PRECISIONS; do
      run=$OUT/$(echo "$b" | tr '/' '_')_${p}_$s
      rm -rf "$run"
      if [ "$MODE" = toy ]; then
        line=$(DIFFUSION_BF16_ON_CPU=1 $b train --config configs/toy2d-edm.toml --out "$run" \
          --set seed="$s" --set train.precision=\"$p\" 2>&1 | grep -o 'sliced_w2=[0-9.]*')
      else
        DIFFUSION_BF16_ON_CPU=1 $b train --config "$CFG" --out "$run" --steps 600 --batch-size 32 \
          --set device=\"cpu\" --set cpu_threads=0 --set seed="$s" --set train.precision=\"$p\" \
          --set model.groups=8 --set model.model_channels=16 --set model.num_res_blocks=1 \
          --set sample.n=1000 --set sample.steps=16 > "$run.log" 2>&1
        line=$(target/release/diffusion eval --fmnist-fd "$run/samples.npy" 2>/dev/null | grep -o 'fmnist_fd=[0-9.]*')
      fi
      echo "seed=$s bin=$b precision=$p $line"
    done
  done
done
