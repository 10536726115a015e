//! Deterministic solvers of the probability-flow ODE.
//!
//! Shared coordinates: with `y = x / alpha`, `rho = sigma / alpha` (k-diffusion's sigma) and
//! `lambda = -ln rho` the PF-ODE of every linear schedule is `dy/drho = eps_hat(y, rho)`, or in
//! data prediction `dy/dlambda = x0_hat - y`. The helpers below take one step in these
//! coordinates and map back with the target `alpha`, so every solver here (and the stochastic
//! ones in [`crate::sde`]) is valid for every schedule.
//!
//! Besides the solvers, this module holds the numerics they share, so that no two solvers carry
//! copies of the same formula:
//! - the EDM-coordinate (`rho = sigma / alpha`) move used by Euler, Heun, DDIM, DPM2 and every
//!   Adams-type method on `eps` (LMS, DEIS, iPNDM, PLMS), with a model evaluation kept as the
//!   cheapest exact `Slope` (a data prediction folded into the next combination) or, for the
//!   multistep methods, in the cache's noise history, and the update written into the state in
//!   one checked pass per two terms;
//! - the exponential-integrator moves in `lambda = ln(alpha / sigma)` for noise prediction
//!   (DPM-Solver) and data prediction (DPM-Solver++, UniPC), with the `phi_k` functions;
//! - Lagrange bases, Gauss-Legendre quadrature and a small dense linear solve for the
//!   coefficients of variable-step multistep methods;
//! - the order schedule of multistep methods (warm-up, `lower_order_final`, step to sigma = 0).
//!
//! DPM-Solver-v3 ([`DpmSolverV3`]) needs the empirical model statistics of its model ([`Ems`],
//! estimated by [`estimate_ems`]), so it is built in code, not from the registry; so is
//! [`Iia`] (IIA on DDIM, Heun or DPM-Solver++(2M)), whose per-step coefficients are fitted on pilot samples for one grid.

mod ddim;
mod deis;
mod dpm2;
mod dpm_solver;
mod dpm_solver_v3;
mod dpm_solver_v3_ems;
mod dpmpp_2m;
mod dpmpp_2s;
mod dpmpp_3m;
mod euler;
mod heun;
mod iia;
mod ipndm;
mod lms;
mod plms;
mod res_multistep;
mod unipc;

pub use ddim::Ddim;
pub use deis::{Deis, DeisForm};
pub use dpm2::Dpm2;
pub use dpm_solver::DpmSolver;
pub use dpm_solver_v3::{DpmSolverV3, V3Corrector};
pub use dpm_solver_v3_ems::{estimate_ems, Ems, EmsOptions};
pub use dpmpp_2m::DpmSolverPp2M;
pub use dpmpp_2s::DpmSolverPp2S;
pub use dpmpp_3m::{DpmSolverPp3M, Dpmpp3MWeight};
pub use euler::Euler;
pub use heun::Heun;
pub use iia::{Iia, IiaBase};
pub use ipndm::Ipndm;
pub(crate) use lms::GAUSS_LEGENDRE_4;
pub use lms::{Lms, MAX_LMS_ORDER};
pub use plms::Plms;
pub use res_multistep::ResMultistep;
pub use unipc::{UniPc, UniPcVariant};

pub(crate) use dpm_solver::{dpm_solver_2, dpm_solver_3};

use crate::error::{Result, SolverError};
use crate::ops::{
    lincomb3_checked, lincomb_checked, lincomb_owned, lincomb_reusing, lincomb_terms_checked,
    scale_reusing,
};
use crate::solver::{Cache, Eval, Step};
use diffusion_core::{denoise, Coeffs, Denoiser, NoiseSchedule, Prediction, State};

/// Where a schedule stands at one time: the host numbers every step needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Level {
    /// The schedule time.
    pub t: f64,
    /// Signal coefficient `alpha(t)`.
    pub alpha: f64,
    /// EDM noise level `rho = sigma / alpha` (0 at the data end).
    pub rho: f64,
    /// Half log-SNR `lambda = -ln rho` (`+inf` where `rho = 0`).
    pub lambda: f64,
}

