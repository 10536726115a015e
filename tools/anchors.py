"""Shared helpers for the scripts that run the Python anchors (k-diffusion, diffusers).

Used by tools/refdata/make_fixtures.py (reference fixtures) and tools/bench/*.py (side-by-side
timings and accuracy per NFE). Everything here is plain torch/numpy; the anchors are the
versions pinned in xtask/src/refdata.rs and installed by `cargo xtask refdata` or
`cargo xtask bench` into the cached torch venv.

* `load_k_diffusion_sampling()`: k-diffusion is installed with --no-deps (its dependency list is
  for training and evaluation: wandb, clean-fid, clip, kornia, torchvision, ...), and
  `k_diffusion/__init__.py` imports all of that, so `k_diffusion/sampling.py` is loaded by path
  under a stand-in package whose `utils` module holds only `append_dims` (the one helper
  sampling.py uses), compiled from the installed `k_diffusion/utils.py` source. Its other
  imports (scipy, torchdiffeq, torchsde, tqdm) are real.
* `Float64Names` / `patch_diffusers_float64()`: diffusers builds its tables with an explicit
  `dtype=torch.float32` and upcasts to float32 inside `step`; rebinding a scheduler module's
  global `torch` / `np` names to proxies whose `float32` attribute is `float64` runs diffusers'
  own code in double precision.
* `TorchGmm`: the exact denoiser `E[x0 | x0 + sigma * eps]` of a Gaussian mixture with full
  covariances (EDM coordinates, alpha = 1), from the eigendecompositions of the covariances.
"""

import ast
import hashlib
import importlib.util
import math
import sys
import types
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

VERSIONED = ["torch", "numpy", "scipy", "torchsde", "torchdiffeq", "tqdm", "diffusers", "k-diffusion"]


