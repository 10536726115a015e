"""EDM's deterministic sampler in PyTorch: the reference side's sampler of the quality comparison
(tools/bench/train_torch.py --samples) and of the sampling fixture (tools/refdata/
make_net_fixtures.py, `sample_case`, read by crates/diffusion-models/tests/sample_parity.rs).

Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
Generative Models", arXiv:2206.00364, Algorithm 1 with the Karras grid of Eq. (5): sigma_min
0.002, sigma_max 80, rho 7, `steps` noise levels and a final 0, Heun's correction on every step
but the last (an Euler step to 0): 2 * steps - 1 network evaluations. The Rust side is the `heun`
solver on the `karras` grid through `TchDenoiser` (`Trainer::sample_from`).
"""

import torch

from nets import edm_denoise


def karras_sigmas(n, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    """The `n` noise levels of the Karras grid (float64), then 0."""
    i = torch.arange(n, dtype=torch.float64) / max(n - 1, 1)
    s = (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, torch.zeros(1, dtype=torch.float64)])


@torch.no_grad()
def heun_sample(net, x, steps, sigma_data, y=None):
    """Algorithm 1 from the initial states `x` (already at sigma_max's scale) in `x`'s dtype,
    with the EDM-preconditioned `net` (nets.edm_denoise) and labels `y`."""
    sig = karras_sigmas(steps)
    n = x.shape[0]
    for i in range(steps):
        s0, s1 = sig[i].item(), sig[i + 1].item()
        sv = torch.full((n,), s0, device=x.device, dtype=x.dtype)
        d0 = (x - edm_denoise(net, x, sv, sigma_data, y)) / s0
        x1 = x + (s1 - s0) * d0
        if s1 > 0:
            sv1 = torch.full((n,), s1, device=x.device, dtype=x.dtype)
            d1 = (x1 - edm_denoise(net, x1, sv1, sigma_data, y)) / s1
            x1 = x + (s1 - s0) * 0.5 * (d0 + d1)
        x = x1
    return x
