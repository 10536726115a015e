#!/usr/bin/env python3
"""Reference fixtures for diffusion-solvers, produced by the Python anchors themselves.

Run through `cargo xtask refdata` (which installs the pinned anchors into the cached torch venv
first); see tools/refdata/README.md. Writes two JSON files into --out:

* kdiffusion.json: k-diffusion's samplers (k_diffusion/sampling.py) in sigma space with the exact
  denoiser D(x, sigma) of a 2-D Gaussian mixture, on Karras and exponential sigma grids. The
  stochastic samplers get a `noise_sampler` that hands out pre-drawn standard normals from a pool
  saved in the file, in call order, and records the (sigma, sigma_next) of every call, so the
  Rust test can replay the very same noise.
* diffusers.json: DDIMScheduler, EulerDiscreteScheduler and DPMSolverMultistepScheduler
  (dpmsolver++, 2M) on their discrete alphas_cumprod tables, with the exact eps or v prediction
  of the same mixture at alphas_cumprod[timestep].

Everything runs in float64. k-diffusion follows the dtype of its inputs (the default dtype is
set to float64 so that get_sigmas_karras's linspace is float64 too). diffusers builds its tables
with an explicit `dtype=torch.float32` and upcasts to float32 inside `step`, so the three
scheduler modules are run with their module-global `torch` / `np` names rebound to proxies whose
`float32` attribute is `float64`: diffusers' own code, in double precision (the float32 run is
stored per case for information: 3e-7 to 1e-3 relative).

k-diffusion is installed with --no-deps (its dependency list is for training and evaluation:
wandb, clean-fid, clip, kornia, torchvision, ...). `k_diffusion/__init__.py` imports all of
that, so `k_diffusion/sampling.py` is loaded by path under a stand-in package whose `utils`
module holds only `append_dims` (the one helper sampling.py uses), compiled from the
installed `k_diffusion/utils.py` source. Its other imports (scipy, torchdiffeq, torchsde, tqdm)
are real.

Known anchor bug reproduced on purpose: k-diffusion's sample_dpmpp_3m_sde weights the second
divided difference with phi_3 where 2 phi_3 is needed (the D'' term comes out halved, so the
method is only second order). A copy of the function with that one token changed ("- phi_3 * d2"
-> "- 2 * phi_3 * d2", asserted to occur exactly once) gives the corrected reference
(`dpmpp-3m-sde`, our default, on the Rust side; k-diffusion's own weight is
`dpmpp-3m-sde:reference=1`).
"""

import argparse
import inspect
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from anchors import Float64Names, load_k_diffusion_sampling, versions  # noqa: E402

torch.set_default_dtype(torch.float64)

SEED = 20240611
N_POINTS = 16
N_STEPS = 10
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0

# A small 2-D mixture with full covariances.
GMM = {
    "weights": [0.5, 0.3, 0.2],
    "means": [[-1.0, 0.5], [1.5, -0.5], [0.25, 1.75]],
    "covariances": [
        [[0.30, 0.10], [0.10, 0.20]],
        [[0.15, -0.06], [-0.06, 0.25]],
        [[0.20, 0.08], [0.08, 0.10]],
    ],
}

# --------------------------------------------------------------------------------------------
# The exact Gaussian-mixture posterior mean, in torch float64.


def gmm_posterior_mean(x, a, s):
    """E[x0 | x] for x = a x0 + s eps, x0 ~ GMM, eps ~ N(0, I); a, s scalars, x of shape (n, d)."""
    a = float(a)
    s = float(s)
    w = torch.tensor(GMM["weights"], dtype=torch.float64)
    mu = torch.tensor(GMM["means"], dtype=torch.float64)
    cov = torch.tensor(GMM["covariances"], dtype=torch.float64)
    n, d = x.shape
    eye = torch.eye(d, dtype=torch.float64)
    logits, means = [], []
    for k in range(len(w)):
        c = a * a * cov[k] + s * s * eye
        diff = x - a * mu[k]  # (n, d)
        sol = torch.linalg.solve(c, diff.T)  # (d, n) = C^{-1} (x - a mu)
        maha = (diff.T * sol).sum(0)
        logdet = torch.logdet(c)
        logits.append(torch.log(w[k]) - 0.5 * maha - 0.5 * logdet - 0.5 * d * math.log(2 * math.pi))
        means.append(mu[k] + a * (cov[k] @ sol).T)
    r = torch.softmax(torch.stack(logits), dim=0)  # (K, n)
    return sum(r[k][:, None] * means[k] for k in range(len(w)))