impl Level {
    /// The level of `schedule` at time `t`.
    pub fn at(schedule: &dyn NoiseSchedule, t: f64) -> Self {
        let rho = schedule.noise_ratio(t);
        Level {
            t,
            alpha: schedule.alpha(t),
            rho,
            lambda: if rho <= 0.0 {
                f64::INFINITY
            } else {
                schedule.lambda(t)
            },
        }
    }

    /// `true` at noise level 0 (a step there must denoise, not divide by `rho`).
    pub fn is_data(&self) -> bool {
        self.rho <= 0.0
    }
}

/// One model evaluation as the slope `eps_hat` of the EDM-coordinate PF-ODE `dy/drho = eps_hat`,
/// kept in the cheapest exact form. A data prediction `x0` (EDM's `D`) is kept as it is, with
/// `eps_hat = (x - alpha x0) / sigma` folded into whatever combination the solver writes next, so
/// no pass over the state writes `eps_hat`; an eps prediction is kept as it is; other
/// predictions (and `sigma = 0`, `alpha = 0`) are resolved to `eps_hat` as by
/// [`Step::eval_reusing`] (the same bits in every case).
pub(crate) enum Slope<S> {
    /// `eps_hat = (x - alpha x0) / sigma` at the evaluated state `x`.
    Data {
        /// The data prediction.
        x0: S,
        /// `alpha(t)` of the evaluation.
        alpha: f64,
        /// `sigma(t)` of the evaluation.
        sigma: f64,
    },
    /// `eps_hat` itself.
    Eps(S),
}

impl<S: State> Slope<S> {
    /// The model of `step` at `(x, t)`; a resolved `x0_hat` buffer goes back to `cache`.
    pub fn eval(step: &Step<'_, S>, x: &S, t: f64, cache: &mut Cache<S>) -> Result<Self> {
        let c = Coeffs::at(step.schedule, t);
        match step.model.predict(x, t)? {
            Prediction::Sample(x0) if c.sigma > 0.0 && c.alpha != 0.0 => Ok(Slope::Data {
                x0,
                alpha: c.alpha,
                sigma: c.sigma,
            }),
            // `resolve` returns an eps prediction unchanged wherever it can convert it.
            Prediction::Epsilon(eps) if c.alpha != 0.0 => Ok(Slope::Eps(eps)),
            p => {
                let (x0, eps) = p.resolve_reusing(x, &c, cache.take_spare())?;
                cache.recycle(x0);
                Ok(Slope::Eps(eps))
            }
        }
    }

    /// `(p, q)` with `b eps_hat = p x + q s`, `x` the evaluated state and `s` [`Slope::state`].
    pub fn times(&self, b: f64) -> (f64, f64) {
        match self {
            Slope::Data { alpha, sigma, .. } => (b / sigma, -b * alpha / sigma),
            Slope::Eps(_) => (0.0, b),
        }
    }

    /// The state the slope is expressed with (`x0_hat` or `eps_hat`).
    pub fn state(&self) -> &S {
        match self {
            Slope::Data { x0, .. } => x0,
            Slope::Eps(eps) => eps,
        }
    }

    /// The buffer of [`Slope::state`], to recycle.
    pub fn into_state(self) -> S {
        match self {
            Slope::Data { x0, .. } => x0,
            Slope::Eps(eps) => eps,
        }
    }
}

/// One Euler step of `step` straight from the model: `x1 = a x + b eps_hat` with `(a, b)` the
/// move's coefficients and `eps_hat` a [`Slope`], so a data prediction goes into the update
/// directly, `x1 = (a + b / sigma0) x - (b alpha0 / sigma0) x0` (the state is read and written
/// once; equal to the two-pass form up to rounding). The update checks its result in the same
/// pass ([`Cache::set_checked`]).
pub(crate) fn euler_step_direct<S: State>(
    step: &Step<'_, S>,
    x: S,
    cache: &mut Cache<S>,
) -> Result<S> {
    let slope = Slope::eval(step, &x, step.t0, cache)?;
    Ok(euler_from_slope(step, x, slope, cache))
}

