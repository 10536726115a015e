//! Gotta Go Fast: adaptive step sizes for the reverse-time SDE.
//!
//! Paper: Jolicoeur-Martineau, Li, Piché-Taillefer, Kachman & Mitliagkas (2021), "Gotta Go Fast
//! When Generating Data with Score-Based Models", arXiv:2105.14080, Algorithm 1 (and the
//! `AdaptivePredictor` of its code, `sde_sampling_torch.py`). Each attempt from `t` to
//! `t1 = t + h` (`h < 0` towards the data) draws one Brownian increment `dW` and takes
//! - the Euler-Maruyama step `x' = x + K1`, `K1 = drift(x, t) h + g(t) dW`, and
//! - the improved-Euler (Heun) step `x'' = x + (K1 + K2) / 2`,
//!   `K2 = drift(x', t1) h + g(t1) dW`, with the same `dW`,
//!
//! where `drift(x, t) = f(t) x + g(t)^2 eps_hat / sigma(t)` is the reverse-SDE drift. The error
//! `E = rms((x'' - x') / delta)`, `delta = max(eps_abs, eps_rel max(|x'|, |x'_prev|))` (the
//! scaled l2 norm, `x'_prev` the previous accepted Euler-Maruyama result), decides: the step is
//! accepted (`x <- x''`) iff `E <= 1`, and the next size is `h <- safety h E^(-exponent)` (the
//! paper's `theta = 0.9` and `r = 0.9`), clipped to the remaining interval: the standard integral
//! controller, here [`PidController`] with gain 1 and order `1 / exponent`. With the default
//! `denoise`, the result is denoised at the end: `x <- x + sigma^2 grad log p = alpha x0_hat`
//! (Tweedie, one more evaluation).
//!
//! Differences from the reference: one step size for the whole state (the reference keeps one
//! per sample of the batch; [`State`] has no batch axis, so the norm is over all entries, as in
//! [`crate::adaptive::dpm_solver_adaptive`]); the evaluation at the current point is reused after
//! a rejected attempt (the reference recomputes it), so an attempt costs 2 evaluations and a
//! retry 1; the noise comes from a [`BrownianPath`], so with a [`diffusion_core::BrownianTree`]
//! a retried step sees the Brownian bridge of the rejected one (consistent with the path, as in
//! diffrax), while [`diffusion_core::IndependentIncrements`] redraws it as the reference does.
//! The noise is additive (`g` depends on `t` only), so the accepted Heun steps converge strongly
//! with order 1 to the reverse SDE's solution along a Brownian tree.

use super::controller::{Acceptance, Limiter, PidController, StepSizeController};
use super::{
    adaptive_interval, check_tolerances, integrate, scaled_error, AdaptiveStats, Attempts,
};
use crate::error::{Result, SolverError};
use crate::ode::evaluate;
use crate::solver::{Cache, Eval, Solver, Step};
use diffusion_core::{BrownianPath, Denoiser, NoiseSchedule, State};

/// Settings of [`gotta_go_fast`] (defaults: the paper's code, `eps_rel = 0.01`,
/// `eps_abs = 0.0078`, `safety = exponent = 0.9`, `h_init = 0.01`, denoising at the end).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GottaGoFastOptions {
    /// Relative tolerance `eps_rel` (>= 0).
    pub rtol: f64,
    /// Absolute tolerance `eps_abs` (> 0; 0.0078 is about 1/128).
    pub atol: f64,
    /// Safety factor of the step-size update, in `(0, 1]`.
    pub safety: f64,
    /// Exponent of the step-size update `h E^(-exponent)` (> 0).
    pub exponent: f64,
    /// First attempted step in `t` (> 0; its sign follows the direction).
    pub h_init: f64,
    /// Denoise at the end: return `alpha(t_end) x0_hat(x, t_end)` (one more evaluation).
    pub denoise: bool,
    /// Attempts (accepted plus rejected) after which the integration fails.
    pub max_attempts: usize,
}

impl Default for GottaGoFastOptions {
    fn default() -> Self {
        GottaGoFastOptions {
            rtol: 0.01,
            atol: 0.0078,
            safety: 0.9,
            exponent: 0.9,
            h_init: 0.01,
            denoise: true,
            max_attempts: 100_000,
        }
    }
}

