"""Training throughput of the PyTorch equivalent of the Rust trainer (`cargo xtask bench --train`).

The same network (the toy MLP of crates/diffusion-models/src/nets/mlp.rs or the U-Net, both from
tools/torch_ref/nets.py), the same EDM loss with
preconditioning (Karras et al. 2022, arXiv:2206.00364, Eq. (7)-(8), ln sigma ~ N(p_mean, p_std^2)),
AdamW (torch.optim.AdamW, foreach), global-norm clipping, EMA of the parameters and the same batch
on the same number of CPU threads; data from a fixed in-memory tensor (2-D toy points or
Fashion-MNIST-shaped images). Prints one parseable line:

    train_torch net=mlp device=cpu threads=1 batch=256 steps=300 steps_per_s=812.3 loss=0.61

It also runs on a GPU (`--device cuda`, `--precision bf16` for torch.autocast in bfloat16) and can
sample the EMA network after training with EDM's deterministic Heun sampler on the Karras grid
(Karras et al. 2022, Alg. 1; sigma_min 0.002, sigma_max 80, rho 7, an Euler last step to 0) --
the Rust `heun` solver on the `karras` grid -- and save the samples as .npy (`--samples`).

Usage (see `--help`):
    python tools/bench/train_torch.py --net mlp --batch 256 --steps 300 --threads 1
    python tools/bench/train_torch.py --net unet --unet '{"model_channels": 16}' --data fmnist \
        --device cuda --precision bf16 --steps 20000 --samples out/torch_samples.npy
"""

import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "torch_ref"))
from nets import MLP, edm_denoise  # noqa: E402
from sampling import heun_sample, karras_sigmas  # noqa: E402


def edm_loss(net, x0, sigma_data, p_mean, p_std, y=None):
    b = x0.shape[0]
    sigma = (torch.randn(b, device=x0.device) * p_std + p_mean).exp()
    s = sigma.reshape(-1, *([1] * (x0.dim() - 1)))
    x = x0 + s * torch.randn_like(x0)
    d = edm_denoise(net, x, sigma, sigma_data, y)
    w = (s**2 + sigma_data**2) / (s * sigma_data) ** 2
    return (w * (d - x0) ** 2).mean()


def toy_8gaussians(n, gen):
    """Eight Gaussians on a circle of radius 4 (std 0.5): the shape of the Rust toy."""
    k = torch.randint(0, 8, (n,), generator=gen)
    a = k.double() * (2 * math.pi / 8)
    c = torch.stack([a.cos(), a.sin()], 1) * 4.0
    return (c + 0.5 * torch.randn(n, 2, generator=gen, dtype=torch.float64)).float()