/// The Euler update of [`euler_step_direct`] with the slope at `(x, step.t0)` already evaluated.
pub(crate) fn euler_from_slope<S: State>(
    step: &Step<'_, S>,
    x: S,
    slope: Slope<S>,
    cache: &mut Cache<S>,
) -> S {
    let sch = step.schedule;
    let (from, to) = (Level::at(sch, step.t0), Level::at(sch, step.t1));
    let (a, b) = edm_euler_coefs(&from, to.rho, to.alpha);
    let (p, q) = slope.times(b);
    let (out, checked) = lincomb_checked(x, a + p, slope.state(), q);
    cache.set_checked(checked);
    cache.recycle(slope.into_state());
    out
}

/// Heun's step (EDM Algorithm 1, lines 5-8) from `x` with the slope `s0` at `(x, step.t0)`
/// already evaluated, for a step that does not end at `sigma = 0`: the predictor
/// `x_pred = a x + b eps0` in one pass, the model at `(x_pred, step.t1)`, and the corrector
/// `x1 = a x + (b / 2) (eps0 + eps1)` with `x_pred` substituted, so one pass over `x`, `s0` and
/// the new slope (which also checks the result, [`Cache::set_checked`]); a data-predicting model
/// never has its eps written. `s0` stays with the caller (Heun recycles it, PLMS keeps it).
pub(crate) fn heun_from_slope<S: State>(
    step: &Step<'_, S>,
    x: S,
    s0: &Slope<S>,
    cache: &mut Cache<S>,
) -> Result<S> {
    let sch = step.schedule;
    let (from, to) = (Level::at(sch, step.t0), Level::at(sch, step.t1));
    let (a, b) = edm_euler_coefs(&from, to.rho, to.alpha);
    // Predictor: x_pred = a x + b eps0 = (a + p0) x + q0 s0.
    let (p0, q0) = s0.times(b);
    let x_pred = lincomb_reusing(&x, a + p0, s0.state(), q0, cache.scratch_like(&x));
    let s1 = Slope::eval(step, &x_pred, step.t1, cache)?;
    cache.recycle(x_pred);
    // Corrector: x1 = a x + (b/2) (eps0 + eps1), eps1 = p1 x_pred + q1 s1.
    let (p0h, q0h) = s0.times(0.5 * b);
    let (p1h, q1h) = s1.times(0.5 * b);
    let (out, checked) = lincomb3_checked(
        x,
        a + p0h + p1h * (a + p0),
        s0.state(),
        q0h + p1h * q0,
        s1.state(),
        q1h,
    );
    cache.set_checked(checked);
    cache.recycle(s1.into_state());
    Ok(out)
}

/// The step to `sigma = 0` of the multistep methods and DDIM: `alpha(t1) x0_hat(x, t0)`, with
/// the data prediction alone ([`Step::eval_x0_reusing`], no `eps_hat` pass) and the product
/// written into its buffer; `x` becomes a spare. The sampler checks the result.
pub(crate) fn data_end_step<S: State>(step: &Step<'_, S>, x: S, cache: &mut Cache<S>) -> Result<S> {
    let x0 = step.eval_x0_reusing(&x, step.t0, cache)?;
    cache.recycle(x);
    Ok(x0.into_scaled(step.schedule.alpha(step.t1)))
}

/// The coefficients `(a, b)` of the EDM-coordinate Euler move shared by Euler, Heun, DDIM, DPM2,
/// the Adams-type methods on `eps` and the ancestral samplers: with `y = x / alpha` and
/// `rho = sigma / alpha` the PF-ODE is `dy/drho = eps_hat` for every schedule, so one step with
/// slope `d` from `from` to the noise level `rho_to`, scaled by `a_out` (`alpha1` for a grid
/// step), is `a_out (x / alpha0 + (rho_to - rho0) d) = a x + b d`:
/// `(a_out / alpha0, a_out (rho_to - rho0))`.
pub(crate) fn edm_euler_coefs(from: &Level, rho_to: f64, a_out: f64) -> (f64, f64) {
    (a_out / from.alpha, a_out * (rho_to - from.rho))
}