def as_list(t):
    return [[float(v) for v in row] for row in t.tolist()]


def max_rel(a, b):
    return float(((a - b).abs() / b.abs().clamp(min=1.0)).max())


# --------------------------------------------------------------------------------------------
# k-diffusion


def corrected_3m_sde(kd):
    """sample_dpmpp_3m_sde with the second divided difference weighted by 2 phi_3."""
    src = inspect.getsource(kd.sample_dpmpp_3m_sde)
    old = "x = x + phi_2 * d1 - phi_3 * d2"
    assert src.count(old) == 1, "sample_dpmpp_3m_sde changed; update the patch"
    src = src.replace(old, "x = x + phi_2 * d1 - 2 * phi_3 * d2")
    src = src.replace("def sample_dpmpp_3m_sde(", "def sample_dpmpp_3m_sde_third_order(")
    ns = dict(kd.__dict__)
    exec(compile(src, "<sample_dpmpp_3m_sde_third_order>", "exec"), ns)
    return ns["sample_dpmpp_3m_sde_third_order"]


class Denoiser:
    """k-diffusion's model: D(x, sigma) of the mixture (alpha = 1); counts evaluations."""

    def __init__(self):
        self.nfe = 0

    def __call__(self, x, sigma):
        assert x.dtype == torch.float64
        assert torch.all(sigma == sigma[0])
        self.nfe += 1
        return gmm_posterior_mean(x, 1.0, float(sigma[0]))


class ReplayNoise:
    """A noise_sampler returning pre-drawn normals in call order, recording its arguments."""

    def __init__(self, pool):
        self.pool = pool
        self.calls = []

    def __call__(self, sigma, sigma_next):
        k = len(self.calls)
        assert k < len(self.pool), "noise pool too small"
        self.calls.append([float(sigma), float(sigma_next)])
        return self.pool[k].clone()


