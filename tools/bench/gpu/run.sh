#!/bin/bash
# The GPU comparison, run on a lent GPU machine (docs/gpu.md and docs/results.md record the
# output). Prepare on the CPU machine (optimised binaries, data and wheels in git-ignored folders
# that the device tool carries):
#   cargo xtask run -- build --release -p diffusion --bin diffusion -p diffusion-benches \
#     --features diffusion-benches/train --bin train_bench --bin sample_bench --bin grad_probe \
#     -p diffusion-bench-ffi
#   mkdir -p .dev/bin .dev/fmnist && cp target/release/{diffusion,train_bench,sample_bench,grad_probe,libdiffusion_bench_ffi.so} .dev/bin/
#   cp /usr/share/datasets/fashion-mnist/*.gz .dev/fmnist/     # all four: train and t10k
#   pip download --no-deps diffusers==0.42.1 importlib_metadata zipp -d .whl
# then, there (carry [".dev", ".whl"]):
#   STEPS=2500 EMA=0.99 SEEDS="0" bash tools/bench/gpu/run.sh          (about 6 minutes on an H100)
# Parts (PARTS, default "doctor train sample quality"; "gradcheck", "profile" and "iddpm" on request):
# - gradcheck: the Rust trainer's gradients (grad_probe, float32 and bf16) next to PyTorch's on
#   the same weights and batch (grad_check.py, the recipe's U-Net and a small DiT): float32, the
#   real CUDA autocast, and CUDA autocast's op lists emulated as on the CPU (which the bf16
#   fixture tests use); seconds;
# - train: training throughput, Rust vs PyTorch (same U-Net, batch 256, AdamW, clipping, EMA;
#   fp32 and bf16; both sides time 150 updates after 15 untimed ones and read the losses back);
# - sample: sampling throughput at 32 network evaluations, 1000 images: Rust `euler` on the Karras
#   grid (sample_bench) vs the same PyTorch U-Net driven by diffusers' EDMEulerScheduler; both
#   build the network first and report the median of REPEATS (5) timed passes after an untimed
#   warm-up pass; ROUNDS (2) rounds alternating which side goes first; then the network alone
#   (`--net-only`: 32 calls on one input per pass, both orders: a slower network or a slower
#   loop around it), one pair with cuDNN's algorithm search on both sides
#   (`--cudnn-benchmark`), and one Rust `heun` row;
# - quality: the same recipe trained for STEPS updates by each side, once per seed of SEEDS,
#   2000 Heun samples each for FMNIST-FD (computed afterwards on the CPU machine: `diffusion eval
#   --fmnist-fd`); then each side samples the other's EMA weights (`diffusion generate --weights`,
#   `train_torch.py --steps 0 --init-weights`): rust_on_torch_seed<s>.npy, torch_on_rust_seed<s>.npy,
#   which tells a training gap from a sampling one. PARALLEL=1 starts every training job of the call at once on the one GPU (the
#   samples do not depend on it; the throughputs those jobs print then do not mean anything);
# - profile: one Euler pass of each side under nsys (kernel totals) when the machine has it, and
#   in any case each side's pass (and network-only pass) under torch.profiler: the Rust one runs
#   inside Python through benches/ffi (profile_rust.py); kernel time vs wall time, the heaviest
#   kernels, operator counts, and a diff of the two sides' events;
# - iddpm: configs/fmnist-iddpm.toml for IDDPM_STEPS updates (EMA 0.999), 1000 samples of the
#   ancestral chain (100 steps) with the learned variances, then the same checkpoint resampled
#   with fixed beta~ and beta variances and with DDIM through the eps half.
# Every job's log goes to $OUT/<job>.log, so a job stopped by its timeout still reports; at the end
# everything under $OUT is packed into $OUT/results.tgz (the device tool returns at most 8 files).
set -u
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")/lib
export DIFFUSION_FMNIST_DIR=$PWD/.dev/fmnist
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site
B=${B:-.dev/bin}
G=tools/bench/gpu
PARTS=${PARTS:-doctor train sample quality}
STEPS=${STEPS:-2000}
EMA=${EMA:-0.99}
SEEDS=${SEEDS:-${SEED:-0}}   # the quality runs' seeds (both sides)
PARALLEL=${PARALLEL:-0}
REPEATS=${REPEATS:-5}
ROUNDS=${ROUNDS:-2}
IDDPM_STEPS=${IDDPM_STEPS:-5000}
JOB_T=${JOB_T:-}   # a timeout (s) for every training job, instead of one from its length
CALL_T=${CALL_T:-0}   # the device call's timeout_s (0: unknown): later steps are skipped near it
DEVICE=${DEVICE:-cuda}   # the quality jobs' device, and NS their number of samples: `DEVICE=cpu NS=8
NS=${NS:-2000}           # STEPS=2 PARTS=quality OUT=/tmp/smoke bash tools/bench/gpu/run.sh` tries them here
CFG=/tmp/fmnist-edm-compare.toml
sed "s/^ema_decays = .*/ema_decays = [$EMA]/; s/^ema = .*/ema = $EMA/" $G/fmnist-edm-compare.toml > $CFG
UNET_TOML='model_channels = 64, channel_mult = [1, 2, 2], num_res_blocks = 2, attention_resolutions = [7], num_heads = 4, groups = 32'
UNET_JSON='{"model_channels": 64, "channel_mult": [1, 2, 2], "num_res_blocks": 2, "attention_resolutions": [7], "num_heads": 4, "groups": 32, "dropout": 0.0}'
has() { [[ " $PARTS " == *" $1 "* ]]; }
stamp() { echo "-- $(date +%T) $*"; }