/// The first-order data-prediction exponential-integrator move of DPM-Solver++ from `from` to
/// half log-SNR `lambda_to`, scaled by `a_out`: with `h = lambda_to - lambda0`,
/// `a_out (e^{-h} x / alpha0 - expm1(-h) d)`; `lambda_to = +inf` (noise level 0) gives
/// `a_out d`. Algebraically the same as the Euler move of [`edm_euler_coefs`] with `d` the data
/// prediction.
pub(crate) fn data_pred_move<S: State>(
    x: &S,
    from: &Level,
    lambda_to: f64,
    a_out: f64,
    d: &S,
) -> S {
    if lambda_to == f64::INFINITY {
        return d.scale(a_out);
    }
    let (a, b) = data_pred_coefs(from, lambda_to, a_out);
    x.lincomb(a, d, b)
}

/// The coefficients `(a, b)` of [`data_pred_move`]: `a x + b d` (at `lambda_to = +inf` they
/// are exactly `(0, a_out)`).
pub(crate) fn data_pred_coefs(from: &Level, lambda_to: f64, a_out: f64) -> (f64, f64) {
    let h = lambda_to - from.lambda;
    (a_out * (-h).exp() / from.alpha, -a_out * (-h).exp_m1())
}

/// [`data_pred_move`] for a step's last use of `x` (written into its storage when exclusive).
pub(crate) fn data_pred_move_owned<S: State>(
    x: S,
    from: &Level,
    lambda_to: f64,
    a_out: f64,
    d: &S,
) -> S {
    if lambda_to == f64::INFINITY {
        return scale_reusing(d, a_out, x);
    }
    let (a, b) = data_pred_coefs(from, lambda_to, a_out);
    lincomb_owned(x, a, d, b)
}

/// Evaluates `model` at `(x, t)` and resolves it into an [`Eval`] (the free-standing form of
/// [`Step::eval`], for loops that are not driven by a grid, such as the adaptive solver).
pub(crate) fn evaluate<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    x: &S,
    t: f64,
) -> Result<Eval<S>> {
    let (x0, eps) = denoise(model, schedule, x, t)?;
    Ok(Eval { t, x0, eps })
}

/// The step to noise level 0 taken by solvers that cannot evaluate there (adaptive and
/// reversible ones): one evaluation at `(x, step.t0)` and `alpha(t1) x0_hat`, the denoising step
/// of score_sde and k-diffusion (Tweedie's formula scaled to `t1`).
pub(crate) fn final_denoise<S: State>(step: &Step<'_, S>, x: &S) -> Result<S> {
    let e = step.eval(x, step.t0)?;
    Ok(e.x0.scale(step.schedule.alpha(step.t1)))
}

/// `sum_i c_i s_i` over a non-empty list of terms.
pub(crate) fn sum<S: State>(terms: &[(f64, &S)]) -> S {
    let (c0, s0) = terms[0];
    let mut acc = s0.scale(c0);
    for &(c, s) in &terms[1..] {
        acc = lincomb_owned(acc, 1.0, s, c);
    }
    acc
}

/// `phi_k(z) = sum_{j >= 0} z^j / (j + k)!`, the exponential-integrator functions
/// (`phi_0 = e^z`, `phi_{k+1}(z) = (phi_k(z) - 1/k!) / z`), accurate for every finite `z`:
/// a Taylor series near 0, the recurrence elsewhere.
pub(crate) fn phi(k: usize, z: f64) -> f64 {
    if k == 0 {
        return z.exp();
    }
    if z.abs() < 1.0 {
        // sum_j z^j / (j + k)!, terms shrink at least geometrically by 1/(k + 1).
        let mut term = 1.0 / factorial(k);
        let mut total = term;
        for j in 1..40 {
            term *= z / (j + k) as f64;
            total += term;
            if term.abs() <= 1e-17 * total.abs() {
                break;
            }
        }
        return total;
    }
    let mut p = z.exp_m1() / z; // phi_1
    for j in 1..k {
        p = (p - 1.0 / factorial(j)) / z;
    }
    p
}

fn factorial(n: usize) -> f64 {
    (1..=n).map(|i| i as f64).product()
}

/// Step coefficients of the exponential integrators between `t0` and `t1`:
/// `alpha`, `sigma` at both ends and `h = lambda1 - lambda0` (`+inf` when `sigma1 = 0`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExpStep {
    pub a0: f64,
    pub s0: f64,
    pub a1: f64,
    pub s1: f64,
    pub h: f64,
}