def versions():
    """Installed versions of the anchors and their numerical dependencies."""
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def load_k_diffusion_sampling():
    """`(module, sha256)` of the installed k_diffusion/sampling.py, loaded by path."""
    if "k_diffusion.sampling" in sys.modules and hasattr(sys.modules["k_diffusion.sampling"], "_anchors_sha256"):
        mod = sys.modules["k_diffusion.sampling"]
        return mod, mod._anchors_sha256
    dist = metadata.distribution("k-diffusion")
    sampling_path = Path(dist.locate_file("k_diffusion/sampling.py"))
    utils_path = Path(dist.locate_file("k_diffusion/utils.py"))
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = [str(sampling_path.parent)]
    utils = types.ModuleType("k_diffusion.utils")
    tree = ast.parse(utils_path.read_text())
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "append_dims"]
    assert len(fns) == 1, "k_diffusion/utils.py has no append_dims"
    code = compile(ast.Module(body=fns, type_ignores=[]), str(utils_path), "exec")
    exec(code, utils.__dict__)
    pkg.utils = utils
    sys.modules["k_diffusion"] = pkg
    sys.modules["k_diffusion.utils"] = utils
    spec = importlib.util.spec_from_file_location("k_diffusion.sampling", sampling_path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["k_diffusion.sampling"] = mod
    spec.loader.exec_module(mod)
    digest = hashlib.sha256(sampling_path.read_bytes()).hexdigest()
    mod._anchors_sha256 = digest
    return mod, digest


class Float64Names:
    """A module proxy whose `float32` is `float64` (everything else passes through)."""

    def __init__(self, mod):
        self._mod = mod

    def __getattr__(self, name):
        return getattr(self._mod, "float64" if name == "float32" else name)


def patch_diffusers_float64(modules, float64=True):
    """Rebinds (or restores) the `torch` / `np` globals of diffusers scheduler modules."""
    for m in modules:
        m.torch = Float64Names(torch) if float64 else torch
        m.np = Float64Names(np) if float64 else np


class TorchGmm:
    """Exact denoiser of a Gaussian mixture `sum_k w_k N(mu_k, U_k diag(l_k) U_k^T)`.

    `spec` is the JSON form used by diffusion-core (`{"weights", "means", "covariances"}`).
    `denoise(x, sigma)` is `E[x0 | x0 + sigma * eps = x]` for rows `x` (EDM coordinates):
    with `r = x - mu_k` and `y = U_k^T r`, the component's log-likelihood is
    `-0.5 * (sum y^2 / (l + s^2) + sum log(l + s^2))` and its posterior mean is
    `mu_k + U_k (l / (l + s^2) * y)`.
    """

    def __init__(self, spec, dtype=torch.float64):
        self.dtype = dtype
        self.log_w = torch.log(torch.tensor(spec["weights"], dtype=dtype))
        self.mu = torch.tensor(spec["means"], dtype=dtype)
        cov = torch.tensor(spec["covariances"], dtype=dtype)
        lam, u = torch.linalg.eigh(cov)
        self.lam = lam.clamp(min=0.0)
        self.u = u
        self.dim = self.mu.shape[1]

    def denoise(self, x, sigma):
        sigma = float(sigma)
        s2 = sigma * sigma
        logits, means = [], []
        for k in range(self.mu.shape[0]):
            r = x - self.mu[k]
            y = r @ self.u[k]
            v = self.lam[k] + s2
            logits.append(self.log_w[k] - 0.5 * (y * y / v).sum(1) - 0.5 * torch.log(v).sum())
            means.append(self.mu[k] + (y * (self.lam[k] / v)) @ self.u[k].T)
        resp = torch.softmax(torch.stack(logits), dim=0)
        out = resp[0][:, None] * means[0]
        for k in range(1, len(means)):
            out = out + resp[k][:, None] * means[k]
        return out


def diffusers_sigma(sch, call, timestep, sample, model_input, tol=1e-6):
    """The EDM noise level at which a diffusers scheduler evaluates the model on call `call`.

    * sigma-space schedulers (Euler, Heun, KDPM2, LMS, EulerAncestral, ...) keep the sample in
      EDM coordinates and scale the model input by `1 / sqrt(sigma^2 + 1)`; sigma is read back
      from that factor and snapped to the nearest entry of the scheduler's own `sigmas` /
      `sigmas_interpol` table (so it is exactly the value the scheduler used);
    * VP-space multistep schedulers (DPMSolverMultistep/Singlestep, UniPC, DEIS) evaluate once
      per timestep, at `sigmas[call]`;
    * DDIM reads `alphas_cumprod[timestep]`.

    `tol` bounds the relative distance between the read-back sigma and the table entry (stock
    diffusers computes the scale factor in float32; 1e-6 holds with the float64 patch).
    """
    if not hasattr(sch, "sigmas"):
        abar = float(sch.alphas_cumprod[int(timestep)])
        return math.sqrt((1.0 - abar) / abar)
    if float(sch.init_noise_sigma) == 1.0:
        return float(sch.sigmas[call])
    num = float((sample.reshape(-1)[:64].abs()).sum())
    den = float((model_input.reshape(-1)[:64].abs()).sum())
    ratio = num / den
    approx = math.sqrt(max(ratio * ratio - 1.0, 0.0))
    cands = [float(v) for v in sch.sigmas.reshape(-1)]
    if getattr(sch, "sigmas_interpol", None) is not None:
        cands += [float(v) for v in sch.sigmas_interpol.reshape(-1)]
    cands = [c for c in cands if c > 0]
    best = min(cands, key=lambda c: abs(math.log(c) - math.log(max(approx, 1e-300))))
    assert abs(best - approx) <= tol * best + 1e-9, f"no table sigma near {approx} ({best})"
    return best


def vp_alpha(sigma):
    """`alpha` of the variance-preserving scaling at EDM noise level `sigma`: 1/sqrt(1+sigma^2)."""
    return 1.0 / math.sqrt(1.0 + float(sigma) ** 2)


def setup_torch(threads=1):
    """Double precision by default, and a fixed number of intra-op threads."""
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# Counter-based normals shared with benches/src/noise.rs (common random numbers).

_M64 = (1 << 64) - 1


def _splitmix64_int(x):
    z = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _splitmix64_np(x):
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def counter_normals(seed, call, n):
    """`n` standard normals for call `call` of a run seeded `seed`: SplitMix64 of (seed, call,
    index) and Box-Muller, exactly as `counter_normals` in benches/src/noise.rs."""
    key = _splitmix64_int(_splitmix64_int(seed) ^ ((call * 0xD1B54A32D192ED03) & _M64))
    j = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        a = _splitmix64_np(np.uint64(key) + np.uint64(2) * j)
        b = _splitmix64_np(np.uint64(key) + np.uint64(2) * j + np.uint64(1))
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53
    u2 = (b >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


class CounterNoise:
    """Serves call k of a run with `counter_normals(seed, k, ...)` shaped like the request: a
    k-diffusion `noise_sampler(sigma, sigma_next)`, or (`randn_tensor`) a stand-in for diffusers'
    `randn_tensor(shape, ...)`.

    As a noise sampler it is one Brownian path: a call on (t, b) right after a call on (t, s)
    (the two sub-steps of sample_dpmpp_sde) returns the normalized W(t, b) = W(t, s) + W(s, b)
    built from the previous draw and a new one, which is what the project's dpmpp-sde computes
    from its queries W(t, s) and W(s, b) (benches/src/noise.rs)."""

    def __init__(self, seed, like=None):
        self.seed = seed
        self.call = 0
        self.like = like
        self.last = None

    def _next(self, shape, dtype):
        n = int(np.prod(shape))
        z = torch.from_numpy(counter_normals(self.seed, self.call, n).reshape(shape)).to(dtype)
        self.call += 1
        return z

    def __call__(self, sigma, sigma_next):
        a, b = float(sigma), float(sigma_next)
        z = self._next(tuple(self.like.shape), self.like.dtype)
        if self.last is not None and self.last[0] == a:
            _, s, zj = self.last
            self.last = None
            return (zj * math.sqrt(abs(s - a)) + z * math.sqrt(abs(b - s))) / math.sqrt(abs(b - a))
        self.last = (a, b, z)
        return z

    def randn_tensor(self, shape, generator=None, device=None, dtype=None, layout=None):
        return self._next(tuple(shape), dtype or torch.float64)