if has doctor; then
  echo "== device"; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  timeout 20 $B/diffusion doctor 2>&1 | tail -7
fi

if has train; then
  echo "== training throughput (batch 256, 6.9M-parameter U-Net, 150 timed updates after 15)"
  for p in fp32 bf16; do
    timeout 40 python3 tools/bench/train_torch.py --net unet --unet "$UNET_JSON" --device cuda --batch 256 --steps 150 --warmup 15 --precision $p 2>&1 | tail -1
    timeout 40 $B/train_bench --net unet --model "$UNET_TOML" --device cuda --batch 256 --steps 150 --warmup 15 --precision $p --data-dir /tmp/synthetic_fmnist 2>&1 | tail -3
  done
fi

if has gradcheck; then
  echo "== gradients: Rust (float32, bf16) vs PyTorch (float32, autocast, autocast's lists emulated), batch 64: the recipe's U-Net, a small DiT"
  for n in unet dit; do timeout 120 python3 $G/grad_check.py --probe $B/grad_probe --device cuda --batch 64 --net $n 2>&1 | tail -16; done
fi

if has sample; then
  echo "== sampling throughput, 1000 images, 32 evaluations, median of $REPEATS passes (initial weights; the cost does not depend on them)"
  rust_euler() { timeout 60 $B/sample_bench --config $CFG --n 1000 --repeats $REPEATS --set sample.solver=euler --set sample.steps=32 "$@" 2>&1 | tail -1; }
  torch_euler() { timeout 60 python3 $G/sample_diffusers.py --unet "$UNET_JSON" --n 1000 --steps 32 --repeats $REPEATS "$@" 2>&1 | tail -1; }
  for r in $(seq 1 $ROUNDS); do
    if (( r % 2 )); then rust_euler; torch_euler; else torch_euler; rust_euler; fi
  done
  echo "== the network alone: 32 calls on one input per pass (--net-only), both orders"
  rust_euler --net-only; torch_euler --net-only; torch_euler --net-only; rust_euler --net-only
  echo "== the Euler pair with cuDNN's algorithm search on (both sides)"
  rust_euler --cudnn-benchmark; torch_euler --cudnn-benchmark
  timeout 60 $B/sample_bench --config $CFG --n 1000 --repeats 3 --set sample.solver=heun --set sample.steps=32 2>&1 | tail -1
fi