impl ExpStep {
    /// Reads the coefficients of `schedule` at `t0` and `t1`.
    pub fn new(schedule: &dyn NoiseSchedule, t0: f64, t1: f64) -> Self {
        ExpStep {
            a0: schedule.alpha(t0),
            s0: schedule.sigma(t0),
            a1: schedule.alpha(t1),
            s1: schedule.sigma(t1),
            h: schedule.lambda(t1) - schedule.lambda(t0),
        }
    }

    /// `true` when the step ends at `sigma = 0` (`lambda = +inf`).
    pub fn ends_clean(&self) -> bool {
        self.s1 <= 0.0
    }

    /// First-order data-prediction move (DPM-Solver++(1), equal to DDIM) with data estimate
    /// `d`: `x1 = (sigma1 / sigma0) x - alpha1 expm1(-h) d`; exactly `alpha1 d` at `sigma1 = 0`.
    pub fn data_move<S: State>(&self, x: &S, d: &S) -> S {
        if self.ends_clean() {
            return d.scale(self.a1);
        }
        let (a, b) = self.data_coefs();
        x.lincomb(a, d, b)
    }

    /// The coefficients `(sigma1 / sigma0, -alpha1 expm1(-h))` of [`ExpStep::data_move`] on a
    /// step that does not end at `sigma = 0`.
    pub fn data_coefs(&self) -> (f64, f64) {
        (self.s1 / self.s0, -self.a1 * (-self.h).exp_m1())
    }

    /// First-order noise-prediction move (DPM-Solver-1, equal to DDIM) with noise estimate
    /// `e`: `x1 = (alpha1 / alpha0) x - sigma1 expm1(h) e`. At `sigma1 = 0` it is the limit
    /// `alpha1 (x - sigma0 e) / alpha0`.
    pub fn noise_move<S: State>(&self, x: &S, e: &S) -> S {
        let (a, b) = self.noise_coefs();
        x.lincomb(a, e, b)
    }

    /// The coefficients `(a, b)` of [`ExpStep::noise_move`]: `a x + b eps`.
    pub fn noise_coefs(&self) -> (f64, f64) {
        if self.ends_clean() {
            return (self.a1 / self.a0, -self.a1 * self.s0 / self.a0);
        }
        (self.a1 / self.a0, -self.s1 * self.h.exp_m1())
    }
}

/// Grid sizes below which `lower_order_final` lowers the order of the last steps in
/// [`multistep_order`]: DPM-Solver's `sample()` of `dpm_solver_pytorch.py` (fewer than 10
/// steps) ...
pub(crate) const LOWER_ORDER_FINAL_DPM_SOLVER: Option<usize> = Some(10);
/// ... and diffusers' multistep schedulers such as `DEISMultistepScheduler` (fewer than 15).
pub(crate) const LOWER_ORDER_FINAL_DIFFUSERS: Option<usize> = Some(15);

/// The order a multistep method may use on this step: at most `max_order`, at most one more
/// than the `history` evaluations available before `t0` (warm-up), first order on a step to
/// `sigma = 0` (where `lambda = +inf` leaves only `alpha1 x0_hat`), and, when
/// `lower_order_final` is `Some(n)` and the grid has fewer than `n` steps, at most the number of
/// steps left (`lower_order_final` of DPM-Solver and diffusers; see
/// [`LOWER_ORDER_FINAL_DPM_SOLVER`] and [`LOWER_ORDER_FINAL_DIFFUSERS`]).
///
/// The low-order warm-up steps keep the declared order only because their error constants
/// vanish at high noise, where sampling starts; see the note in `dpmpp_3m.rs`.
pub(crate) fn multistep_order<S: State>(
    step: &Step<'_, S>,
    max_order: usize,
    history: usize,
    lower_order_final: Option<usize>,
) -> usize {
    if step.schedule.sigma(step.t1) <= 0.0 {
        return 1;
    }
    let mut k = max_order.min(history + 1);
    if lower_order_final.is_some_and(|below| step.n_steps < below) {
        k = k.min(step.n_steps.saturating_sub(step.index));
    }
    k.max(1)
}

