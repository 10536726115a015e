#!/usr/bin/env python3
"""Accuracy per NFE of the Python anchors' samplers on the project's benchmark mixtures.

The Python half of `cargo xtask bench` (the Rust half is benches/src/bin/accuracy.rs, which
writes --data: for each target the mixture, the initial states `x = 80 z`, the exact PF-ODE
solutions at sigma 0 and 0.002, exact samples and the sliced-W2 directions). Everything runs
in float64 with one intra-op thread, on the very same problem:

* k-diffusion (k_diffusion/sampling.py loaded by path, see tools/anchors.py): the sample_*
  functions on get_sigmas_karras / get_sigmas_exponential (sigma 80 -> 0.002, then 0), with the
  exact denoiser D(x, sigma); sample_dpm_fast and sample_dpm_adaptive (80 -> 0.002);
* k-diffusion also gets the project's third grid, uniform in VP-linear time from sigma 80 to 0,
  as a sigma list;
* diffusers: the schedulers on a trained_betas table whose noise levels sigma = sqrt((1 -
  abar) / abar) are log-uniform from 0.002 to 80 over 1000 entries, so `use_karras_sigmas` /
  `use_exponential_sigmas` give the same Karras / exponential grids and every run starts at
  sigma 80; and on a second table that samples VP-linear uniformly in time up to sigma 80, whose
  `trailing` spacing is the uniform grid (rounded to table entries); the exact epsilon prediction is evaluated at the noise level the scheduler itself
  uses (tools/anchors.py: diffusers_sigma), and the scheduler modules run in float64 (their
  `float32` names rebound).

Deterministic samplers: RMS error to the exact solution; stochastic ones: sliced W2 to the exact
samples over the same directions (equal sample sizes: exact sorted-quantile W2 per direction).
NFE budgets: the most steps whose model-call count fits (probed with a cheap model).
Stochastic noise: common random numbers. Call k of a run gets counter_normals(21, k, ...)
(tools/anchors.py, the same numbers as benches/src/noise.rs on the Rust side): k-diffusion through
its noise_sampler argument, diffusers through a stand-in for the randn_tensor its scheduler
modules import. Same initial state, same noise draws: differences in the distance to the law are
differences of the algorithms.
"""

import argparse
import inspect
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from anchors import (  # noqa: E402
    CounterNoise,
    TorchGmm,
    diffusers_sigma,
    load_k_diffusion_sampling,
    patch_diffusers_float64,
    setup_torch,
    versions,
)

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0
SEED = 21


class Model:
    """k-diffusion model: the exact denoiser, counting calls."""

    def __init__(self, gmm):
        self.gmm = gmm
        self.nfe = 0

    def __call__(self, x, sigma):
        self.nfe += 1
        return self.gmm.denoise(x, float(sigma.reshape(-1)[0]))


class Cheap:
    def __init__(self):
        self.nfe = 0

    def __call__(self, x, sigma):
        self.nfe += 1
        return x * 0.5


def rms(a, b):
    return float(((a - b) ** 2).mean().sqrt())


def sliced_w2(x, y, dirs):
    px = torch.sort(x @ dirs.T, dim=0).values
    py = torch.sort(y @ dirs.T, dim=0).values
    return float(((px - py) ** 2).mean().sqrt())


# --------------------------------------------------------------------------------------------
# k-diffusion


