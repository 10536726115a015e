#!/bin/bash
# One GPU check (for a lent GPU machine; build and stage first on the CPU machine:
#   cargo xtask run -- build -p diffusion --bin diffusion
#   cargo xtask run -- build -p diffusion-benches --features train --bin train_bench
#   mkdir -p .dev/bin .dev/fmnist && cp target/debug/{diffusion,train_bench} .dev/bin/
#   cp /usr/share/datasets/fashion-mnist/*.gz .dev/fmnist/
# then run `bash tools/bench/gpu_check.sh` there with .dev carried): doctor, the 6M U-Net's
# training throughput at batch 256 (Rust fp32/bf16 next to PyTorch fp32/bf16), train_torch.py
# sampling to .npy, and a short fmnist-edm run in bf16 that writes samples and grids.
export LD_LIBRARY_PATH=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")/lib
export DIFFUSION_FMNIST_DIR=$PWD/.dev/fmnist
B=.dev/bin
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__)"
$B/diffusion doctor 2>&1 | tail -6
UNET='model_channels = 64, channel_mult = [1, 2, 2], num_res_blocks = 2, attention_resolutions = [7], num_heads = 4, groups = 32'
PUNET='{"model_channels": 64, "channel_mult": [1, 2, 2], "num_res_blocks": 2, "attention_resolutions": [7], "num_heads": 4, "groups": 32, "dropout": 0.0}'
for p in fp32 bf16; do
  timeout 90 $B/train_bench --net unet --model "$UNET" --device cuda --batch 256 --steps 150 --warmup 15 --precision $p --data-dir $OUT/syn 2>&1 | tail -2
  timeout 90 python3 tools/bench/train_torch.py --net unet --unet "$PUNET" --device cuda --batch 256 --steps 150 --warmup 15 --precision $p 2>&1 | tail -2
done
timeout 60 python3 tools/bench/train_torch.py --net unet --unet "$PUNET" --data fmnist --device cuda --batch 256 --steps 50 --warmup 2 --precision bf16 --samples $OUT/torch_samples.npy --n-samples 64 --sample-steps 18 2>&1 | tail -2
timeout 170 $B/diffusion train --config configs/fmnist-edm.toml --out $OUT/edm --steps 1500 --set sample.n=500 --set train.sample_every=750 --set train.checkpoint_every=0 --set train.log_every=200 2>&1 | grep -v "^\s*$" | tail -8
rm -f $OUT/edm/*.safetensors
ls -la $OUT/edm $OUT/edm/samples