/// Makes sure the model at `(x, step.t0)` is in the cache, for methods that read only data
/// predictions (DPM-Solver++(3M), UniPC): the newest entry of the cache's data history ([`Cache::back_x0`]) is made the model's
/// `x0_hat` at `(x, step.t0)` without an `eps_hat` pass ([`Step::eval_x0_reusing`]), evaluating
/// only when it is not there yet (UniPC stores the prediction its corrector made at the new
/// point), and keeps at most `keep` entries. Returns the number of older data predictions
/// available.
pub(crate) fn ensure_current_x0<S: State>(
    step: &Step<'_, S>,
    x: &S,
    cache: &mut Cache<S>,
    keep: usize,
) -> Result<usize> {
    let have = cache.back_x0(0).is_some_and(|(t, _)| t == step.t0);
    if !have {
        let x0 = step.eval_x0_reusing(x, step.t0, cache)?;
        cache.push_x0(step.t0, x0, keep);
    }
    Ok(cache.len_x0() - 1)
}

/// Makes sure the model at `(x, step.t0)` is in the cache, for the Adams-type methods on `eps`
/// (DEIS, PLMS, iPNDM, LMS), which read only noise predictions: the newest
/// entry of the cache's noise history ([`Cache::back_eps`]) is made the model's `eps_hat` at
/// `(x, step.t0)` without an `x0_hat` pass ([`Step::eval_eps_reusing`]), evaluating only when it
/// is not there yet, and keeps at most `keep` entries. Returns the number of older noise
/// predictions available.
pub(crate) fn ensure_current_eps<S: State>(
    step: &Step<'_, S>,
    x: &S,
    cache: &mut Cache<S>,
    keep: usize,
) -> Result<usize> {
    let have = cache.back_eps(0).is_some_and(|(t, _)| t == step.t0);
    if !have {
        let eps = step.eval_eps_reusing(x, step.t0, cache)?;
        cache.push_eps(step.t0, eps, keep);
    }
    Ok(cache.len_eps() - 1)
}

/// The Adams-type update on `eps` in EDM coordinates, `x1 = alpha1 (x / alpha0 + (rho1 - rho0)
/// sum_j w_j eps_j)` over the newest `w.len()` entries of the noise history (newest first), as
/// one combination `a x + sum_j (b w_j) eps_j` ([`eps_history_update`]). With `w = [1]` it is the
/// Euler move with the same bits.
pub(crate) fn adams_update<S: State>(
    step: &Step<'_, S>,
    x: S,
    cache: &mut Cache<S>,
    w: &[f64],
) -> S {
    let sch = step.schedule;
    let (from, to) = (Level::at(sch, step.t0), Level::at(sch, step.t1));
    let (a, b) = edm_euler_coefs(&from, to.rho, to.alpha);
    let c: Vec<f64> = w.iter().map(|wj| b * wj).collect();
    eps_history_update(x, cache, a, &c)
}

/// `a x + sum_j c_j eps_j` over the newest `c.len()` entries of the cache's noise history
/// (newest first), written into the storage of `x` ([`lincomb_terms_checked`]: `ceil(k / 2)`
/// passes for `k` coefficients, the last one checking the result, [`Cache::set_checked`]).
pub(crate) fn eps_history_update<S: State>(x: S, cache: &mut Cache<S>, a: f64, c: &[f64]) -> S {
    let (out, checked) = {
        let terms: Vec<(f64, &S)> = c
            .iter()
            .enumerate()
            .map(|(j, &cj)| {
                let (_, eps) = cache.back_eps(j).expect("history checked by the caller");
                (cj, eps)
            })
            .collect();
        lincomb_terms_checked(x, a, &terms)
    };
    cache.set_checked(checked);
    out
}

/// The values at `tau` of the Lagrange basis polynomials on distinct `nodes`.
pub(crate) fn lagrange_basis(nodes: &[f64], tau: f64) -> Vec<f64> {
    (0..nodes.len())
        .map(|j| {
            nodes
                .iter()
                .enumerate()
                .filter(|&(m, _)| m != j)
                .map(|(_, &tm)| (tau - tm) / (nodes[j] - tm))
                .product()
        })
        .collect()
}

