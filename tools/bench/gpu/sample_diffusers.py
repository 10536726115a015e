"""Sampling throughput of the PyTorch U-Net driven by a diffusers scheduler (GPU comparison).

Loads the EMA weights that `diffusion train` saved (or keeps the initial ones) (`ema_<decay>.safetensors`; the Rust U-Net's
parameter names are those of tools/torch_ref/nets.py's `UNet`, so `load_state_dict` takes them
strictly), then samples N images with diffusers' `EDMEulerScheduler` (Karras et al. 2022 Karras
grid, sigma in [0.002, 80], rho 7, EDM preconditioning: prediction_type "epsilon" is EDM's F
output) at a fixed number of steps (= network evaluations), timing the whole loop after one
untimed warm-up pass, and reports the median of `--repeats` timed passes. Prints one parseable line:

    sample_diffusers n=1000 steps=32 nfe=32 seconds=1.23 images_per_s=813.0

The Rust side of the same measurement is benches/src/bin/sample_bench.rs (`--set
sample.solver=euler --set sample.steps=32`, same warm-up-then-time protocol; see run.sh). With
`--net-only` both time the network alone (`steps` calls on one input per pass).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "torch_ref"))
sys.path.insert(0, HERE)
import nets  # noqa: E402
from profile_summary import profiled, report  # noqa: E402


def sample(net, sched, n, steps, device, seed):
    sched.set_timesteps(steps, device=device)
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn((n, 1, 28, 28), generator=g).to(device) * sched.init_noise_sigma
    for t in sched.timesteps:
        inp = sched.scale_model_input(x, t)
        out = net(inp, t.expand(n).float(), None)
        x = sched.step(out, t, x).prev_sample
    return x


def net_only(net, sched, n, steps, device, seed):
    """`steps` calls of the network alone on one input (the scheduler's c_noise values), ending
    with their summed means: sample_bench --net-only's pass."""
    sched.set_timesteps(steps, device=device)
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn((n, 1, 28, 28), generator=g).to(device)
    acc = torch.zeros((), device=device)
    for t in sched.timesteps:
        acc += net(x, t.expand(n).float(), None).mean()
    return acc


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", default=None,
                   help="state_dict (safetensors); default: the freshly initialised network (the cost does not depend on the weights)")
    p.add_argument("--unet", default="{}", help="UNet config as JSON (the Rust UNetConfig's fields)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", default=None, help="save the samples (.npy)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes (the median is reported)")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="torch.backends.cudnn.benchmark = True (cuDNN times its algorithms once per shape)")
    p.add_argument("--net-only", action="store_true",
                   help="time `steps` calls of the network alone per pass (the partner of sample_bench --net-only)")
    p.add_argument("--profile", action="store_true",
                   help="after the timed passes, one more pass under torch.profiler: the summed GPU kernel "
                        "time next to the pass's wall time, the heaviest kernels and the aten operator "
                        "counts (profile_summary.py; profile_rust.py prints the same for the Rust side)")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    from diffusers import EDMEulerScheduler

    dev = torch.device(a.device)
    net = nets.UNet(**json.loads(a.unet))
    if a.weights:
        net.load_state_dict(load_file(a.weights), strict=True)
    net = net.to(dev).eval()
    sched = EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, rho=7.0,
                              prediction_type="epsilon")
    run = net_only if a.net_only else sample
    with torch.no_grad():
        run(net, sched, a.n, a.steps, dev, 1)  # warm-up (kernels, allocator)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times = []
        for _ in range(max(a.repeats, 1)):
            t0 = time.perf_counter()
            x = run(net, sched, a.n, a.steps, dev, 0)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        secs = sorted(times)[len(times) // 2]
        if a.profile:
            sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
            prof, wall = profiled(lambda: run(net, sched, a.n, a.steps, dev, 0), dev.type, sync)
            report(prof, wall, "torch_net" if a.net_only else "diffusers")
    nfe = len(sched.timesteps)
    print(f"{'net_torch' if a.net_only else 'sample_diffusers'} n={a.n} steps={a.steps} nfe={nfe} repeats={len(times)} cudnn_benchmark={a.cudnn_benchmark} seconds={secs:.3f} "
          f"images_per_s={a.n / secs:.1f}", flush=True)
    if a.out and not a.net_only:
        np.save(a.out, x.float().cpu().numpy())


if __name__ == "__main__":
    main()