def kdiffusion_fixture(gen):
    kd, digest = load_k_diffusion_sampling()
    grids = {
        "karras": kd.get_sigmas_karras(N_STEPS, SIGMA_MIN, SIGMA_MAX, rho=7.0),
        "exponential": kd.get_sigmas_exponential(N_STEPS, SIGMA_MIN, SIGMA_MAX),
    }
    for g in grids.values():
        assert g.dtype == torch.float64
    x_unit = torch.randn(N_POINTS, 2, generator=gen)
    pool = torch.randn(2 * N_STEPS, N_POINTS, 2, generator=gen)
    third = corrected_3m_sde(kd)
    # (k-diffusion function, kwargs, our registry spec)
    samplers = [
        (kd.sample_euler, {}, "euler"),
        (kd.sample_heun, {}, "heun"),
        (kd.sample_dpm_2, {}, "dpm2"),
        (kd.sample_lms, {}, "lms"),
        (kd.sample_dpmpp_2m, {}, "dpmpp-2m"),
        (kd.sample_euler_ancestral, {}, "euler-ancestral"),
        (kd.sample_euler_ancestral, {"eta": 0.6, "s_noise": 1.2}, "euler-ancestral:eta=0.6,s_noise=1.2"),
        (kd.sample_dpmpp_2s_ancestral, {}, "dpmpp-2s-ancestral"),
        (kd.sample_dpmpp_sde, {}, "dpmpp-sde"),
        (kd.sample_dpmpp_sde, {"eta": 0.5, "s_noise": 0.9}, "dpmpp-sde:eta=0.5,s_noise=0.9"),
        (kd.sample_dpmpp_2m_sde, {}, "dpmpp-2m-sde"),
        (kd.sample_dpmpp_2m_sde, {"solver_type": "heun", "eta": 0.7}, "dpmpp-2m-sde:heun=1,eta=0.7"),
        (kd.sample_dpmpp_3m_sde, {}, "dpmpp-3m-sde:reference=1"),
        (kd.sample_dpmpp_3m_sde, {"eta": 0.0}, "dpmpp-3m-sde:eta=0,reference=1"),
        (third, {}, "dpmpp-3m-sde"),
        (third, {"eta": 0.0}, "dpmpp-3m-sde:eta=0"),
    ]
    cases = []
    for grid_name, sigmas in grids.items():
        x_start = x_unit * sigmas[0]
        for fn, kwargs, ours in samplers:
            model = Denoiser()
            kw = dict(kwargs)
            noise = None
            if "noise_sampler" in inspect.signature(fn).parameters:
                noise = ReplayNoise(pool)
                kw["noise_sampler"] = noise
            out = fn(model, x_start.clone(), sigmas, disable=True, **kw)
            name = fn.__name__
            cases.append(
                {
                    "anchor": name,
                    "kwargs": kwargs,
                    "ours": ours,
                    "grid": grid_name,
                    "nfe": model.nfe,
                    "noise_calls": noise.calls if noise is not None else [],
                    "x_out": as_list(out),
                }
            )
    return {
        "about": "k-diffusion samplers (sigma space, EDM schedule t = sigma) with the exact "
        "Gaussian-mixture denoiser; see tools/refdata/make_fixtures.py",
        "k_diffusion_sampling_sha256": digest,
        "gmm": GMM,
        "grids": {k: [float(v) for v in g.tolist()] for k, g in grids.items()},
        "grid_params": {"n": N_STEPS, "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "rho": 7.0},
        "x_unit": as_list(x_unit),
        "noise_pool": [as_list(p) for p in pool],
    }, cases


# --------------------------------------------------------------------------------------------
# diffusers


def diffusers_modules(float64):
    from diffusers.schedulers import (
        scheduling_ddim,
        scheduling_dpmsolver_multistep,
        scheduling_euler_discrete,
    )

    mods = [scheduling_ddim, scheduling_euler_discrete, scheduling_dpmsolver_multistep]
    for m in mods:
        m.torch = Float64Names(torch) if float64 else torch
        m.np = Float64Names(np) if float64 else np
    return scheduling_ddim.DDIMScheduler, scheduling_euler_discrete.EulerDiscreteScheduler, (
        scheduling_dpmsolver_multistep.DPMSolverMultistepScheduler
    )


def discrete_model(prediction):
    """The exact eps or v prediction of the mixture at alphas_cumprod[timestep]."""

    def model(x, abar):
        abar = float(abar)
        a, s = math.sqrt(abar), math.sqrt(1.0 - abar)
        x0 = gmm_posterior_mean(x, a, s)
        eps = (x - a * x0) / s
        if prediction == "epsilon":
            return eps
        assert prediction == "v_prediction"
        return a * eps - s * x0

    return model


def run_diffusers(kind, config, x_unit, float64):
    ddim, euler, dpm = diffusers_modules(float64)
    prediction = config["prediction_type"]
    model = discrete_model(prediction)
    x = x_unit.clone()
    if kind == "ddim":
        sch = ddim(num_train_timesteps=1000, clip_sample=False, **config)
        sch.set_timesteps(N_STEPS)
        for t in sch.timesteps:
            x = sch.step(model(x, sch.alphas_cumprod[int(t)]), t, x, eta=0.0).prev_sample
        steps = [int(t) for t in sch.timesteps]
        # DDIM's own step pairing: from t to t - num_train_timesteps // num_inference_steps,
        # a negative one meaning final_alpha_cumprod (1 with set_alpha_to_one, else
        # alphas_cumprod[0], i.e. t = 0).
        stride = sch.config.num_train_timesteps // sch.num_inference_steps
        final = None if float(sch.final_alpha_cumprod) == 1.0 else 0
        prev = [t - stride if t - stride >= 0 else final for t in steps]
    elif kind == "euler":
        sch = euler(num_train_timesteps=1000, **config)
        sch.set_timesteps(N_STEPS)
        # Euler walks sigma space: its sample is x / alpha, the model sees scale_model_input(x).
        x = x * (sch.sigmas[0] ** 2 + 1) ** 0.5
        for t in sch.timesteps:
            assert float(t) == round(float(t)), "non-integer Euler timestep"
            x_in = sch.scale_model_input(x, t)
            x = sch.step(model(x_in, sch.alphas_cumprod[int(t)]), t, x).prev_sample
        steps = [int(t) for t in sch.timesteps]
        assert float(sch.sigmas[-1]) == 0.0
        final, prev = None, None
    elif kind == "dpmpp_2m":
        sch = dpm(num_train_timesteps=1000, algorithm_type="dpmsolver++", solver_order=2, **config)
        sch.set_timesteps(N_STEPS)
        for t in sch.timesteps:
            x = sch.step(model(x, sch.alphas_cumprod[int(t)]), t, x).prev_sample
        steps = [int(t) for t in sch.timesteps]
        assert float(sch.sigmas[-1]) == 0.0
        final, prev = None, None
    else:
        raise ValueError(kind)
    if float64:
        assert sch.alphas_cumprod.dtype == torch.float64, "float64 patch did not take"
        assert x.dtype == torch.float64
    return x.to(torch.float64), steps, final, prev


def diffusers_fixture(gen):
    x_unit = torch.randn(N_POINTS, 2, generator=gen)
    lin = {"beta_schedule": "linear"}
    cos = {"beta_schedule": "squaredcos_cap_v2"}
    # (scheduler, config, our solver, note)
    configs = [
        ("ddim", {**lin, "timestep_spacing": "leading", "prediction_type": "epsilon"}, "ddim"),
        ("ddim", {**lin, "timestep_spacing": "leading", "prediction_type": "v_prediction"}, "ddim"),
        ("ddim", {**lin, "timestep_spacing": "trailing", "prediction_type": "epsilon"}, "ddim"),
        ("ddim", {**lin, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}, "ddim"),
        ("ddim", {**cos, "timestep_spacing": "leading", "prediction_type": "epsilon"}, "ddim"),
        ("ddim", {**cos, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}, "ddim"),
        (
            "ddim",
            {**lin, "timestep_spacing": "trailing", "prediction_type": "epsilon", "set_alpha_to_one": False},
            "ddim",
        ),
        # Known diffusers bug (issue #12633): with linspace spacing DDIM steps from t to
        # t - 1000 // 10 = t - 100, not to the next timestep (t - 111).
        ("ddim", {**lin, "timestep_spacing": "linspace", "prediction_type": "epsilon"}, "ddim"),
        ("euler", {**lin, "prediction_type": "epsilon"}, "euler"),
        ("euler", {**lin, "prediction_type": "v_prediction"}, "euler"),
        ("euler", {**cos, "prediction_type": "epsilon"}, "euler"),
        ("dpmpp_2m", {**lin, "prediction_type": "epsilon"}, "dpmpp-2m"),
        ("dpmpp_2m", {**lin, "prediction_type": "v_prediction"}, "dpmpp-2m"),
        ("dpmpp_2m", {**cos, "prediction_type": "epsilon"}, "dpmpp-2m"),
    ]
    names = {"ddim": "DDIMScheduler", "euler": "EulerDiscreteScheduler", "dpmpp_2m": "DPMSolverMultistepScheduler"}
    cases = []
    for kind, config, ours in configs:
        out, steps, final, prev = run_diffusers(kind, config, x_unit, float64=True)
        out32 = run_diffusers(kind, config, x_unit, float64=False)[0]
        schedule = "ddpm-linear" if config["beta_schedule"] == "linear" else "ddpm-cosine"
        cases.append(
            {
                "anchor": names[kind],
                "config": config,
                "ours": ours,
                "schedule": schedule,
                "timesteps": steps,
                # The time the last step ends at: null = alpha_bar 1 (sigma 0, clean data).
                "final_time": final,
                # DDIM only: the time each step ends at by diffusers' stride rule.
                "prev_timesteps": prev,
                "float32_max_rel_diff": max_rel(out32, out),
                "x_out": as_list(out),
            }
        )
    diffusers_modules(float64=True)
    return {
        "about": "diffusers schedulers on their discrete alphas_cumprod tables (num_train_timesteps "
        "1000, 10 steps, eta 0, clip_sample False) with the exact Gaussian-mixture eps / v "
        "prediction; run in float64; see tools/refdata/make_fixtures.py",
        "gmm": GMM,
        "x_unit": as_list(x_unit),
    }, cases


# --------------------------------------------------------------------------------------------


def write(path, header, cases):
    """One JSON object; the cases one per line so that diffs stay readable."""
    header = dict(header)
    header["versions"] = versions()
    lines = ["{"]
    for k, v in header.items():
        lines.append(f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))},")
    lines.append('"cases": [')
    lines.append(",\n".join(json.dumps(c, separators=(",", ":")) for c in cases))
    lines.append("]}")
    path.write_text("\n".join(lines) + "\n")
    json.loads(path.read_text())
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(cases)} cases)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="fixture folder")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    header, cases = kdiffusion_fixture(gen)
    write(args.out / "kdiffusion.json", header, cases)
    header, cases = diffusers_fixture(gen)
    for c in cases:
        print(f"  {c['anchor']} {c['config']}: float32 run differs by {c['float32_max_rel_diff']:.2e} (max rel)")
    write(args.out / "diffusers.json", header, cases)


if __name__ == "__main__":
    main()