impl GottaGoFastOptions {
    /// Checks every field, naming the first invalid one.
    pub fn validate(&self) -> Result<()> {
        check_tolerances(self.rtol, self.atol, self.h_init, self.max_attempts)?;
        self.controller().map(|_| ())
    }

    /// The paper's step-size rule as a controller: `h_next = safety h E^(-exponent)`, no factor
    /// bounds, accept iff `E <= 1`.
    pub fn controller(&self) -> Result<PidController> {
        if !(self.exponent > 0.0 && self.exponent.is_finite()) {
            return Err(SolverError::InvalidParameter {
                name: "exponent",
                reason: format!("must be finite and > 0, got {}", self.exponent),
            });
        }
        PidController::new(
            (0.0, 1.0, 0.0),
            1.0 / self.exponent,
            self.safety,
            Limiter::Clip {
                min: 0.0,
                max: f64::INFINITY,
            },
            Acceptance::ErrorAtMostOne,
        )
    }
}

/// Integrates the reverse SDE from `t_start` to `t_end` (`sigma > 0` at both) with Gotta Go
/// Fast's adaptive EM / improved-Euler pair and the paper's step-size rule, drawing the noise
/// from `noise` (indexed by schedule time). Returns the final state (denoised when
/// `opts.denoise`) and the statistics (with [`AdaptiveStats::acceptance_rate`]).
pub fn gotta_go_fast<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    t_start: f64,
    t_end: f64,
    x: S,
    noise: &mut dyn BrownianPath<S>,
    opts: &GottaGoFastOptions,
) -> Result<(S, AdaptiveStats)> {
    opts.validate()?;
    let mut controller = opts.controller()?;
    gotta_go_fast_with(
        model,
        schedule,
        t_start,
        t_end,
        x,
        noise,
        opts,
        &mut controller,
    )
}

/// [`gotta_go_fast`] with any step-size controller (reset before use).
#[allow(clippy::too_many_arguments)]
pub fn gotta_go_fast_with<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    t_start: f64,
    t_end: f64,
    x: S,
    noise: &mut dyn BrownianPath<S>,
    opts: &GottaGoFastOptions,
    controller: &mut dyn StepSizeController,
) -> Result<(S, AdaptiveStats)> {
    opts.validate()?;
    for t in [t_start, t_end] {
        let (lo, hi) = schedule.t_range();
        if !(t >= lo && t <= hi) || schedule.sigma(t) <= 0.0 {
            return Err(SolverError::InvalidParameter {
                name: "t_end",
                reason: format!(
                    "Gotta Go Fast needs times inside [{lo}, {hi}] with sigma > 0 (end at a small sigma and denoise), got t = {t}"
                ),
            });
        }
    }
    let mut p = GgfProblem {
        model,
        schedule,
        noise,
        opts,
        t: t_start,
        x_prev: x.dup(),
        x,
        e0: None,
        candidate: None,
        stats: AdaptiveStats::default(),
    };
    integrate(
        &mut p,
        (t_start, t_end),
        opts.h_init,
        opts.max_attempts,
        controller,
        "Gotta Go Fast",
    )?;
    let (mut x, mut stats) = (p.x, p.stats);
    if opts.denoise && t_start != t_end {
        stats.nfe += 1;
        x = evaluate(model, schedule, &x, t_end)?
            .x0
            .scale(schedule.alpha(t_end));
    }
    Ok((x, stats))
}

/// The state of one Gotta Go Fast integration.
struct GgfProblem<'a, 'n, S> {
    model: &'a dyn Denoiser<S>,
    schedule: &'a dyn NoiseSchedule,
    noise: &'n mut dyn BrownianPath<S>,
    opts: &'a GottaGoFastOptions,
    /// Current time and state, and the previous accepted Euler-Maruyama result.
    t: f64,
    x: S,
    x_prev: S,
    /// The evaluation at the current point, kept across rejected attempts.
    e0: Option<Eval<S>>,
    /// The attempt: end time, Euler-Maruyama and improved-Euler results.
    candidate: Option<(f64, S, S)>,
    stats: AdaptiveStats,
}

