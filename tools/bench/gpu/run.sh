#!/bin/bash
# The GPU comparison, run once on a lent GPU machine (see docs/gpu.md for the recorded output).
# Prepare on the CPU machine (release-like build of the two binaries, data and wheels in git-ignored
# folders that the device tool carries):
#   CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo xtask run -- build -p diffusion --bin diffusion
#   CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo xtask run -- build -p diffusion-benches --features train --bin train_bench
#   mkdir -p .dev/bin .dev/fmnist && cp target/debug/{diffusion,train_bench} .dev/bin/
#   cp /usr/share/datasets/fashion-mnist/*.gz .dev/fmnist/
#   pip download --no-deps diffusers==0.42.1 importlib_metadata zipp -d .whl
# then, there: bash tools/bench/gpu/run.sh   (about 5 minutes on an H100/H200)
# 1. training throughput, Rust vs PyTorch (same U-Net, batch, AdamW, EMA, fp32 and bf16);
# 2. the same recipe trained for the same number of updates by each, samples saved for FMNIST-FD;
# 3. sampling throughput at 32 network evaluations: Rust `euler` on the Karras grid vs the same
#    weights in the PyTorch U-Net driven by diffusers' EDMEulerScheduler.
set -u
export PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")/lib
export DIFFUSION_FMNIST_DIR=$PWD/.dev/fmnist
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site
B=.dev/bin
G=tools/bench/gpu
STEPS=${STEPS:-400}
EMA=${EMA:-0.999}
# The recipe with the chosen EMA decay (STEPS=3000 EMA=0.99 for a quality comparison).
CFG=/tmp/fmnist-edm-compare.toml
sed "s/^ema_decays = .*/ema_decays = [$EMA]/; s/^ema = .*/ema = $EMA/" $G/fmnist-edm-compare.toml > $CFG
T=$((STEPS / 8 + 40))
UNET_TOML='model_channels = 64, channel_mult = [1, 2, 2], num_res_blocks = 2, attention_resolutions = [7], num_heads = 4, groups = 32'
UNET_JSON='{"model_channels": 64, "channel_mult": [1, 2, 2], "num_res_blocks": 2, "attention_resolutions": [7], "num_heads": 4, "groups": 32, "dropout": 0.0}'
echo "== device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
timeout 20 $B/diffusion doctor 2>&1 | tail -7
echo "== 1. training throughput (batch 256, 6.9M-parameter U-Net; PyTorch 150 timed updates after 15, Rust 150 updates from a cold start)"
for p in fp32 bf16; do
  timeout 30 python3 tools/bench/train_torch.py --net unet --unet "$UNET_JSON" --device cuda --batch 256 --steps 150 --warmup 15 --precision $p 2>&1 | tail -1
done
timeout 40 $B/diffusion train --config $G/fmnist-edm-compare.toml --out $OUT/r32 --steps 150 --set train.precision=fp32 --set sample.n=16 --set sample.steps=2 2>&1 | grep "updates in"
rm -rf $OUT/r32
echo "== 2. same recipe, $STEPS updates each, 2000 Heun samples each"
timeout $T $B/diffusion train --config $CFG --out $OUT/rust --steps $STEPS 2>&1 | grep -v '^\s*$' | tail -4
mv $OUT/rust/samples.npy $OUT/rust_heun.npy; mv $OUT/rust/samples.png $OUT/rust_heun.png; cp $OUT/rust/metrics.* $OUT/ 2>/dev/null
timeout $T python3 tools/bench/train_torch.py --net unet --unet "$UNET_JSON" --data fmnist --device cuda --batch 256 --steps $STEPS --warmup 0 --precision bf16 --lr 5e-4 --ema $EMA --samples $OUT/torch_heun.npy --n-samples 2000 --sample-steps 32 2>&1 | tail -2
echo "== 3. sampling throughput, 1000 images, 32 evaluations"
timeout 30 $B/diffusion train --config $CFG --out $OUT/rust --steps $STEPS --resume --set sample.solver=euler --set sample.n=1000 2>&1 | grep -v '^\s*$' | tail -2
timeout 30 python3 $G/sample_diffusers.py --weights $OUT/rust/ema_$EMA.safetensors --unet "$UNET_JSON" --n 1000 --steps 32 2>&1 | tail -1
rm -rf $OUT/rust
ls -la $OUT