/// Nodes and weights of the `n`-point Gauss-Legendre rule on `[-1, 1]` (Newton's method on the
/// Legendre polynomial from the Chebyshev guesses; exact for polynomials of degree `2n - 1`).
pub(crate) fn gauss_legendre(n: usize) -> Vec<(f64, f64)> {
    let mut rule = Vec::with_capacity(n);
    for i in 0..n {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            // Legendre recurrence for P_n(x) and its derivative.
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            // p1 = P_n(x), p0 = P_{n-1}(x).
            dp = n as f64 * (x * p1 - p0) / (x * x - 1.0);
            let dx = p1 / dp;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        rule.push((x, 2.0 / ((1.0 - x * x) * dp * dp)));
    }
    rule
}

/// The Gauss-Legendre rule used for multistep coefficients (24 points, computed once).
pub(crate) fn quadrature_rule() -> &'static [(f64, f64)] {
    static RULE: std::sync::OnceLock<Vec<(f64, f64)>> = std::sync::OnceLock::new();
    RULE.get_or_init(|| gauss_legendre(24))
}

/// Weights `w_j` (summing to 1) of the Adams step `y1 = y0 + (rho1 - rho0) sum_j w_j eps_j` for
/// `dy/drho = eps`, where `eps` is replaced by its Lagrange interpolant on `nodes` in a variable
/// `tau`: `w_j = int_{u0}^{u1} l_j(tau(u)) rho'(u) du / (rho1 - rho0)`, integrated over a
/// parameter `u` of the step (`u = rho`, or `u = lambda` for smooth integrands over decades).
pub(crate) fn adams_weights(
    nodes: &[f64],
    (u0, u1): (f64, f64),
    tau_of_u: impl Fn(f64) -> f64,
    drho_du: impl Fn(f64) -> f64,
    drho: f64,
) -> Vec<f64> {
    let rule = quadrature_rule();
    let (mid, half) = (0.5 * (u0 + u1), 0.5 * (u1 - u0));
    let mut w = vec![0.0; nodes.len()];
    for &(x, gw) in rule {
        let u = mid + half * x;
        let f = gw * half * drho_du(u) / drho;
        for (wj, lj) in w.iter_mut().zip(lagrange_basis(nodes, tau_of_u(u))) {
            *wj += f * lj;
        }
    }
    w
}

/// The classical Adams-Bashforth weights for equal steps, newest first: row `k - 1` is order `k`.
pub(crate) const ADAMS_BASHFORTH: [&[f64]; 4] = [
    &[1.0],
    &[3.0 / 2.0, -1.0 / 2.0],
    &[23.0 / 12.0, -16.0 / 12.0, 5.0 / 12.0],
    &[55.0 / 24.0, -59.0 / 24.0, 37.0 / 24.0, -9.0 / 24.0],
];

