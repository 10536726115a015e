#!/bin/bash
# The GPU comparison, run once on a lent GPU machine (docs/gpu.md and docs/results.md record the
# output). Prepare on the CPU machine (optimised binaries, data and wheels in git-ignored folders
# that the device tool carries):
#   cargo xtask run -- build --release -p diffusion --bin diffusion -p diffusion-benches \
#     --features diffusion-benches/train --bin train_bench --bin sample_bench
#   mkdir -p .dev/bin .dev/fmnist && cp target/release/{diffusion,train_bench,sample_bench} .dev/bin/
#   cp /usr/share/datasets/fashion-mnist/*.gz .dev/fmnist/     # all four: train and t10k
#   pip download --no-deps diffusers==0.42.1 importlib_metadata zipp -d .whl
# then, there: STEPS=2500 EMA=0.99 SEED=0 bash tools/bench/gpu/run.sh   (about 6 minutes on an H100)
# 1. training throughput, Rust vs PyTorch (same U-Net, batch 256, AdamW, clipping, EMA; fp32 and
#    bf16; both sides time 150 updates after 15 untimed ones and read the losses back at the end);
# 2. sampling throughput at 32 network evaluations, 1000 images: Rust `euler` on the Karras grid
#    (sample_bench) vs the same PyTorch U-Net driven by diffusers' EDMEulerScheduler; both build
#    the network first and report the median of three timed passes after an untimed warm-up
#    pass; then both again with cuDNN's algorithm search (`--cudnn-benchmark`);
# 3. the same recipe trained for the same number of updates by each, 2000 Heun samples each for
#    FMNIST-FD (computed afterwards on the CPU machine: `diffusion eval --fmnist-fd`).
set -u
export PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")/lib
export DIFFUSION_FMNIST_DIR=$PWD/.dev/fmnist
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site
B=.dev/bin
G=tools/bench/gpu
STEPS=${STEPS:-2000}
EMA=${EMA:-0.99}
SEED=${SEED:-0}   # the quality run's seed (both sides); run once per seed for a spread
CFG=/tmp/fmnist-edm-compare.toml
sed "s/^ema_decays = .*/ema_decays = [$EMA]/; s/^ema = .*/ema = $EMA/" $G/fmnist-edm-compare.toml > $CFG
T=$((STEPS / 10 + 60))
UNET_TOML='model_channels = 64, channel_mult = [1, 2, 2], num_res_blocks = 2, attention_resolutions = [7], num_heads = 4, groups = 32'
UNET_JSON='{"model_channels": 64, "channel_mult": [1, 2, 2], "num_res_blocks": 2, "attention_resolutions": [7], "num_heads": 4, "groups": 32, "dropout": 0.0}'
echo "== device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
timeout 20 $B/diffusion doctor 2>&1 | tail -7
echo "== 1. training throughput (batch 256, 6.9M-parameter U-Net, 150 timed updates after 15)"
for p in fp32 bf16; do
  timeout 40 python3 tools/bench/train_torch.py --net unet --unet "$UNET_JSON" --device cuda --batch 256 --steps 150 --warmup 15 --precision $p 2>&1 | tail -1
  timeout 40 $B/train_bench --net unet --model "$UNET_TOML" --device cuda --batch 256 --steps 150 --warmup 15 --precision $p --data-dir /tmp/synthetic_fmnist 2>&1 | tail -3
done
echo "== 2. sampling throughput, 1000 images, 32 evaluations (initial weights; the cost does not depend on them)"
timeout 60 $B/sample_bench --config $CFG --n 1000 --set sample.solver=euler --set sample.steps=32 2>&1 | tail -2
timeout 60 python3 $G/sample_diffusers.py --unet "$UNET_JSON" --n 1000 --steps 32 2>&1 | tail -1
timeout 60 $B/sample_bench --config $CFG --n 1000 --set sample.solver=heun --set sample.steps=32 2>&1 | tail -2
echo "== 2b. the same two Euler runs with cuDNN's algorithm search on (both sides)"
timeout 60 $B/sample_bench --config $CFG --n 1000 --set sample.solver=euler --set sample.steps=32 --cudnn-benchmark 2>&1 | tail -2
timeout 60 python3 $G/sample_diffusers.py --unet "$UNET_JSON" --n 1000 --steps 32 --cudnn-benchmark 2>&1 | tail -1
echo "== 3. same recipe, $STEPS updates each (EMA $EMA), 2000 Heun samples each"
timeout $T $B/diffusion train --config $CFG --out $OUT/rust --steps $STEPS --set seed=$SEED 2>&1 | grep -v '^\s*$' | tail -4
mv $OUT/rust/samples.npy $OUT/rust_heun.npy; mv $OUT/rust/samples.png $OUT/rust_heun.png; cp $OUT/rust/metrics.* $OUT/ 2>/dev/null
rm -rf $OUT/rust
timeout $T python3 tools/bench/train_torch.py --net unet --unet "$UNET_JSON" --data fmnist --device cuda --batch 256 --steps $STEPS --warmup 0 --precision bf16 --lr 5e-4 --ema $EMA --seed $SEED --samples $OUT/torch_heun.npy --n-samples 2000 --sample-steps 32 2>&1 | tail -2
ls -la $OUT