impl<S: State> GgfProblem<'_, '_, S> {
    /// `K = drift(x, t) h + g(t) dW`, the reverse-SDE increment with the model's `eps_hat`.
    fn increment(&self, x: &S, eps: &S, t: f64, h: f64, dw: &S) -> S {
        let sch = self.schedule;
        let (f, g2, s) = (sch.drift(t), sch.diffusion_sq(t), sch.sigma(t));
        x.lincomb3(f * h, eps, g2 / s * h, dw, g2.max(0.0).sqrt())
    }
}

impl<S: State> Attempts for GgfProblem<'_, '_, S> {
    type Candidate = (f64, S, S);

    fn pending(&mut self) -> &mut Option<Self::Candidate> {
        &mut self.candidate
    }

    fn attempt(&mut self, t0: f64, t1: f64, _last: bool) -> Result<f64> {
        let h = t1 - t0;
        let e = match self.e0.take() {
            Some(e) => e,
            None => {
                self.stats.nfe += 1;
                evaluate(self.model, self.schedule, &self.x, t0)?
            }
        };
        let dw = self.noise.increment(t0, t1, &self.x)?;
        let k1 = self.increment(&self.x, &e.eps, t0, h, &dw);
        let x_em = self.x.lincomb(1.0, &k1, 1.0);
        self.stats.nfe += 1;
        let e1 = evaluate(self.model, self.schedule, &x_em, t1)?;
        let k2 = self.increment(&x_em, &e1.eps, t1, h, &dw);
        let x_heun = self.x.lincomb3(1.0, &k1, 0.5, &k2, 0.5);
        let error = if x_heun.is_finite() {
            scaled_error(&x_em, &x_heun, &self.x_prev, self.opts.rtol, self.opts.atol)
        } else {
            f64::INFINITY
        };
        self.e0 = Some(e);
        self.candidate = Some((t1, x_em, x_heun));
        Ok(error)
    }

    fn commit(&mut self, (t1, x_em, x_heun): Self::Candidate) -> f64 {
        self.t = t1;
        self.x = x_heun;
        self.x_prev = x_em;
        self.e0 = None;
        t1
    }

    fn current_t(&self) -> f64 {
        self.t
    }

    fn stats(&mut self) -> &mut AdaptiveStats {
        &mut self.stats
    }
}

/// Gotta Go Fast as a grid [`Solver`]: every grid interval is integrated adaptively (without
/// the final denoising), and a step to `sigma = 0` is the denoising step `alpha1 x0_hat`. On a
/// grid `[T, t_min, 0]` it is the paper's sampler. Stochastic, strong order 1 (additive noise).
#[derive(Debug, Clone)]
pub struct GottaGoFast {
    opts: GottaGoFastOptions,
    controller: PidController,
}

impl GottaGoFast {
    /// With the paper's step-size rule ([`GottaGoFastOptions::controller`]).
    pub fn new(opts: GottaGoFastOptions) -> Result<Self> {
        opts.validate()?;
        let controller = opts.controller()?;
        Ok(GottaGoFast { opts, controller })
    }

    /// With a given PID controller (cloned fresh for every grid interval).
    pub fn with_controller(opts: GottaGoFastOptions, controller: PidController) -> Result<Self> {
        opts.validate()?;
        Ok(GottaGoFast { opts, controller })
    }
}

impl<S: State> Solver<S> for GottaGoFast {
    fn name(&self) -> String {
        format!(
            "gotta-go-fast(rtol={},atol={},h_init={})",
            self.opts.rtol, self.opts.atol, self.opts.h_init
        )
    }
    fn order(&self) -> f64 {
        1.0
    }
    fn is_stochastic(&self) -> bool {
        true
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        _cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        adaptive_interval(step, x, |x| {
            let opts = GottaGoFastOptions {
                denoise: false,
                ..self.opts
            };
            let mut controller = self.controller.clone();
            gotta_go_fast_with(
                step.model,
                step.schedule,
                step.t0,
                step.t1,
                x,
                noise,
                &opts,
                &mut controller,
            )
        })
    }
}