if has profile; then
  # Where the sampling gap goes: one Euler pass of each side under nsys when the machine has it
  # (kernel totals of both sides); in any case both passes under torch.profiler in their own
  # process (the Rust one through benches/ffi, loaded into Python by profile_rust.py), with
  # every operator's and kernel's count and time written for a diff.
  echo "== profile of one Euler pass (32 evaluations, 1000 images)"
  if command -v nsys > /dev/null; then
    nsys profile -o /tmp/prof_rust --force-overwrite true $B/sample_bench --config $CFG --n 1000 --repeats 1 --set sample.solver=euler --set sample.steps=32 > /dev/null 2>&1
    nsys profile -o /tmp/prof_torch --force-overwrite true python3 $G/sample_diffusers.py --unet "$UNET_JSON" --n 1000 --steps 32 --repeats 1 > /dev/null 2>&1
    for side in rust torch; do
      nsys stats --report cuda_gpu_kern_sum --format csv /tmp/prof_$side.nsys-rep > $OUT/profile_$side.csv 2>/dev/null
      echo "-- $side: $(tail -n +2 $OUT/profile_$side.csv | awk -F, '{t += $2; n += $3} END {print t / 1e9 " s in " n " kernels"}')"
    done
  fi
  for mode in "" "--net-only"; do
    PROFILE_COUNTS=$OUT/profile_torch${mode:+_net}.json timeout 120 python3 $G/sample_diffusers.py --unet "$UNET_JSON" --n 1000 --steps 32 --repeats 1 --profile $mode 2>&1 | grep -v "^sample_diffusers\|^net_torch" | tail -22
    PROFILE_COUNTS=$OUT/profile_rust${mode:+_net}.json timeout 120 python3 $G/profile_rust.py --lib $B/libdiffusion_bench_ffi.so --config $CFG --set sample.solver=euler --set sample.steps=32 --n 1000 $mode 2>&1 | tail -22
  done
  python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for tag in ["", "_net"]:
    r = json.load(open(f"{out}/profile_rust{tag}.json"))["events"]
    t = json.load(open(f"{out}/profile_torch{tag}.json"))["events"]
    print(f"-- events whose count or GPU time differ (rust vs torch{', network alone' if tag else ''}):")
    rows = []
    for k in set(r) | set(t):
        a, b = r.get(k, {}), t.get(k, {})
        dc, dg = a.get("count", 0) - b.get("count", 0), a.get("gpu_us", 0) - b.get("gpu_us", 0)
        if dc or abs(dg) > 100:
            rows.append((abs(dg), k, a.get("count", 0), b.get("count", 0), a.get("gpu_us", 0) / 1e3, b.get("gpu_us", 0) / 1e3))
    for _, k, ca, cb, ga, gb in sorted(rows, reverse=True)[:25]:
        print(f"  {k[:70]:70s} count {ca:6d} / {cb:6d}  gpu {ga:8.2f} / {gb:8.2f} ms")
PY
fi