def kd_samplers(kd):
    """(name, kind, fn(model, x, sigmas)) for the fixed-grid samplers; the stochastic ones draw
    the common random numbers (CounterNoise) shared with the project's runs."""

    def crn(fn):
        return lambda m, x, sigmas: fn(m, x, sigmas, disable=True, noise_sampler=CounterNoise(SEED, like=x))

    def plain(fn):
        return lambda m, x, sigmas: fn(m, x, sigmas, disable=True)

    return [
        ("euler", "ode", plain(kd.sample_euler)),
        ("heun", "ode", plain(kd.sample_heun)),
        ("dpm_2", "ode", plain(kd.sample_dpm_2)),
        ("lms", "ode", plain(kd.sample_lms)),
        ("dpmpp_2m", "ode", plain(kd.sample_dpmpp_2m)),
        ("euler_ancestral", "sde", crn(kd.sample_euler_ancestral)),
        ("dpm_2_ancestral", "sde", crn(kd.sample_dpm_2_ancestral)),
        ("dpmpp_2s_ancestral", "sde", crn(kd.sample_dpmpp_2s_ancestral)),
        ("dpmpp_sde", "sde", crn(kd.sample_dpmpp_sde)),
        ("dpmpp_2m_sde", "sde", crn(kd.sample_dpmpp_2m_sde)),
        ("dpmpp_3m_sde", "sde", crn(kd.sample_dpmpp_3m_sde)),
    ]


def vp_t80(beta_min=0.1, beta_max=20.0):
    """The VP-linear time at which sigma / alpha = 80 (the project's VpLinear::t_of_lambda)."""
    db = beta_max - beta_min
    tmp = 2.0 * db * math.log1p(SIGMA_MAX**2)
    return tmp / (math.sqrt(beta_min**2 + tmp) + beta_min) / db


def vp_ratio(t, beta_min=0.1, beta_max=20.0):
    """sigma / alpha of VP-linear at time t (numpy or float)."""
    return np.sqrt(np.expm1(0.5 * (beta_max - beta_min) * np.asarray(t) ** 2 + beta_min * np.asarray(t)))


def vp_uniform_sigmas(n):
    """Noise levels of the grid uniform in VP-linear time from sigma 80 down to 0 (the project's
    `uniform (vp-linear)` grid, for samplers that take a sigma list)."""
    t = np.linspace(vp_t80(), 0.0, n + 1)
    out = vp_ratio(t)
    out[0], out[-1] = SIGMA_MAX, 0.0
    return torch.from_numpy(out)


def kd_grids(kd):
    return {
        "karras": lambda n: kd.get_sigmas_karras(n, SIGMA_MIN, SIGMA_MAX, rho=7.0),
        "exponential": lambda n: kd.get_sigmas_exponential(n, SIGMA_MIN, SIGMA_MAX),
        "uniform (vp-linear)": vp_uniform_sigmas,
    }


def fit_steps(nfe_of, budget):
    """The most steps whose NFE fits `budget`: (steps, nfe) or None."""
    for steps in range(budget, 0, -1):
        nfe = nfe_of(steps)
        if nfe <= budget:
            return steps, nfe
    return None


# --------------------------------------------------------------------------------------------
# diffusers


def betas_for_sigmas(sig):
    """trained_betas whose alphas_cumprod have the noise levels sigma = sqrt((1-abar)/abar)."""
    abar = 1.0 / (1.0 + np.asarray(sig) ** 2)
    prev = np.concatenate([[1.0], abar[:-1]])
    return (1.0 - abar / prev).tolist()


def log_uniform_betas(n=1000):
    """A table whose noise levels are log-uniform in [0.002, 80]: use_karras_sigmas and
    use_exponential_sigmas then give exactly the Karras and exponential grids of 80 -> 0.002."""
    return betas_for_sigmas(SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** (np.arange(n) / (n - 1)))


def vp_uniform_betas(n=1000):
    """A table sampling VP-linear at t = t80 (i + 1) / n: `trailing` timestep spacing then gives
    the grid uniform in VP time from sigma 80 down to 0 (the final step goes to abar = 1)."""
    return betas_for_sigmas(vp_ratio(vp_t80() * (np.arange(n) + 1) / n))


