#!/bin/bash
# Few-step Fashion-MNIST at CPU scale: an EDM teacher (configs/fmnist-edm.toml), then three
# few-step students of the same small U-Net (16 channels x [1, 2, 2], one block per level, no
# attention; float32; batch 32; the same number of updates): sCT (configs/fmnist-scm.toml, no
# teacher), sCD from the teacher (the same config with `loss.teacher`), and progressive
# distillation from the teacher to PD_STEPS DDIM steps (configs/fmnist-progressive.toml). Every
# run is sampled (N images, class-conditional, no guidance) and scored by FMNIST-FD next to the
# teacher sampled with as few steps, with Heun at several step counts and with its own 32-step
# Heun. Two runs at a time, one libtorch thread each. Runs already in OUT (with their samples)
# are kept, so an interrupted call continues where it stopped; OUT remembers the settings it was
# made with and refuses others.
# Usage: bash tools/bench/distill_cpu.sh   (STEPS, BATCH, N, PD_STEPS, SEED, OUT, TIME_SCALE
#   override; RUNS="teacher sct scd pd" picks the runs, e.g. TIME_SCALE=1000 RUNS=sct
#   OUT=out/distill_cpu_ts1000; ~45 min on 2 cores with the defaults)
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-3000}
BATCH=${BATCH:-32}
N=${N:-1000}
PD_STEPS=${PD_STEPS:-8}
SEED=${SEED:-0}
TIME_SCALE=${TIME_SCALE:-1.0}   # sCM students: the U-Net's positional embedding sees t * this
RUNS=" ${RUNS:-teacher sct scd pd} "
OUT=${OUT:-out/distill_cpu}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
KNOBS="STEPS=$STEPS BATCH=$BATCH N=$N PD_STEPS=$PD_STEPS SEED=$SEED TIME_SCALE=$TIME_SCALE"
if [ -f "$OUT/settings" ] && [ "$(cat "$OUT/settings")" != "$KNOBS" ]; then
  echo "$OUT holds runs made with $(cat "$OUT/settings"), not $KNOBS: choose another OUT" >&2
  exit 2
fi
echo "$KNOBS" > "$OUT/settings"
eval "$(cargo xtask env)"
cargo xtask run -- build -q --release -p diffusion --bin diffusion
D=$PWD/target/release/diffusion
SMALL=(--steps "$STEPS" --batch-size "$BATCH" --set model.model_channels=16 --set model.groups=8
  --set model.num_res_blocks=1 --set model.dropout=0.0 --set model.attention_resolutions=[]
  --set train.precision=\"fp32\" --set train.warmup_steps=0 --set train.lr=3e-4
  --set train.sample_every=0 --set train.checkpoint_every=0 --set sample.n="$N"
  --set sample.guidance=1.0 --set cpu_threads=1 --set seed="$SEED")
EMA=(--set train.ema_decays=[0.99,0.999] --set sample.ema=0.99)
fd() { $D eval --fmnist-fd "$1" 2>/dev/null | sed -n 's/^fmnist_fd=\([0-9.]*\).*/\1/p'; }
train() { # name, config, extra options... (a run already in OUT with its samples is kept)
  local name=$1 config=$2; shift 2
  case "$RUNS" in *" $name "*) ;; *) return ;; esac
  if [ -f "$OUT/$name/samples.npy" ]; then echo "$name: kept from an earlier call"; return; fi
  rm -rf "${OUT:?}/$name"
  local t0; t0=$(date +%s)
  $D train --config "$config" --out "$OUT/$name" "${SMALL[@]}" "$@" > "$OUT/$name.log" 2>&1
  echo "$name: $STEPS updates in $(( $(date +%s) - t0 )) s"
}
generate() { # run, out, options... (nothing for a run that is not in OUT)
  local run=$1 out=$2; shift 2
  [ -f "$OUT/$run/config.toml" ] || return 0
  $D generate --run "$OUT/$run" --out "$OUT/$out" "$@" > "$OUT/$out.log" 2>&1
}

# Round 1: the teacher, and sCT (needs no teacher).
train teacher configs/fmnist-edm.toml "${EMA[@]}" &
train sct configs/fmnist-scm.toml "${EMA[@]}" --set loss.warmup_steps=$((STEPS / 10)) \
  --set model.time_scale="$TIME_SCALE" --set sample.steps=1 &
wait
# Round 2: the two students of the teacher.
train scd configs/fmnist-scm.toml "${EMA[@]}" --set loss.warmup_steps=$((STEPS / 10)) \
  --set model.time_scale="$TIME_SCALE" --set sample.steps=1 --set loss.teacher=\""$OUT/teacher"\" &
train pd configs/fmnist-progressive.toml "${EMA[@]}" --set loss.teacher=\""$OUT/teacher"\" \
  --set loss.steps="$PD_STEPS" --set sample.steps="$PD_STEPS" &
wait

# Samples: each student at its step counts, the teacher at the same counts, Heun at several.
generate sct sct_2 --set sample.steps=2
generate scd scd_2 --set sample.steps=2
generate teacher teacher_euler1 --set sample.solver=\"euler\" --set sample.steps=1
generate teacher teacher_euler2 --set sample.solver=\"euler\" --set sample.steps=2
generate teacher teacher_euler_pd --set sample.solver=\"euler\" --set sample.steps="$PD_STEPS"
HEUN="3 4 5 6 $PD_STEPS 16"
for k in $HEUN; do generate teacher "teacher_heun$k" --set sample.steps="$k"; done
printf "%-44s %-5s %s\n" samples nfe fmnist_fd
row() { # label, nfe, sample folder (skipped when absent)
  [ -f "$OUT/$3/samples.npy" ] || return 0
  printf "%-44s %-5s %s\n" "$1" "$2" "$(fd "$OUT/$3/samples.npy")"
}
row "EDM teacher, Heun, 32 steps" 63 teacher
for k in $HEUN; do row "EDM teacher, Heun, $k steps" $((2 * k - 1)) "teacher_heun$k"; done
row "EDM teacher, Euler, $PD_STEPS steps" "$PD_STEPS" teacher_euler_pd
row "EDM teacher, Euler, 2 steps" 2 teacher_euler2
row "EDM teacher, Euler, 1 step" 1 teacher_euler1
row "PD student, DDIM, $PD_STEPS steps" "$PD_STEPS" pd
row "sCT, 1 step" 1 sct
row "sCT, 2 steps" 2 sct_2
row "sCD, 1 step" 1 scd
row "sCD, 2 steps" 2 scd_2
