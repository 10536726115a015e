//! Stochastic solvers of the reverse-time SDE.
//!
//! [`ReversibleHeun`] is the algebraically reversible Heun method (Kidger et al. 2021), whose
//! steps can be undone exactly along the same Brownian path.
//!
//! Besides Euler-Maruyama and reversible Heun these are k-diffusion's stochastic samplers,
//! written in EDM coordinates (`y = x / alpha`, `rho = sigma / alpha`, `lambda = -ln rho`) so
//! they hold for every schedule. Their noise comes from the [`BrownianPath`] as
//! `(W(t1) - W(t0)) / sqrt|t1 - t0|` over the step's schedule times (k-diffusion's
//! `noise_sampler(sigma, sigma_next)`; k-diffusion's Brownian tree runs in sigma, ours in `t`,
//! which only reparameterizes the same path). With a [`diffusion_core::BrownianTree`] the
//! samples converge pathwise as the grid is refined; with `eta = 1, s_noise = 1` they all
//! converge to the same solution of the reverse SDE `dx = [f x - g^2 grad log p] dt + g dW` as
//! [`EulerMaruyama`].
//!
//! What `eta` means differs between samplers, as in k-diffusion: the ancestral ones
//! ([`EulerAncestral`], [`DpmSolverPp2SAncestral`], [`DpmSolverPpSde`]) scale the DDIM noise
//! `sigma_up` by `eta` (so the reverse SDE they discretize has `eta^2` times the noise
//! variance), the multistep ones ([`DpmSolverPp2MSde`], [`DpmSolverPp3MSde`]) multiply the
//! log-SNR rate of the noise by `eta`. Both are exact-law samplers at `eta = 1` and the
//! probability-flow ODE at `eta = 0`.

mod dpmpp_2m_sde;
mod dpmpp_2s_ancestral;
mod dpmpp_3m_sde;
mod dpmpp_sde;
mod euler_ancestral;
mod euler_maruyama;
mod reversible_heun;

pub use dpmpp_2m_sde::{DpmSolverPp2MSde, SecondOrderForm};
pub use dpmpp_2s_ancestral::DpmSolverPp2SAncestral;
pub use dpmpp_3m_sde::DpmSolverPp3MSde;
pub use dpmpp_sde::DpmSolverPpSde;
pub use euler_ancestral::EulerAncestral;
pub use euler_maruyama::EulerMaruyama;
pub use reversible_heun::{ReversibleHeun, ReversibleHeunState};

use crate::error::{Result, SolverError};
use crate::ode::Level;
use diffusion_core::{BrownianPath, State};

/// The noise controls shared by k-diffusion's stochastic samplers, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NoiseControl {
    /// Stochasticity: 0 is the probability-flow ODE, 1 the exact reverse SDE.
    pub eta: f64,
    /// Multiplier of every injected noise (1 is exact; k-diffusion's `s_noise`).
    pub s_noise: f64,
}

impl NoiseControl {
    /// Checks that both are finite and `>= 0`.
    pub fn new(eta: f64, s_noise: f64) -> Result<Self> {
        for (name, v) in [("eta", eta), ("s_noise", s_noise)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(SolverError::InvalidParameter {
                    name,
                    reason: format!("must be finite and >= 0, got {v}"),
                });
            }
        }
        Ok(NoiseControl { eta, s_noise })
    }

    /// `true` when a step injects noise.
    pub fn is_stochastic(&self) -> bool {
        self.eta > 0.0 && self.s_noise > 0.0
    }

    /// The declared order: `ode_order` at `eta = 0` (the solver is then an ODE solver), else
    /// strong order 1 (additive noise approximated by one Gaussian per interval; see the
    /// strong-convergence tests).
    pub fn order(&self, ode_order: f64) -> f64 {
        if self.eta == 0.0 {
            ode_order
        } else {
            1.0
        }
    }

    /// `eta=..,s_noise=..` for solver names.
    pub fn describe(&self) -> String {
        format!("eta={},s_noise={}", self.eta, self.s_noise)
    }
}

/// An ancestral split of a step (k-diffusion's `get_ancestral_step` in EDM noise levels):
/// move deterministically to `rho_down`, then add `rho_up` times a standard normal, with
/// `rho_down^2 + rho_up^2 = rho_to^2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AncestralSplit {
    /// The noise level the deterministic move ends at.
    pub rho_down: f64,
    /// `-ln rho_down` (`+inf` when `rho_down = 0`).
    pub lambda_down: f64,
    /// The standard deviation (in EDM units) of the added noise.
    pub rho_up: f64,
}