# Training jobs: each is a function writing $OUT/<name>.log; run one after another, or all at once.
JOBS=()
quality_rust() { # seed
  local s=$1 T=${JOB_T:-$((STEPS / 10 + 60))}
  timeout $T $B/diffusion train --config $CFG --out /tmp/rust$s --steps $STEPS --device $DEVICE --set seed=$s --set sample.n=$NS > $OUT/rust_seed$s.log 2>&1
  mv /tmp/rust$s/samples.npy $OUT/rust_heun_seed$s.npy; mv /tmp/rust$s/samples.png $OUT/rust_heun_seed$s.png
  for m in /tmp/rust$s/metrics.*; do cp $m $OUT/rust_metrics_seed$s.${m##*.}; done
}
quality_torch() { # seed
  local s=$1 T=${JOB_T:-$((STEPS / 10 + 60))}
  timeout $T python3 tools/bench/train_torch.py --net unet --unet "$UNET_JSON" --data fmnist --device $DEVICE --batch 256 --steps $STEPS --warmup 0 --precision bf16 --lr 5e-4 --ema $EMA --seed $s --samples $OUT/torch_heun_seed$s.npy --n-samples $NS --sample-steps 32 --save-weights /tmp/torch_ema$s.safetensors > $OUT/torch_seed$s.log 2>&1
}
cross() { # seed: each side samples the other side's EMA weights (2000 EDM-Heun samples, 32 steps)
  local s=$1
  [[ -f /tmp/torch_ema$s.safetensors ]] && timeout 120 $B/diffusion generate --config $CFG --device $DEVICE --weights /tmp/torch_ema$s.safetensors --out /tmp/cross$s --n $NS > $OUT/rust_on_torch_seed$s.log 2>&1 \
    && mv /tmp/cross$s/samples.npy $OUT/rust_on_torch_seed$s.npy
  [[ -f /tmp/rust$s/ema_$EMA.safetensors ]] && timeout 120 python3 tools/bench/train_torch.py --net unet --unet "$UNET_JSON" --data fmnist --device $DEVICE --steps 0 --warmup 0 --init-weights /tmp/rust$s/ema_$EMA.safetensors --seed $s --samples $OUT/torch_on_rust_seed$s.npy --n-samples $NS --sample-steps 32 > $OUT/torch_on_rust_seed$s.log 2>&1
  rm -rf /tmp/cross$s /tmp/rust$s /tmp/torch_ema$s.safetensors
}
iddpm() {
  local R=/tmp/iddpm T=${JOB_T:-$((IDDPM_STEPS / 20 + 120))} I=(--config configs/fmnist-iddpm.toml --out /tmp/iddpm --steps $IDDPM_STEPS
    --set sample.ema=0.999 --set train.sample_every=0 --set train.checkpoint_every=0 --set sample.n=1000)
  timeout $T $B/diffusion train "${I[@]}" > $OUT/iddpm_learned.log 2>&1
  mv $R/samples.npy $OUT/iddpm_learned.npy; mv $R/samples.png $OUT/iddpm_learned.png; for m in $R/metrics.*; do cp $m $OUT/iddpm_metrics.${m##*.}; done
  # The same checkpoint (0 more updates) resampled.
  for v in fixed-small fixed-large; do
    timeout 60 $B/diffusion train "${I[@]}" --resume --set loss.variance=\"$v\" > $OUT/iddpm_$v.log 2>&1
    mv $R/samples.npy $OUT/iddpm_$v.npy
  done
  timeout 60 $B/diffusion train "${I[@]}" --resume --set sample.solver=\"ddim\" --set sample.grid=\"leading\" > $OUT/iddpm_ddim.log 2>&1
  mv $R/samples.npy $OUT/iddpm_ddim.npy
  rm -rf $R
}
if has quality; then for s in $SEEDS; do JOBS+=("quality_rust $s" "quality_torch $s"); done; fi
if has iddpm; then JOBS+=(iddpm); fi
if (( ${#JOBS[@]} )); then
  echo "== training jobs (STEPS=$STEPS EMA=$EMA SEEDS=$SEEDS IDDPM_STEPS=$IDDPM_STEPS PARALLEL=$PARALLEL): ${JOBS[*]}"
  for j in "${JOBS[@]}"; do
    if (( PARALLEL )); then (t0=$SECONDS; $j; stamp "$j done in $((SECONDS - t0)) s") & else t0=$SECONDS; $j; stamp "$j done in $((SECONDS - t0)) s"; fi
  done
  wait
  # The cross-sampling only while the call has time left for it and for packing (CALL_T: the
  # device call's timeout_s; each seed's pair takes about 30 s with the programs' start-up).
  if has quality; then for s in $SEEDS; do
    if (( CALL_T && SECONDS + 45 > CALL_T )); then stamp "cross $s skipped: ${SECONDS} s of CALL_T=$CALL_T used"; continue; fi
    t0=$SECONDS; cross $s; stamp "cross $s done in $((SECONDS - t0)) s"
  done; fi
  for f in $OUT/*.log; do echo "---- $(basename $f)"; grep -v '^\s*$' $f | tail -3; done
fi
# The device tool brings back at most eight files: pack them.
(cd $OUT && ls -la && tar czf /tmp/results.tgz --remove-files -- * && mv /tmp/results.tgz .)