def read_idx(path):
    with (gzip.open(path) if path.endswith(".gz") else open(path, "rb")) as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_data(args, gen):
    if args.net == "mlp":
        return toy_8gaussians(args.n_data, gen), None
    size = args.unet_cfg.get("image_size", 28)
    if args.data == "fmnist":
        d = os.environ.get("DIFFUSION_FMNIST_DIR") or "/usr/share/datasets/fashion-mnist"
        x = torch.from_numpy(read_idx(os.path.join(d, "train-images-idx3-ubyte.gz")).copy())
        y = torch.from_numpy(read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz")).astype(np.int64))
        x = x.float().div(127.5).sub(1).unsqueeze(1)
        if size == 32:
            x = F.pad(x, (2, 2, 2, 2), value=-1.0)
        return x, y
    x = torch.rand(args.n_data, 1, size, size, generator=gen) * 2 - 1
    y = torch.randint(0, 10, (args.n_data,), generator=gen)
    return x, y


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", choices=["mlp", "unet"], default="mlp")
    p.add_argument("--mlp", default="{}", help='MLP sizes as JSON, e.g. {"hidden": 128, "depth": 3}')
    p.add_argument("--unet", default="{}", help="UNet config (the Rust UNetConfig's fields) as JSON")
    p.add_argument("--data", choices=["synthetic", "fmnist"], default="synthetic")
    p.add_argument("--n-data", type=int, default=4096, help="items of synthetic / toy data")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=200, help="timed updates (0: only sample)")
    p.add_argument("--warmup", type=int, default=10, help="untimed updates first")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--sigma-data", type=float, default=None, help="default: 2.0 (mlp), 0.5 (unet)")
    p.add_argument("--p-mean", type=float, default=-1.2)
    p.add_argument("--p-std", type=float, default=1.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-weights", default=None,
                   help="start from this state_dict (safetensors; e.g. a Rust run's ema_<decay>.safetensors); "
                        "the EMA starts at it")
    p.add_argument("--save-weights", default=None, help="write the EMA weights here (safetensors state_dict)")
    p.add_argument("--samples", default=None, help="write EMA samples here (.npy) after training")
    p.add_argument("--sample-init", default=None,
                   help="initial states of sampling (.npy, already at sigma_max's scale) instead of seeded noise")
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--sample-steps", type=int, default=32)
    p.add_argument("--guidance-classes", action="store_true", help="class-conditional U-Net (labels i mod 10)")
    args = p.parse_args()
    args.unet_cfg = json.loads(args.unet)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    dev = torch.device(args.device)
    if args.net == "mlp":
        m = json.loads(args.mlp)
        net = MLP(hidden=m.get("hidden", 128), depth=m.get("depth", 3), emb_dim=m.get("emb_dim", 32),
                  scale=m.get("scale", 4.0))
        sd = args.sigma_data or 2.0
    else:
        import nets

        net = nets.UNet(**args.unet_cfg)
        sd = args.sigma_data or 0.5
    if args.init_weights:
        from safetensors.torch import load_file

        net.load_state_dict(load_file(args.init_weights), strict=True)
    net = net.to(dev)
    ema = [q.detach().clone() for q in net.parameters()]
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay, foreach=True)
    x_all, y_all = load_data(args, gen)
    x_all = x_all.to(dev)
    classes = args.net == "unet" and args.unet_cfg.get("num_classes") is not None
    y_all = y_all.to(dev) if (classes and y_all is not None) else None
    n = x_all.shape[0]
    amp = args.precision == "bf16"
    net.train()
    losses = []

    def step():
        idx = torch.randint(0, n, (args.batch,), device=dev)
        x0 = x_all[idx]
        y = y_all[idx] if y_all is not None else None
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = edm_loss(net, x0, sd, args.p_mean, args.p_std, y)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), args.grad_clip)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, list(net.parameters()), 1 - args.ema)
        return loss

    for _ in range(args.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(args.steps):
        loss = step()
        if i >= args.steps - 20:
            losses.append(loss.item())
    if dev.type == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    params = sum(q.numel() for q in net.parameters())
    print(
        f"train_torch net={args.net} device={args.device} threads={args.threads} batch={args.batch} "
        f"steps={args.steps} params={params} precision={args.precision} "
        f"steps_per_s={args.steps / max(secs, 1e-9):.3f} loss={sum(losses) / max(len(losses), 1):.4f}",
        flush=True,
    )
    if args.samples or args.save_weights:
        with torch.no_grad():
            for q, e in zip(net.parameters(), ema):
                q.copy_(e)
        net.eval()
    if args.save_weights:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, args.save_weights)
    if args.samples:
        if args.sample_init:
            x = torch.from_numpy(np.load(args.sample_init)).float().to(dev)
        else:
            g = torch.Generator().manual_seed(args.seed + 1)
            shape = (args.n_samples, *x_all.shape[1:])
            x = torch.randn(shape, generator=g, dtype=torch.float64).to(dev).float() * karras_sigmas(2)[0].item()
        y = torch.arange(x.shape[0], device=dev) % 10 if classes else None
        t1 = time.perf_counter()
        x = heun_sample(net, x, args.sample_steps, sd, y)
        np.save(args.samples, x.float().cpu().numpy())
        if y is not None:
            np.save(os.path.splitext(args.samples)[0] + "_labels.npy", y.cpu().numpy())
        print(f"samples {args.samples} shape={list(x.shape)} sample_s={time.perf_counter() - t1:.2f}")


if __name__ == "__main__":
    main()