/// Solves the small dense system `a x = b` by Gaussian elimination with partial pivoting;
/// a singular matrix (repeated times) is an error.
pub(crate) fn solve_dense(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Result<Vec<f64>> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .expect("non-empty range");
        if a[p][c].abs() < 1e-300 || !a[p][c].is_finite() {
            return Err(SolverError::InvalidParameter {
                name: "grid",
                reason: "singular multistep coefficient system (repeated or non-finite times)"
                    .into(),
            });
        }
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..n {
            let f = a[r][c] / a[c][c];
            for k in c..n {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Ok(x)
}

/// Reads an integer parameter given as `f64`, requiring it to lie in `lo..=hi`.
pub(crate) fn int_param(name: &'static str, value: f64, lo: usize, hi: usize) -> Result<usize> {
    if value.fract() == 0.0 && value >= lo as f64 && value <= hi as f64 {
        Ok(value as usize)
    } else {
        Err(SolverError::InvalidParameter {
            name,
            reason: format!("must be an integer in {lo}..={hi}, got {value}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_matches_its_definition_on_both_branches() {
        for &z in &[
            -30.0, -3.0, -1.0, -0.999, -0.3, -1e-6, 0.0, 1e-6, 0.5, 0.999, 1.0, 2.5,
        ] {
            let p1 = if z == 0.0 { 1.0 } else { f64::exp_m1(z) / z };
            assert!(
                (phi(1, z) - p1).abs() < 1e-15 * p1.abs().max(1.0),
                "phi1({z})"
            );
            // phi_{k+1}(z) z = phi_k(z) - 1/k!
            for k in 1..5 {
                let lhs = phi(k + 1, z) * z;
                let rhs = phi(k, z) - 1.0 / factorial(k);
                assert!(
                    (lhs - rhs).abs() < 1e-14,
                    "phi{}({z}): {lhs} vs {rhs}",
                    k + 1
                );
            }
        }
        assert!((phi(3, 0.0) - 1.0 / 6.0).abs() < 1e-16);
        // Continuity across the branch switch at |z| = 1.
        for k in 1..5 {
            assert!((phi(k, 1.0 - 1e-12) - phi(k, 1.0)).abs() < 1e-11);
            assert!((phi(k, -1.0 + 1e-12) - phi(k, -1.0)).abs() < 1e-11);
        }
    }

    #[test]
    fn gauss_legendre_is_exact_for_polynomials_and_accurate_for_exp() {
        let integrate = |a: f64, b: f64, rule: &[(f64, f64)], f: &dyn Fn(f64) -> f64| {
            let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
            half * rule
                .iter()
                .map(|&(x, w)| w * f(mid + half * x))
                .sum::<f64>()
        };
        let rule = gauss_legendre(8);
        let w: f64 = rule.iter().map(|r| r.1).sum();
        assert!((w - 2.0).abs() < 1e-14);
        let poly = integrate(0.5, 3.0, &rule, &|u| u.powi(15) - 2.0 * u.powi(3));
        let exact =
            (3.0f64.powi(16) - 0.5f64.powi(16)) / 16.0 - (3.0f64.powi(4) - 0.5f64.powi(4)) / 2.0;
        assert!((poly - exact).abs() < 1e-12 * exact.abs());
        let e = integrate(-2.0, 1.0, quadrature_rule(), &f64::exp);
        assert!((e - (1.0f64.exp() - (-2.0f64).exp())).abs() < 1e-14);
        let one = gauss_legendre(1);
        assert_eq!(one.len(), 1);
        assert!(one[0].0.abs() < 1e-15 && (one[0].1 - 2.0).abs() < 1e-15);
    }

    #[test]
    fn lagrange_basis_interpolates_and_solve_dense_solves() {
        let nodes = [0.0, 1.0, 3.0];
        let at = lagrange_basis(&nodes, 1.0);
        assert_eq!(at, vec![0.0, 1.0, 0.0]);
        let l = lagrange_basis(&nodes, 2.0);
        // Reproduces the quadratic u^2 exactly.
        let q: f64 = l.iter().zip(&nodes).map(|(w, u)| w * u * u).sum();
        assert!((q - 4.0).abs() < 1e-14);
        let x = solve_dense(vec![vec![0.0, 2.0], vec![3.0, 1.0]], vec![4.0, 5.0]).unwrap();
        assert!((x[0] - 1.0).abs() < 1e-15 && (x[1] - 2.0).abs() < 1e-15);
        assert!(solve_dense(vec![vec![1.0, 1.0], vec![1.0, 1.0]], vec![1.0, 2.0]).is_err());
    }

    #[test]
    fn adams_weights_reproduce_the_classical_table_on_equal_steps() {
        for k in 1..=4 {
            let nodes: Vec<f64> = (0..k).map(|j| -(j as f64)).collect();
            let w = adams_weights(&nodes, (0.0, 1.0), |u| u, |_| 1.0, 1.0);
            for (a, b) in w.iter().zip(ADAMS_BASHFORTH[k - 1]) {
                assert!((a - b).abs() < 1e-13, "order {k}: {w:?}");
            }
        }
        // Variable-step AB2: w = (1 + r/2, -r/2) with r = h_n / h_{n-1}.
        let w = adams_weights(&[1.0, 3.0], (1.0, 0.0), |u| u, |_| 1.0, -1.0);
        assert!(
            (w[0] - 1.25).abs() < 1e-14 && (w[1] + 0.25).abs() < 1e-14,
            "{w:?}"
        );
    }

    #[test]
    fn int_params_reject_fractions_and_out_of_range_values() {
        assert_eq!(int_param("order", 2.0, 1, 3).unwrap(), 2);
        for bad in [0.0, 4.0, 1.5, f64::NAN, -1.0] {
            let e = int_param("order", bad, 1, 3).unwrap_err().to_string();
            assert!(e.contains("`order`") && e.contains("1..=3"), "{e}");
        }
    }
}
