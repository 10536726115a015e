#!/bin/bash
# Quality, Rust vs PyTorch, several seeds, at CPU scale: the GPU comparison's recipe
# (tools/bench/gpu/fmnist-edm-compare.toml = train_torch.py --net unet --data fmnist flags: EDM
# loss, AdamW 5e-4 constant, clipping at 1, EMA without warmup, batches with replacement, no
# flips) with a small U-Net (16 channels x [1, 2, 2], 1 block per level, attention at 7x7) in
# float32, trained for the same number of updates by each side from SEEDS, then N EDM-Heun
# samples of the EMA weights each and their FMNIST-FD (default classifier); then each side samples
# the other side's EMA weights (rows rust_on_torch: `diffusion generate --weights`, torch_on_rust:
# `train_torch.py --steps 0 --init-weights`), so a gap shows whether it is the training's or the
# sampler's.
# Usage: bash tools/bench/quality_cpu.sh   (STEPS, BATCH, EMA, N, SEEDS override; ~10 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-600}
BATCH=${BATCH:-32}
EMA=${EMA:-0.99}
N=${N:-1000}
SEEDS=${SEEDS:-"0 1 2"}
OUT=${OUT:-out/quality_cpu}
mkdir -p "$OUT"
eval "$(cargo xtask env)"
PY=python3   # the xtask venv (on PATH after `cargo xtask env`)
cargo xtask run -- build -q -p diffusion --bin diffusion
D=target/debug/diffusion
UNET_JSON='{"model_channels": 16, "channel_mult": [1, 2, 2], "num_res_blocks": 1, "attention_resolutions": [7], "num_heads": 4, "groups": 8, "dropout": 0.0}'
CFG=$OUT/recipe.toml
sed "s/^ema_decays = .*/ema_decays = [$EMA]/; s/^ema = .*/ema = $EMA/" tools/bench/gpu/fmnist-edm-compare.toml > "$CFG"
printf "%-6s %-14s %-12s %s\n" seed side fmnist_fd train_s
for s in $SEEDS; do
  t0=$(date +%s)
  rm -rf "$OUT/rust_$s"
  $D train --config $CFG --out "$OUT/rust_$s" --steps "$STEPS" --batch-size "$BATCH" \
    --set device=\"cpu\" --set cpu_threads=0 --set seed="$s" --set train.precision=\"fp32\" \
    --set model.groups=8 --set model.model_channels=16 --set model.num_res_blocks=1 \
    --set sample.n="$N" \
    --set sample.steps=16 > "$OUT/rust_$s.log" 2>&1
  t1=$(date +%s)
  fd=$($D eval --fmnist-fd "$OUT/rust_$s/samples.npy" 2>/dev/null | sed -n 's/^fmnist_fd=\([0-9.]*\).*/\1/p')
  printf "%-6s %-14s %-12s %s\n" "$s" rust "$fd" $((t1 - t0))
  t0=$(date +%s)
  $PY tools/bench/train_torch.py --net unet --unet "$UNET_JSON" --data fmnist --device cpu \
    --threads 2 --batch "$BATCH" --steps "$STEPS" --warmup 0 --precision fp32 --lr 5e-4 \
    --ema "$EMA" --seed "$s" --samples "$OUT/torch_$s.npy" --n-samples "$N" --sample-steps 16 \
    --save-weights "$OUT/torch_$s.safetensors" > "$OUT/torch_$s.log" 2>&1
  t1=$(date +%s)
  fd=$($D eval --fmnist-fd "$OUT/torch_$s.npy" 2>/dev/null | sed -n 's/^fmnist_fd=\([0-9.]*\).*/\1/p')
  printf "%-6s %-14s %-12s %s\n" "$s" torch "$fd" $((t1 - t0))
  rm -rf "$OUT/rust_on_torch_$s"
  $D generate --config "$OUT/rust_$s/config.toml" --weights "$OUT/torch_$s.safetensors" \
    --out "$OUT/rust_on_torch_$s" > "$OUT/rust_on_torch_$s.log" 2>&1
  fd=$($D eval --fmnist-fd "$OUT/rust_on_torch_$s/samples.npy" 2>/dev/null | sed -n 's/^fmnist_fd=\([0-9.]*\).*/\1/p')
  printf "%-6s %-14s %-12s %s\n" "$s" rust_on_torch "$fd" -
  $PY tools/bench/train_torch.py --net unet --unet "$UNET_JSON" --data fmnist --device cpu \
    --threads 2 --steps 0 --warmup 0 --seed "$s" --init-weights "$OUT/rust_$s/ema_$EMA.safetensors" \
    --samples "$OUT/torch_on_rust_$s.npy" --n-samples "$N" --sample-steps 16 > "$OUT/torch_on_rust_$s.log" 2>&1
  fd=$($D eval --fmnist-fd "$OUT/torch_on_rust_$s.npy" 2>/dev/null | sed -n 's/^fmnist_fd=\([0-9.]*\).*/\1/p')
  printf "%-6s %-14s %-12s %s\n" "$s" torch_on_rust "$fd" -
done
