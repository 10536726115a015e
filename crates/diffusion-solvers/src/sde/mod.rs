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
//!
//! The other stochastic samplers here: DDPM ancestral sampling ([`Ddpm`]), multistep
//! consistency sampling ([`Consistency`]), the EDM churn
//! sampler ([`EdmSde`]), SA-Solver ([`SaSolver`], the same exponential-integrator frame with
//! `eta = tau^2` and Adams weights), ER-SDE-Solvers ([`ErSde`]), Score-SDE predictor-corrector
//! sampling ([`PredictorCorrector`]) and restart sampling ([`Restart`]). The shared pieces:
//! `NoiseControl`, `ancestral_split`, `add_noise`, `move_with_noise`, the exponential-integrator
//! frame (`exp_sde_step`: the mean and the noise of `exp_noise_coef` in one combination), `phi`
//! functions, exponentially weighted Lagrange weights (`exp_lagrange_weights`) and
//! Gauss-Legendre quadrature.
//! [`Mrs`] (the MR Sampler) holds the exponential integrators of a mean-reverting SDE around a
//! condition `mu`, in both ODE and SDE forms.

/// The [`Solver`](crate::Solver) methods of a solver whose stochasticity is its `ctl:
/// NoiseControl` field: `name` as `kind(eta=..,s_noise=..)`, `order` (`ode_order` at `eta = 0`)
/// and `is_stochastic`.
macro_rules! noise_control_solver_info {
    ($kind:literal, $ode_order:expr) => {
        fn name(&self) -> String {
            format!(concat!($kind, "({})"), self.ctl.describe())
        }
        fn order(&self) -> f64 {
            self.ctl.order($ode_order)
        }
        fn is_stochastic(&self) -> bool {
            self.ctl.is_stochastic()
        }
    };
}

mod consistency;
mod ddpm;
mod dpmpp_2m_sde;
mod dpmpp_2s_ancestral;
mod dpmpp_3m_sde;
mod dpmpp_sde;
mod edm_sde;
mod er_sde;
mod euler_ancestral;
mod euler_maruyama;
mod mrs;
mod pc;
mod restart;
mod reversible_heun;
mod sa_solver;

pub use dpmpp_2m_sde::{DpmSolverPp2MSde, SecondOrderForm};
pub use dpmpp_2s_ancestral::DpmSolverPp2SAncestral;
pub use dpmpp_3m_sde::DpmSolverPp3MSde;
pub use dpmpp_sde::DpmSolverPpSde;
pub use euler_ancestral::EulerAncestral;
pub use euler_maruyama::EulerMaruyama;
pub use mrs::{Mrs, MrsPrediction};

pub use consistency::Consistency;
pub use ddpm::{Ddpm, PosteriorVariance};
pub use edm_sde::EdmSde;
pub use er_sde::{ErSde, NoiseScale, MAX_ER_SDE_ORDER};
pub use pc::{Predictor, PredictorCorrector};
pub use restart::Restart;
pub use reversible_heun::{ReversibleHeun, ReversibleHeunState};
pub use sa_solver::{SaSolver, MAX_SA_ORDER};

use crate::error::{Result, SolverError};
use crate::ode::{Level, GAUSS_LEGENDRE_4};
use crate::ops::{lincomb3_checked, lincomb_checked, lincomb_terms_checked, scale_reusing};
use crate::solver::{Cache, Step};
use diffusion_core::{BrownianPath, State};

/// The noise controls shared by k-diffusion's stochastic samplers, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NoiseControl {
    /// Stochasticity: 0 is the probability-flow ODE, 1 the exact reverse SDE.
    pub eta: f64,
    /// Multiplier of every injected noise (1 is exact; k-diffusion's `s_noise`).
    pub s_noise: f64,
}