def diffusers_setup():
    import diffusers.schedulers as S
    from diffusers.utils import logging as dlogging

    dlogging.set_verbosity_error()
    from diffusers.schedulers import (
        scheduling_ddim,
        scheduling_deis_multistep,
        scheduling_dpmsolver_multistep,
        scheduling_dpmsolver_singlestep,
        scheduling_euler_ancestral_discrete,
        scheduling_euler_discrete,
        scheduling_heun_discrete,
        scheduling_k_dpm_2_ancestral_discrete,
        scheduling_k_dpm_2_discrete,
        scheduling_lms_discrete,
        scheduling_unipc_multistep,
        scheduling_utils,
    )

    patch_diffusers_float64(
        [
            scheduling_ddim,
            scheduling_deis_multistep,
            scheduling_dpmsolver_multistep,
            scheduling_dpmsolver_singlestep,
            scheduling_euler_ancestral_discrete,
            scheduling_euler_discrete,
            scheduling_heun_discrete,
            scheduling_k_dpm_2_ancestral_discrete,
            scheduling_k_dpm_2_discrete,
            scheduling_lms_discrete,
            scheduling_unipc_multistep,
            scheduling_utils,
        ]
    )
    base = {"num_train_timesteps": 1000, "trained_betas": log_uniform_betas(), "prediction_type": "epsilon"}
    kar = {"use_karras_sigmas": True}
    exp = {"use_exponential_sigmas": True}
    uni = {"trained_betas": vp_uniform_betas(), "timestep_spacing": "trailing"}
    both = {"karras": kar, "exponential": exp, "uniform (vp-linear)": uni}
    out = []  # (name, kind, grid, cls, config)

    def add(name, kind, cls, extra, grids=both):
        accepted = inspect.signature(cls.__init__).parameters
        for g, cfg in grids.items():
            config = {**base, **extra, **cfg}
            if all(k in accepted for k in config):  # e.g. DPMSolverSinglestep has no timestep_spacing
                out.append((name, kind, g, cls, config))

    add("EulerDiscrete", "ode", S.EulerDiscreteScheduler, {})
    add("HeunDiscrete", "ode", S.HeunDiscreteScheduler, {})
    add("KDPM2Discrete", "ode", S.KDPM2DiscreteScheduler, {})
    add("LMSDiscrete", "ode", S.LMSDiscreteScheduler, {})
    add("DPMSolverMultistep(2M)", "ode", S.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2})
    add("DPMSolverMultistep(3M)", "ode", S.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 3})
    add("DPMSolverSinglestep(2)", "ode", S.DPMSolverSinglestepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2})
    add("DPMSolverSinglestep(3)", "ode", S.DPMSolverSinglestepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 3})
    add("UniPCMultistep(bh2,2)", "ode", S.UniPCMultistepScheduler, {"solver_type": "bh2", "solver_order": 2})
    add("UniPCMultistep(bh1,2)", "ode", S.UniPCMultistepScheduler, {"solver_type": "bh1", "solver_order": 2})
    add("UniPCMultistep(bh2,3)", "ode", S.UniPCMultistepScheduler, {"solver_type": "bh2", "solver_order": 3})
    add("DEISMultistep(3)", "ode", S.DEISMultistepScheduler, {"solver_order": 3})
    add(
        "DDIM",
        "ode",
        S.DDIMScheduler,
        {"clip_sample": False},
        {"log table, trailing": {"timestep_spacing": "trailing"}, "uniform (vp-linear)": uni},
    )
    add("EulerAncestralDiscrete", "sde", S.EulerAncestralDiscreteScheduler, {}, {"exponential": {}, "uniform (vp-linear)": uni})
    add("KDPM2AncestralDiscrete", "sde", S.KDPM2AncestralDiscreteScheduler, {})
    add("DPMSolverMultistep(2M SDE)", "sde", S.DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++", "solver_order": 2})
    return out


def run_diffusers(cls, config, steps, x_edm, gmm, stochastic):
    sch = cls(**config)
    sch.set_timesteps(steps)
    vp = float(sch.init_noise_sigma) == 1.0
    if vp:
        s0 = float(sch.sigmas[0]) if hasattr(sch, "sigmas") else math.sqrt((1 - float(sch.alphas_cumprod[int(sch.timesteps[0])])) / float(sch.alphas_cumprod[int(sch.timesteps[0])]))
        x = x_edm / math.sqrt(1.0 + s0 * s0)
    else:
        x = x_edm.clone()
    if stochastic:
        # diffusers draws its noise with randn_tensor imported into the scheduler's module.
        sys.modules[cls.__module__].randn_tensor = CounterNoise(SEED).randn_tensor
    kw = {}
    nfe = 0
    for i, t in enumerate(sch.timesteps):
        x_in = sch.scale_model_input(x, t)
        sigma = diffusers_sigma(sch, i, t, x, x_in)
        a = 1.0 / math.sqrt(1.0 + sigma * sigma)
        xe = x_in / a
        eps = (xe - gmm.denoise(xe, sigma)) / sigma
        nfe += 1
        x = sch.step(eps, t, x, **kw).prev_sample
    assert x.dtype == torch.float64
    return x, nfe


_PROBES = {}


def diffusers_calls(cls, config, steps):
    """Model calls of a run of `steps` steps (one scheduler per config, reused: constructing
    some schedulers costs a set_timesteps over the whole training table)."""
    key = (cls.__name__, json.dumps(config, sort_keys=True))
    if key not in _PROBES:
        _PROBES[key] = cls(**config)
    sch = _PROBES[key]
    sch.set_timesteps(steps)
    return len(sch.timesteps)


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="folder written by `accuracy run --export`")
    ap.add_argument("--targets", default="gmm2d,gmm64d")
    ap.add_argument("--nfe", default="5,10,20,50")
    ap.add_argument("--only", default=None, help="only samplers whose name contains this")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    setup_torch(1)
    nfes = [int(v) for v in args.nfe.split(",")]
    kd, kd_sha = load_k_diffusion_sampling()
    dsched = diffusers_setup()
    rows, notes = [], []
    keep = (lambda s: args.only in s) if args.only else (lambda s: True)

    for target in args.targets.split(","):
        d = args.data / target
        load = lambda n: torch.from_numpy(np.load(d / n)).to(torch.float64)  # noqa: E731
        gmm = TorchGmm(json.loads((d / "gmm.json").read_text()))
        meta = json.loads((d / "meta.json").read_text())
        x_ode, x_sde = load("x_ode.npy"), load("x_sde.npy")
        ref0, ref_min = load("ref_zero.npy"), load("ref_sigma_min.npy")
        exact, dirs = load("exact.npy"), load("dirs.npy")
        ours = vp_uniform_sigmas(10).numpy()
        theirs = np.array(meta["vp_uniform_sigmas_10"])
        assert np.allclose(ours, theirs, rtol=1e-10, atol=0), (ours, theirs)
        check = float((gmm.denoise(load("check_x.npy"), meta["check_sigma"]) - load("check_d.npy")).abs().max())
        notes.append(f"{target}: torch denoiser vs Rust denoiser max |diff| = {check:.1e}")
        print(f"[{target}] torch denoiser vs Rust: {check:.2e}", flush=True)
        assert check < 1e-9, "the Python and Rust denoisers disagree"
        tiny = torch.zeros(1, gmm.dim)

        def row(side, solver, grid, kind, budget, nfe, steps, end, value, error=None, param=None):
            rows.append(
                {
                    "target": target,
                    "side": side,
                    "solver": solver,
                    "grid": grid,
                    "kind": kind,
                    "nfe_target": budget,
                    "nfe": nfe,
                    "steps": steps,
                    "end_sigma": end,
                    "metric": "rms" if kind != "sde" else "sliced_w2",
                    "value": value,
                    "error": error,
                    "param": param,
                }
            )

        def score(kind, out, end=0.0):
            if not torch.isfinite(out).all():
                raise FloatingPointError("non-finite output")
            if kind == "sde":
                return sliced_w2(out, exact, dirs)
            return rms(out, ref_min if end > 0 else ref0)

        # k-diffusion, fixed grids
        for name, kind, fn in kd_samplers(kd):
            if not keep(name):
                continue
            t0 = time.time()
            for gname, gfn in kd_grids(kd).items():
                for budget in nfes:

                    def nfe_of(steps):
                        c = Cheap()
                        fn(c, tiny.clone(), gfn(steps))
                        return c.nfe

                    fit = fit_steps(nfe_of, budget)
                    if fit is None:
                        row("k-diffusion", name, gname, kind, budget, 0, 0, 0.0, None, "no step count fits")
                        continue
                    steps, _ = fit
                    m = Model(gmm)
                    x = (x_ode if kind == "ode" else x_sde).clone()
                    try:
                        out = fn(m, x, gfn(steps))
                        value = score(kind, out)
                        row("k-diffusion", name, gname, kind, budget, m.nfe, steps, 0.0, value)
                    except Exception as e:  # noqa: BLE001
                        row("k-diffusion", name, gname, kind, budget, m.nfe, steps, 0.0, None, str(e) or repr(e))
            print(f"[{target}] k-diffusion {name} ({time.time() - t0:.1f} s)", flush=True)

        # k-diffusion DPM-Solver-fast (fixed NFE) and adaptive, 80 -> 0.002
        if keep("dpm_fast"):
            for budget in nfes:
                m = Model(gmm)
                out = kd.sample_dpm_fast(m, x_ode.clone(), SIGMA_MIN, SIGMA_MAX, budget, disable=True)
                row("k-diffusion", "dpm_fast", "log-snr to 0.002", "ode", budget, m.nfe, budget, SIGMA_MIN, score("ode", out, SIGMA_MIN))
        if keep("dpm_adaptive"):
            for rtol, atol in [(0.05, 0.0078), (0.01, 1e-3), (1e-3, 1e-4), (1e-4, 1e-5)]:
                m = Model(gmm)
                out = kd.sample_dpm_adaptive(m, x_ode.clone(), SIGMA_MIN, SIGMA_MAX, rtol=rtol, atol=atol, disable=True)
                row("k-diffusion", "dpm_adaptive", "80 -> 0.002", "adaptive", 0, m.nfe, 1, SIGMA_MIN, score("ode", out, SIGMA_MIN), param=f"rtol={rtol}, atol={atol}")
            print(f"[{target}] k-diffusion dpm_fast / dpm_adaptive done", flush=True)

        # diffusers
        for name, kind, gname, cls, config in dsched:
            if not keep(name):
                continue
            t0 = time.time()
            for budget in nfes:
                fit = fit_steps(lambda n: diffusers_calls(cls, config, n), budget)
                if fit is None:
                    row("diffusers", name, gname, kind, budget, 0, 0, 0.0, None, "no step count fits")
                    continue
                steps, _ = fit
                x = x_ode if kind == "ode" else x_sde
                try:
                    out, nfe = run_diffusers(cls, config, steps, x, gmm, kind == "sde")
                    value = score(kind, out)
                    row("diffusers", name, gname, kind, budget, nfe, steps, 0.0, value)
                except Exception as e:  # noqa: BLE001
                    row("diffusers", name, gname, kind, budget, 0, steps, 0.0, None, str(e) or repr(e))
            vals = " ".join(f"{r['nfe']}:{r['value']:.1e}" if r["value"] is not None else "fail" for r in rows if r["target"] == target and r["solver"] == name and r["grid"] == gname)
            print(f"[{target}] diffusers {name} [{gname}] {vals} ({time.time() - t0:.1f} s)", flush=True)

    v = versions()
    notes.append("anchors: " + ", ".join(f"{k} {v[k]}" for k in ("torch", "k-diffusion", "diffusers", "torchsde")))
    out = {
        "about": "Python anchors (k-diffusion, diffusers) on the benchmark mixtures; tools/bench/accuracy.py",
        "notes": notes,
        "k_diffusion_sampling_sha256": kd_sha,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
