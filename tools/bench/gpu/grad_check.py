"""The Rust trainer's gradients next to PyTorch's on the same weights and inputs (float32 and bf16).

Writes a PyTorch U-Net's weights (tools/torch_ref/nets.py, seeded; its zero-initialised layers
given small random values so that every gradient is non-trivial) and one batch of EDM-loss inputs
(Fashion-MNIST images when the data set is found, else uniform noise; log-normal noise levels and
standard normal noise), runs `grad_probe` (benches/src/bin/grad_probe.rs: `Trainer::
loss_gradients`, the trainer's own forward/backward path) in float32 and in bf16, and computes
the same loss and gradients in PyTorch: float32, under `torch.autocast(bfloat16)`, and under
autocast once more with the batch rows permuted (the same arithmetic summed in another order:
the floor of what two correct bf16 implementations can agree to).

On CUDA this answers whether the Rust bf16 copy computes what autocast computes: its distance
to autocast's gradients should sit near that floor, far below bf16's distance to float32. On the
CPU, PyTorch's autocast follows the CPU op lists (GroupNorm, LayerNorm and softmax in bfloat16),
which are not the CUDA lists the Rust copy follows, so there only the float32 rows compare like
with like. Prints a table per parameter group and one parseable line:

    grad_check device=cuda fp32_rel=... autocast_vs_fp32=... floor=... rust_bf16_vs_autocast=... rust_bf16_vs_fp32=... ratio_to_floor=...

Usage (run.sh's `gradcheck` part; on the CPU as well, with `--device cpu`, where the probe needs
DIFFUSION_BF16_ON_CPU=1, set here); `--net dit` checks a small DiT instead of the recipe's U-Net:
    python3 tools/bench/gpu/grad_check.py --probe .dev/bin/grad_probe --device cuda [--net dit]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "torch_ref"))
sys.path.insert(0, os.path.join(HERE, ".."))
import nets  # noqa: E402
from autocast_lists import loss_and_grads  # noqa: E402
from rust_config import toml_value  # noqa: E402
from train_torch import read_idx  # noqa: E402

# The recipe's U-Net (tools/bench/gpu/fmnist-edm-compare.toml) and a small DiT for 28x28 images.
MODELS = {
    "unet": {"model_channels": 64, "channel_mult": [1, 2, 2], "num_res_blocks": 2, "attention_resolutions": [7],
             "num_heads": 4, "groups": 32, "dropout": 0.0},
    "dit": {"patch_size": 2, "hidden": 96, "depth": 4, "num_heads": 4, "mlp_ratio": 4.0},
}
CLASSES = {"unet": nets.UNet, "dit": nets.DiT}


def probe_config(net, cfg, device, batch, sigma_data):
    """The grad_probe's training config: Fashion-MNIST data, the network, the EDM loss; libtorch's
    own thread count on the CPU (`cpu_threads = 0`), as PyTorch here, since the CPU kernels'
    float32 sums depend on how many threads split them."""
    lines = ["seed = 0", f'device = "{device}"', "cpu_threads = 0", "[data]",
             'fmnist = { flip = false, classes = false, sampling = "replacement" }',
             "[model]", f'kind = "{net}"']
    lines += [f"{k} = {toml_value(v)}" for k, v in cfg.items()]
    lines += ["[loss]", 'kind = "edm"', f"sigma_data = {sigma_data}", "[train]", "steps = 1",
              f"batch_size = {batch}"]
    return "\n".join(lines) + "\n"


def group(name):
    if "norm" in name:
        return "norm affine"
    if "time" in name or "t_embedder" in name or ".emb." in name:
        return "time embedding"
    if "qkv" in name or "proj" in name:
        return "attention"
    if "adaLN" in name:
        return "adaLN modulation"
    if "mlp.fc" in name:
        return "transformer mlp"
    return "other bias" if name.endswith("bias") else "other weight"


def rel(a, b, names):
    num = sum(float((a[n] - b[n]).double().square().sum()) for n in names)
    den = sum(float(b[n].double().square().sum()) for n in names)
    return math.sqrt(num / den) if den > 0 else float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--probe", default=".dev/bin/grad_probe", help="the grad_probe binary")
    p.add_argument("--net", choices=sorted(MODELS), default="unet")
    p.add_argument("--model", default=None,
                   help="the network's fields as JSON (the Rust UNetConfig's / DitConfig's; default: MODELS[--net])")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sigma-data", type=float, default=0.5)
    p.add_argument("--keep", default=None, help="keep the inputs and outputs in this folder")
    a = p.parse_args()
    cfg = json.loads(a.model) if a.model else MODELS[a.net]
    dev = torch.device(a.device)
    torch.manual_seed(a.seed)
    net = CLASSES[a.net](**cfg)
    with torch.no_grad():
        for q in net.parameters():
            if q.abs().max() == 0:
                q.normal_(0.0, 0.02)
    g = torch.Generator().manual_seed(a.seed + 1)
    fm = os.environ.get("DIFFUSION_FMNIST_DIR") or "/usr/share/datasets/fashion-mnist"
    path = os.path.join(fm, "train-images-idx3-ubyte.gz")
    if os.path.exists(path):
        imgs = torch.from_numpy(read_idx(path)[: a.batch].copy()).float().div(127.5).sub(1).unsqueeze(1)
        data = "fmnist"
    else:
        imgs = torch.rand(a.batch, 1, 28, 28, generator=g) * 2 - 1
        data = "uniform"
    sigma = (torch.randn(a.batch, generator=g, dtype=torch.float64) * 1.2 - 1.2).exp().float().double()
    noise = torch.randn(a.batch, 1, 28, 28, generator=g)
    work = a.keep or tempfile.mkdtemp(prefix="grad_check_")
    os.makedirs(work, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, os.path.join(work, "weights.safetensors"))
    save_file({"x0": imgs, "sigma": sigma, "noise": noise}, os.path.join(work, "inputs.safetensors"))

    config = os.path.join(work, "config.toml")
    with open(config, "w") as f:
        f.write(probe_config(a.net, cfg, a.device, a.batch, a.sigma_data))
    env = dict(os.environ, DIFFUSION_BF16_ON_CPU="1")
    rust = {}
    for prec in ["fp32", "bf16"]:
        out = os.path.join(work, f"rust_{prec}.safetensors")
        cmd = [a.probe, "--config", config, "--set", f'train.precision="{prec}"',
               "--weights", os.path.join(work, "weights.safetensors"),
               "--inputs", os.path.join(work, "inputs.safetensors"), "--out", out]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"grad_probe failed ({prec}):\n{r.stderr}")
        print(r.stdout.strip().splitlines()[-1], flush=True)
        t = load_file(out)
        rust[prec] = (float(t["loss"][0]), {k[5:]: v.float() for k, v in t.items() if k.startswith("grad.")})

    net = net.to(dev).train()
    x0, sg, nz = imgs.to(dev), sigma.float().to(dev), noise.to(dev)
    perm = torch.randperm(a.batch, generator=g).to(dev)
    ref = {
        "torch_fp32": loss_and_grads(net, x0, sg, nz, a.sigma_data, "fp32"),
        "autocast": loss_and_grads(net, x0, sg, nz, a.sigma_data, "autocast"),
        "autocast_perm": loss_and_grads(net, x0, sg, nz, a.sigma_data, "autocast", perm),
        "cuda_lists": loss_and_grads(net, x0, sg, nz, a.sigma_data, "cuda_lists"),
        "rust_fp32": rust["fp32"],
        "rust_bf16": rust["bf16"],
    }
    names = list(ref["torch_fp32"][1])
    missing = [n for n in names if n not in rust["bf16"][1]]
    if missing:
        sys.exit(f"the probe has no gradient for {missing}")
    pairs = [("rust_fp32", "torch_fp32"), ("autocast", "torch_fp32"), ("autocast_perm", "autocast"),
             ("cuda_lists", "autocast"), ("rust_bf16", "cuda_lists"), ("rust_bf16", "autocast")]
    groups = sorted({group(n) for n in names})
    print(f"net={a.net} device={a.device} data={data} batch={a.batch} params={len(names)} "
          f"losses: " + " ".join(f"{k}={v[0]:.7f}" for k, v in ref.items()))
    print(f"{'relative gradient distance':24s}" + "".join(f"{x + ':' + y:>25s}" for x, y in pairs))
    for gname in groups + ["all"]:
        sel = names if gname == "all" else [n for n in names if group(n) == gname]
        print(f"{gname + f' ({len(sel)})':24s}" + "".join(f"{rel(ref[x][1], ref[y][1], sel):25.3e}" for x, y in pairs))
    print("parameters farthest from the CUDA lists (rust_bf16:cuda_lists; autocast:torch_fp32 for scale):")
    per = sorted(((rel(ref["rust_bf16"][1], ref["cuda_lists"][1], [n]), n) for n in names), reverse=True)
    for d, n in per[:8]:
        print(f"  {n:40s} {d:10.3e}   bf16 scale {rel(ref['autocast'][1], ref['torch_fp32'][1], [n]):10.3e}")
    d = {f"{x}:{y}": rel(ref[x][1], ref[y][1], names) for x, y in pairs}
    print(f"grad_check net={a.net} device={a.device} fp32_rel={d['rust_fp32:torch_fp32']:.3e} "
          f"autocast_vs_fp32={d['autocast:torch_fp32']:.3e} floor={d['autocast_perm:autocast']:.3e} "
          f"lists_vs_autocast={d['cuda_lists:autocast']:.3e} rust_bf16_vs_lists={d['rust_bf16:cuda_lists']:.3e} "
          f"rust_bf16_vs_autocast={d['rust_bf16:autocast']:.3e}", flush=True)


if __name__ == "__main__":
    main()
