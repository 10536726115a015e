#!/usr/bin/env python3
"""Per-step time of the Python anchors' samplers (k-diffusion, diffusers) on CPU tensors.

The Python half of `cargo xtask bench` (the Rust half is benches/src/bin/side_by_side.rs; xtask
prints both side by side). Same setup on both sides:

* states of the given shapes in float64, `x = 80 z`;
* the Karras grid (sigma 80 -> 0.002, rho 7, then 0) of `--steps` steps (k-diffusion's
  `get_sigmas_karras`; diffusers' schedulers with `use_karras_sigmas=True`);
* denoiser `half`: `x0_hat = 0.5 x` (one scaled copy, so the solver's own work dominates;
  diffusers gets `0.5 * model_input` as its model output), or `gmm`: the exact denoiser of the
  2-D mixture of tools/refdata/make_fixtures.py (4096 x 2 only);
* one intra-op thread (`torch.set_num_threads(1)`; the Rust side is single-threaded too);
* per-step time = median over repeated whole sampling runs / steps; diffusers' `set_timesteps`
  is outside the timed region (the grid is built outside on every side).

The stochastic solvers draw independent normals (k-diffusion: a noise_sampler of seeded randn,
also for `sample_dpmpp_sde` and `sample_dpmpp_3m_sde`, whose default is the Brownian tree;
diffusers: its generator): `euler-ancestral` (k-diffusion `sample_euler_ancestral`; diffusers
`EulerAncestralDiscreteScheduler`, which has no Karras option, so its default grid of the same
number of steps), `dpmpp-sde` (k-diffusion `sample_dpmpp_sde`, 2 NFE a step; diffusers'
`DPMSolverSDEScheduler` needs torchsde's Brownian tree, so no diffusers row), `dpmpp-2m-sde`,
`dpmpp-3m-sde` (diffusers `DPMSolverMultistepScheduler`, `sde-dpmsolver++`, order 2 / 3).
`dpmpp-2m-sde/tree` is k-diffusion's default BrownianTreeNoiseSampler (torchsde), skipped on
states above 100k entries (about a second per step there). The project's `SOLVER/chacha` rows
(its ChaCha20 noise streams) have no counterpart here (the table compares them with the plain
`SOLVER` rows).

diffusers runs unmodified here (it casts to float32 inside `step` and back), as users run it.
Writes one JSON object (`rows`) to --out.
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from anchors import TorchGmm, diffusers_sigma, load_k_diffusion_sampling, setup_torch, versions  # noqa: E402

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0

# The 2-D mixture of tools/refdata/make_fixtures.py (also hard-coded in side_by_side.rs).
GMM2 = {
    "weights": [0.5, 0.3, 0.2],
    "means": [[-1.0, 0.5], [1.5, -0.5], [0.25, 1.75]],
    "covariances": [
        [[0.30, 0.10], [0.10, 0.20]],
        [[0.15, -0.06], [-0.06, 0.25]],
        [[0.20, 0.08], [0.08, 0.10]],
    ],
}


def time_runs(setup, body, min_time, min_reps, max_reps):
    """Median seconds of `body(setup())` (setup untimed), after one warm-up run."""
    body(setup())
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < min_time and len(times) < max_reps):
        state = setup()
        t0 = time.perf_counter()
        body(state)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def kdiff_runners(kd, steps):
    sigmas = kd.get_sigmas_karras(steps, SIGMA_MIN, SIGMA_MAX, rho=7.0)

    def bt(x):
        return kd.BrownianTreeNoiseSampler(x, SIGMA_MIN, SIGMA_MAX, seed=1)

    def indep(x):
        g = torch.Generator().manual_seed(1)
        return lambda s, sn: torch.randn(x.shape, generator=g, dtype=x.dtype)

    return {
        "euler": lambda m, x: kd.sample_euler(m, x, sigmas, disable=True),
        "heun": lambda m, x: kd.sample_heun(m, x, sigmas, disable=True),
        "dpmpp-2m": lambda m, x: kd.sample_dpmpp_2m(m, x, sigmas, disable=True),
        "euler-ancestral": lambda m, x: kd.sample_euler_ancestral(m, x, sigmas, disable=True, noise_sampler=indep(x)),
        "dpmpp-sde": lambda m, x: kd.sample_dpmpp_sde(m, x, sigmas, disable=True, noise_sampler=indep(x)),
        "dpmpp-2m-sde": lambda m, x: kd.sample_dpmpp_2m_sde(m, x, sigmas, disable=True, noise_sampler=indep(x)),
        "dpmpp-3m-sde": lambda m, x: kd.sample_dpmpp_3m_sde(m, x, sigmas, disable=True, noise_sampler=indep(x)),
        "dpmpp-2m-sde/tree": lambda m, x: kd.sample_dpmpp_2m_sde(m, x, sigmas, disable=True, noise_sampler=bt(x)),
    }


def diffusers_schedulers():
    from diffusers import (
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        HeunDiscreteScheduler,
    )

    return {
        "euler": lambda: EulerDiscreteScheduler(use_karras_sigmas=True),
        "heun": lambda: HeunDiscreteScheduler(use_karras_sigmas=True),
        "dpmpp-2m": lambda: DPMSolverMultistepScheduler(
            algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
        ),
        "euler-ancestral": lambda: EulerAncestralDiscreteScheduler(),
        "dpmpp-2m-sde": lambda: DPMSolverMultistepScheduler(
            algorithm_type="sde-dpmsolver++", solver_order=2, use_karras_sigmas=True
        ),
        "dpmpp-3m-sde": lambda: DPMSolverMultistepScheduler(
            algorithm_type="sde-dpmsolver++", solver_order=3, use_karras_sigmas=True
        ),
    }


# Solvers that draw noise (diffusers gets a seeded generator for them).
STOCHASTIC = {"euler-ancestral", "dpmpp-sde", "dpmpp-2m-sde", "dpmpp-3m-sde"}
DEFAULT_SOLVERS = "euler,heun,dpmpp-2m,euler-ancestral,dpmpp-sde,dpmpp-2m-sde,dpmpp-3m-sde,dpmpp-2m-sde/tree"


def diffusers_loop(sch, x, model_out, stochastic):
    g = torch.Generator().manual_seed(1) if stochastic else None
    kw = {"generator": g} if stochastic else {}
    for i, t in enumerate(sch.timesteps):
        x_in = sch.scale_model_input(x, t)
        x = sch.step(model_out(sch, i, t, x, x_in), t, x, **kw).prev_sample
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="4096x2,64x3x32x32")
    ap.add_argument("--solvers", default=DEFAULT_SOLVERS, help="comma-separated; `SOLVER/chacha` rows are project-only and skipped")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per measurement")
    ap.add_argument("--min-reps", type=int, default=5)
    ap.add_argument("--max-reps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    setup_torch(args.threads)
    kd, kd_sha = load_k_diffusion_sampling()
    gmm = TorchGmm(GMM2)
    kd_run = kdiff_runners(kd, args.steps)
    df_make = diffusers_schedulers()
    solvers = args.solvers.split(",")
    rows = []

    def record(impl, shape, solver, denoiser, nfe, per_run, reps):
        row = {
            "impl": impl,
            "shape": shape,
            "solver": solver,
            "denoiser": denoiser,
            "steps": args.steps,
            "nfe": nfe,
            "per_step_us": per_run / args.steps * 1e6,
            "reps": reps,
        }
        rows.append(row)
        print(f"  {impl:12} {shape:12} {denoiser:5} {solver:20} {row['per_step_us']:10.1f} us/step ({reps} runs)", flush=True)

    for shape_s in args.shapes.split(","):
        shape = [int(v) for v in shape_s.split("x")]
        gen = torch.Generator().manual_seed(0)
        x0 = torch.randn(shape, generator=gen) * SIGMA_MAX
        y0 = torch.randn(shape, generator=gen)
        med, reps = time_runs(lambda: None, lambda _: x0.mul(0.7).add_(y0, alpha=0.2), args.min_time, args.min_reps, args.max_reps)
        rows.append({"impl": "torch", "shape": shape_s, "solver": "bare-axpby", "denoiser": "-", "steps": 1, "nfe": 0, "per_step_us": med * 1e6, "reps": reps})
        print(f"  torch        {shape_s:12} a*x+b*y (new tensor) {med * 1e6:10.1f} us", flush=True)
        denoisers = ["half"] + (["gmm"] if shape[-1] == 2 and len(shape) == 2 else [])
        for den in denoisers:
            if den == "half":
                kd_model = lambda x, s: x * 0.5  # noqa: E731
                df_out = lambda sch, i, t, x, x_in: x_in * 0.5  # noqa: E731
            else:
                kd_model = lambda x, s: gmm.denoise(x, s.reshape(-1)[0])  # noqa: E731

                def df_out(sch, i, t, x, x_in):
                    sigma = diffusers_sigma(sch, i, t, x, x_in, tol=0.5)
                    a = 1.0 / (1.0 + sigma * sigma) ** 0.5
                    xe = x_in / a
                    return (xe - gmm.denoise(xe, sigma)) / sigma

            for solver in solvers:
                if solver.endswith("/tree") and x0.numel() > 100_000:
                    continue  # torchsde's tree costs about a second per query at this size
                if solver in kd_run:
                    calls = [0]

                    def counted(x, s, m=kd_model):
                        calls[0] += 1
                        return m(x, s)

                    kd_run[solver](counted, x0)
                    nfe = calls[0]
                    med, reps = time_runs(lambda: None, lambda _: kd_run[solver](kd_model, x0), args.min_time, args.min_reps, args.max_reps)
                    record("k-diffusion", shape_s, solver, den, nfe, med, reps)
                if solver in df_make:
                    sch = df_make[solver]()
                    stochastic = solver in STOCHASTIC

                    def setup():
                        sch.set_timesteps(args.steps)
                        return sch

                    setup()
                    nfe = len(sch.timesteps)
                    med, reps = time_runs(setup, lambda s: diffusers_loop(s, x0, df_out, stochastic), args.min_time, args.min_reps, args.max_reps)
                    record("diffusers", shape_s, solver, den, nfe, med, reps)

    out = {
        "about": "Python anchors, per-step time (median over whole sampling runs / steps); tools/bench/side_by_side.py",
        "threads": args.threads,
        "dtype": "float64",
        "python": platform.python_version(),
        "versions": versions(),
        "k_diffusion_sampling_sha256": kd_sha,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