/// `rho_up = min(rho1, eta rho1 sqrt(1 - rho1^2 / rho0^2))` (the DDIM-eta standard deviation
/// of Song et al. 2021, arXiv:2010.02502, Eq. 16, in EDM units), computed from the log-SNR gap
/// so that small steps keep full precision. `eta = 0` or a step to noise level 0 gives
/// `rho_down = rho1` exactly.
pub(crate) fn ancestral_split(from: &Level, to: &Level, eta: f64) -> AncestralSplit {
    if eta == 0.0 || to.is_data() {
        return AncestralSplit {
            rho_down: to.rho,
            lambda_down: to.lambda,
            rho_up: 0.0,
        };
    }
    let h = to.lambda - from.lambda;
    let frac = (eta * (-(-2.0 * h).exp_m1()).max(0.0).sqrt()).min(1.0);
    let keep = 1.0 - frac * frac;
    let (rho_down, lambda_down) = if keep <= 0.0 {
        (0.0, f64::INFINITY)
    } else {
        (
            to.rho * keep.sqrt(),
            to.lambda - 0.5 * (-frac * frac).ln_1p(),
        )
    };
    AncestralSplit {
        rho_down,
        lambda_down,
        rho_up: to.rho * frac,
    }
}

/// `x + coef z` with `z = (W(t1) - W(t0)) / sqrt|t1 - t0|`; draws nothing when `coef = 0`.
pub(crate) fn add_noise<S: State>(
    x: S,
    coef: f64,
    noise: &mut dyn BrownianPath<S>,
    t0: f64,
    t1: f64,
) -> Result<S> {
    if coef == 0.0 {
        return Ok(x);
    }
    let z = noise.normalized(t0, t1, &x)?;
    Ok(x.lincomb(1.0, &z, coef))
}

/// `phi_2(z) = (e^{-z} - 1 + z) / z`: the weight of the first divided difference in the
/// exponential integrators of DPM-Solver++ (k-diffusion's `phi_2` of `sample_dpmpp_3m_sde`).
pub(crate) fn phi_2(z: f64) -> f64 {
    (-z).exp_m1() / z + 1.0
}

/// `phi_3(z) = phi_2(z) / z - 1/2`: the weight of the second divided difference.
pub(crate) fn phi_3(z: f64) -> f64 {
    phi_2(z) / z - 0.5
}

/// The frame shared by DPM-Solver++(2M) SDE and (3M) SDE (k-diffusion's `sample_dpmpp_2m_sde`
/// and `sample_dpmpp_3m_sde`): with `h = lambda1 - lambda0` and `h_eta = (1 + eta) h`,
/// `x1 = alpha1 [e^{-h_eta} y0 + (1 - e^{-h_eta}) D0 + sum_k w_k D_k]
///      + sigma1 sqrt(1 - e^{-2 eta h}) s_noise z`,
/// where `terms` holds the correction weights `w_k` (relative to `alpha1`) and the data
/// predictions `D_k`. A step to noise level 0 returns `alpha1 D0` (k-diffusion's denoising
/// step).
pub(crate) fn exp_sde_step<S: State>(
    x: &S,
    from: &Level,
    to: &Level,
    ctl: &NoiseControl,
    d0: &S,
    terms: &[(f64, &S)],
    noise: &mut dyn BrownianPath<S>,
) -> Result<S> {
    if to.is_data() {
        return Ok(d0.scale(to.alpha));
    }
    let h = to.lambda - from.lambda;
    let h_eta = (1.0 + ctl.eta) * h;
    let mut out = x.lincomb(
        to.alpha / from.alpha * (-h_eta).exp(),
        d0,
        -to.alpha * (-h_eta).exp_m1(),
    );
    for &(w, d) in terms {
        out = out.lincomb(1.0, d, to.alpha * w);
    }
    let coef = if ctl.is_stochastic() {
        to.alpha * to.rho * (-(-2.0 * ctl.eta * h).exp_m1()).max(0.0).sqrt() * ctl.s_noise
    } else {
        0.0
    };
    add_noise(out, coef, noise, from.t, to.t)
}