impl Default for NoiseControl {
    /// k-diffusion's defaults, `eta = 1`, `s_noise = 1` (the exact reverse SDE).
    fn default() -> Self {
        NoiseControl {
            eta: 1.0,
            s_noise: 1.0,
        }
    }
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

/// A step's whole update `a x + b d + coef z`, `z = (W(t1) - W(t0)) / sqrt|t1 - t0|`, in one
/// pass over the state that also checks it ([`Cache::set_checked`]); draws nothing when
/// `coef = 0`. The noise buffer goes back to `cache`. For the ancestral steps whose move is one
/// combination of the state and one prediction (Euler ancestral, DDPM, DPM-Solver++(2S)
/// ancestral).
#[allow(clippy::too_many_arguments)]
pub(crate) fn move_with_noise<S: State>(
    x: S,
    a: f64,
    d: &S,
    b: f64,
    coef: f64,
    noise: &mut dyn BrownianPath<S>,
    (t0, t1): (f64, f64),
    cache: &mut Cache<S>,
) -> Result<S> {
    let (out, checked) = if coef == 0.0 {
        lincomb_checked(x, a, d, b)
    } else {
        let (z, c) = draw_normalized(noise, (t0, t1), &x, cache.take_spare())?;
        let r = lincomb3_checked(x, a, d, b, &z, c * coef);
        cache.recycle(z);
        r
    };
    cache.set_checked(checked);
    Ok(out)
}

/// `(z, c)` with `c z = (W(t1) - W(t0)) / sqrt|t1 - t0|`, drawn into `buf` (a spare buffer of
/// the cache; a new state when `None`) by [`BrownianPath::normalized_into`]: independent
/// increments write their draw into the buffer's storage and return the sign, so a step in a
/// long run allocates nothing for its noise. Fold `c` into the noise coefficient and hand `z`
/// back to the cache.
pub(crate) fn draw_normalized<S: State>(
    noise: &mut dyn BrownianPath<S>,
    (t0, t1): (f64, f64),
    like: &S,
    buf: Option<S>,
) -> Result<(S, f64)> {
    draw_into(like, buf, |z| noise.normalized_into(t0, t1, z))
}

/// `buf` (or a new state shaped like `like`) filled by `draw`, with the factor it returns.
fn draw_into<S: State>(
    like: &S,
    buf: Option<S>,
    draw: impl FnOnce(&mut S) -> diffusion_core::Result<f64>,
) -> Result<(S, f64)> {
    let mut z = buf.unwrap_or_else(|| like.zeros_like());
    let c = draw(&mut z)?;
    Ok((z, c))
}

/// [`draw_normalized`] over the step's interval into a spare of `cache`; `None` (nothing drawn)
/// when the step's noise coefficient `coef` is zero.
pub(crate) fn draw_step_noise<S: State>(
    coef: f64,
    noise: &mut dyn BrownianPath<S>,
    step: &Step<'_, S>,
    like: &S,
    cache: &mut Cache<S>,
) -> Result<Option<(S, f64)>> {
    if coef == 0.0 {
        return Ok(None);
    }
    draw_normalized(noise, (step.t0, step.t1), like, cache.take_spare()).map(Some)
}

/// `(w, c)` with `c w = W(t1) - W(t0)`, drawn into `buf` as [`draw_normalized`] does
/// ([`BrownianPath::increment_into`]).
pub(crate) fn draw_increment<S: State>(
    noise: &mut dyn BrownianPath<S>,
    (t0, t1): (f64, f64),
    like: &S,
    buf: Option<S>,
) -> Result<(S, f64)> {
    draw_into(like, buf, |w| noise.increment_into(t0, t1, w))
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
/// step). The whole combination, noise included, is one [`lincomb_terms_checked`] over the
/// state (`ceil(n / 2)` passes for `n` terms, the last one checking the result); the noise is
/// drawn after the model, as before, into `buf` (a spare the caller took from the cache before
/// borrowing its history; [`draw_normalized`]). The caller hands the result to
/// [`SdeStepOut::finish`] once its borrows of the cache's history end (the buffer goes back to
/// the cache there). Coefficients from [`exp_noise_coef`].
pub(crate) fn exp_sde_step<S: State>(
    x: S,
    from: &Level,
    to: &Level,
    ctl: &NoiseControl,
    d0: &S,
    terms: &[(f64, &S)],
    noise: &mut dyn BrownianPath<S>,
    buf: Option<S>,
) -> Result<SdeStepOut<S>> {
    if to.is_data() {
        return Ok(SdeStepOut {
            state: scale_reusing(d0, to.alpha, x),
            checked: false,
            spare: buf,
        });
    }
    let h_eta = (1.0 + ctl.eta) * (to.lambda - from.lambda);
    let coef = exp_noise_coef(from, to, ctl);
    // Without noise the buffer goes back unused.
    let (z, unused) = if coef != 0.0 {
        (Some(draw_normalized(noise, (from.t, to.t), &x, buf)?), None)
    } else {
        (None, buf)
    };
    let mut all: Vec<(f64, &S)> = Vec::with_capacity(terms.len() + 2);
    all.push((to.alpha * -(-h_eta).exp_m1(), d0));
    all.extend(terms.iter().map(|&(w, d)| (to.alpha * w, d)));
    if let Some((z, c)) = &z {
        all.push((c * coef, z));
    }
    let (state, checked) = lincomb_terms_checked(x, to.alpha / from.alpha * (-h_eta).exp(), &all);
    Ok(SdeStepOut {
        state,
        checked,
        spare: z.map(|(z, _)| z).or(unused),
    })
}

/// A step's new state with what the cache should learn: whether its last pass checked it
/// ([`Cache::set_checked`]) and a buffer it no longer needs (the noise draw).
pub(crate) struct SdeStepOut<S> {
    state: S,
    checked: bool,
    spare: Option<S>,
}

impl<S: State> SdeStepOut<S> {
    /// Tells `cache` and returns the state.
    pub(crate) fn finish(self, cache: &mut Cache<S>) -> S {
        cache.set_checked(self.checked);
        if let Some(z) = self.spare {
            cache.recycle(z);
        }
        self.state
    }
}

/// The noise coefficient of [`exp_sde_step`]: `alpha1 rho1 sqrt(1 - e^{-2 eta h}) s_noise`, the
/// exact standard deviation of the reverse SDE with `eta`-scaled log-SNR noise rate over the
/// step (0 when the controls draw no noise).
pub(crate) fn exp_noise_coef(from: &Level, to: &Level, ctl: &NoiseControl) -> f64 {
    if !ctl.is_stochastic() || to.is_data() {
        return 0.0;
    }
    let h = to.lambda - from.lambda;
    to.alpha * to.rho * (-(-2.0 * ctl.eta * h).exp_m1()).max(0.0).sqrt() * ctl.s_noise
}

/// `psi_p(z) = int_0^1 e^{-z (1 - v)} v^p dv` for `p = 0..n`: the moments of the exponential
/// weight of data-prediction exponential integrators over one step (in units of the step).
/// A power series for `z < 1` (no cancellation for small steps), else the stable recurrence
/// `psi_0 = (1 - e^{-z}) / z`, `psi_p = (1 - p psi_{p-1}) / z`. Note `z psi_1(z) = phi_2(z)`.
pub(crate) fn exp_moments(z: f64, n: usize) -> Vec<f64> {
    if z < 1.0 {
        (0..n)
            .map(|p| {
                // psi_p = sum_j (-z)^j p! / (p + j + 1)!.
                let mut term = 1.0 / (p + 1) as f64;
                let mut sum = term;
                for j in 1..80 {
                    term *= -z / (p + j + 1) as f64;
                    sum += term;
                    if term.abs() <= 1e-18 * sum.abs() {
                        break;
                    }
                }
                sum
            })
            .collect()
    } else {
        let mut out = Vec::with_capacity(n);
        let mut prev = -(-z).exp_m1() / z;
        for p in 0..n {
            if p > 0 {
                prev = (1.0 - p as f64 * prev) / z;
            }
            out.push(prev);
        }
        out
    }
}

/// Monomial coefficients of the Lagrange basis of distinct `nodes`: row `j` holds `a_{j,p}`
/// with `L_j(u) = sum_p a_{j,p} u^p` (`L_j(nodes[k]) = 1` if `j = k`, else 0).
pub(crate) fn lagrange_basis(nodes: &[f64]) -> Vec<Vec<f64>> {
    (0..nodes.len())
        .map(|j| {
            let mut c = vec![1.0];
            for (k, &nk) in nodes.iter().enumerate() {
                if k == j {
                    continue;
                }
                let scale = 1.0 / (nodes[j] - nk);
                let mut next = vec![0.0; c.len() + 1];
                for (p, &cp) in c.iter().enumerate() {
                    next[p + 1] += cp * scale;
                    next[p] -= nk * cp * scale;
                }
                c = next;
            }
            c
        })
        .collect()
}

/// Exponentially weighted Lagrange integrals of one data-prediction exponential-integrator
/// step: `w_j = z int_0^1 e^{-z (1 - v)} L_j(v) dv` for the Lagrange basis of `nodes` (positions
/// in units of the step, measured from its start: 0 is the step's start, 1 its end, negative
/// values earlier steps). `sum_j w_j = 1 - e^{-z}`; with `z = (1 + tau^2) h` these are the
/// `b`-coefficients of SA-Solver (Xue et al. 2023, arXiv:2309.05019, Eq. 15 and 18) relative to
/// `alpha1`, and with `tau = 0` those of the Adams-type DPM-Solver++ updates.
pub(crate) fn exp_lagrange_weights(nodes: &[f64], z: f64) -> Vec<f64> {
    let psi = exp_moments(z, nodes.len());
    lagrange_basis(nodes)
        .iter()
        .map(|a| z * a.iter().zip(&psi).map(|(a, m)| a * m).sum::<f64>())
        .collect()
}

/// `int_a^b f` by composite 4-point Gauss-Legendre quadrature on `panels` equal panels (exact
/// for cubics on each panel; for smooth `f` the error falls like `panels^-8`).
pub(crate) fn gauss_legendre(f: impl Fn(f64) -> f64, a: f64, b: f64, panels: usize) -> f64 {
    let panels = panels.max(1);
    let width = (b - a) / panels as f64;
    (0..panels)
        .map(|i| {
            let mid = a + (i as f64 + 0.5) * width;
            0.5 * width
                * GAUSS_LEGENDRE_4
                    .iter()
                    .map(|&(xi, w)| w * f(mid + 0.5 * width * xi))
                    .sum::<f64>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_moments_match_quadrature_on_both_branches() {
        for z in [1e-6, 0.03, 0.7, 0.999, 1.0, 2.5, 30.0] {
            let m = exp_moments(z, 4);
            for (p, mp) in m.iter().enumerate() {
                let q =
                    gauss_legendre(|v| (-z * (1.0 - v)).exp() * v.powi(p as i32), 0.0, 1.0, 512);
                assert!(
                    (mp - q).abs() <= 1e-13 * q.abs().max(1e-300),
                    "z {z} p {p}: {mp} vs {q}"
                );
            }
            assert!((z * m[1] - phi_2(z)).abs() < 1e-9 * phi_2(z), "z {z}");
        }
    }

    #[test]
    fn lagrange_weights_integrate_the_interpolant_exactly() {
        // The weights must reproduce z int_0^1 e^{-z(1-v)} q(v) dv for every polynomial q of
        // degree < n, e.g. q(v) = v^2 - 3v + 2 with 3 nodes.
        let nodes = [0.0, -0.7, -1.9];
        for z in [0.05, 1.3, 7.0] {
            let w = exp_lagrange_weights(&nodes, z);
            let q = |v: f64| v * v - 3.0 * v + 2.0;
            let got: f64 = w.iter().zip(&nodes).map(|(w, &v)| w * q(v)).sum();
            let want = z * gauss_legendre(|v| (-z * (1.0 - v)).exp() * q(v), 0.0, 1.0, 512);
            assert!((got - want).abs() < 1e-12, "z {z}: {got} vs {want}");
            let total: f64 = w.iter().sum();
            assert!((total + (-z).exp_m1()).abs() < 1e-14);
        }
        let basis = lagrange_basis(&[1.0, 0.0, -1.0]);
        // L_0(u) = u (u + 1) / 2.
        assert_eq!(basis[0], vec![0.0, 0.5, 0.5]);
    }
}
