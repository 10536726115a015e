//! Adaptive DPM-Solver: DPM-Solver-12 and DPM-Solver-23 with an embedded error estimate.
//!
//! Paper: Lu, Zhou, Bao, Chen, Li & Zhu (2022), "DPM-Solver: A Fast ODE Solver for Diffusion
//! Probabilistic Model Sampling in Around 10 Steps", arXiv:2206.00927, Algorithm 4 and Sec. 3.3
//! (`dpm_solver_pytorch.py:DPM_Solver.dpm_solver_adaptive`). Steps are taken in
//! `lambda = ln(alpha / sigma)`, starting with `h_init`. Each attempt computes a lower- and a
//! higher-order singlestep DPM-Solver update that share their model evaluations: order 2 pairs
//! DPM-Solver-1 with DPM-Solver-2 (`r1 = 1/2`), order 3 pairs DPM-Solver-2 (`r1 = 1/3`) with
//! DPM-Solver-3 (`r1 = 1/3`, `r2 = 2/3`). The scaled error is
//! `E = rms((x_high - x_low) / max(atol, rtol max(|x_low|, |x_prev|)))` over all entries (k-diffusion's
//! norm; the reference takes the largest per-sample RMS, which needs a batch axis that [`State`]
//! does not have); the step is accepted when the controller says so (default: `E <= 1` and
//! `h_next = 0.9 h E^(-1/order)`, the paper's rule) and the last step is clipped to land exactly
//! on `t_end`. The elementwise error is computed on the host (one device synchronization per
//! attempt on tch tensors).
//!
//! Differences from the reference: the evaluation at the current point is reused after a
//! rejected attempt (the reference re-evaluates it), so an attempt costs `order - 1` new
//! evaluations after a rejection and `order` otherwise; the loop stops exactly at `t_end`
//! instead of within `t_err`. `lambda(t_end)` must be finite: a final step to `sigma = 0` is the
//! first-order denoising step `alpha1 x0_hat`, which [`DpmSolverAdaptive`] takes on grid steps
//! ending at `sigma = 0`.

use super::controller::{PidController, StepSizeController};
use crate::error::{Result, SolverError};
use crate::ode::{dpm_solver_2, dpm_solver_3, evaluate, ExpStep};
use crate::solver::{Cache, Eval, Solver, Step};
use diffusion_core::{BrownianPath, Denoiser, NoiseSchedule, State, TimeGrid};

/// Settings of the adaptive DPM-Solver (defaults: the reference's `order = 3`, `rtol = 0.05`,
/// `atol = 0.0078`, `h_init = 0.05`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveOptions {
    /// Order of the higher method: 2 (DPM-Solver-12) or 3 (DPM-Solver-23).
    pub order: usize,
    /// Relative tolerance (>= 0).
    pub rtol: f64,
    /// Absolute tolerance (> 0; 0.0078 is about 1/128, a pixel level of data in [-1, 1]).
    pub atol: f64,
    /// First attempted step in `lambda` (> 0; its sign follows the direction of integration).
    pub h_init: f64,
    /// Attempts (accepted plus rejected) after which the integration fails.
    pub max_attempts: usize,
}

impl Default for AdaptiveOptions {
    fn default() -> Self {
        AdaptiveOptions {
            order: 3,
            rtol: 0.05,
            atol: 0.0078,
            h_init: 0.05,
            max_attempts: 100_000,
        }
    }
}

impl AdaptiveOptions {
    /// Checks every field, naming the first invalid one.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, reason: String| {
            Err(SolverError::InvalidParameter { name, reason })
        };
        if !(self.order == 2 || self.order == 3) {
            return bad("order", format!("adaptive DPM-Solver has orders 2 (DPM-Solver-12) and 3 (DPM-Solver-23), got {}", self.order));
        }
        if !(self.rtol >= 0.0 && self.rtol.is_finite()) {
            return bad(
                "rtol",
                format!("must be finite and >= 0, got {}", self.rtol),
            );
        }
        if !(self.atol > 0.0 && self.atol.is_finite()) {
            return bad("atol", format!("must be finite and > 0, got {}", self.atol));
        }
        if !(self.h_init > 0.0 && self.h_init.is_finite()) {
            return bad(
                "h_init",
                format!("must be finite and > 0, got {}", self.h_init),
            );
        }
        if self.max_attempts == 0 {
            return bad("max_attempts", "must be at least 1".into());
        }
        Ok(())
    }
}

/// What an adaptive integration did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdaptiveStats {
    /// Model evaluations.
    pub nfe: usize,
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected attempts.
    pub rejected: usize,
    /// The times reached by the accepted steps (the last one is `t_end`).
    pub times: Vec<f64>,
}

/// Integrates the PF-ODE from `t_start` to `t_end` (either direction; both with finite
/// `lambda`) with DPM-Solver-12/23 and the standard controller of the paper
/// ([`PidController::standard`] of order `opts.order`).
pub fn dpm_solver_adaptive<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    t_start: f64,
    t_end: f64,
    x: S,
    opts: &AdaptiveOptions,
) -> Result<(S, AdaptiveStats)> {
    opts.validate()?;
    let mut controller = PidController::standard(opts.order as f64)?;
    dpm_solver_adaptive_with(model, schedule, t_start, t_end, x, opts, &mut controller)
}

/// [`dpm_solver_adaptive`] with any step-size controller (reset before use).
pub fn dpm_solver_adaptive_with<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    t_start: f64,
    t_end: f64,
    x: S,
    opts: &AdaptiveOptions,
    controller: &mut dyn StepSizeController,
) -> Result<(S, AdaptiveStats)> {
    opts.validate()?;
    let mut stats = AdaptiveStats::default();
    if t_start == t_end {
        return Ok((x, stats));
    }
    TimeGrid::new(vec![t_start, t_end])?.check_within(schedule)?;
    let (l_start, l_end) = (schedule.lambda(t_start), schedule.lambda(t_end));
    if !(l_start.is_finite() && l_end.is_finite()) {
        return Err(SolverError::InvalidParameter {
            name: "t_end",
            reason: format!(
                "adaptive DPM-Solver needs finite lambda at both ends, got {l_start} at t = {t_start} and {l_end} at t = {t_end} (end at a small sigma > 0 and denoise, or use DpmSolverAdaptive on a grid)"
            ),
        });
    }
    controller.reset();
    let dir = (l_end - l_start).signum();
    let mut h = dir * opts.h_init;
    let (mut s, mut l_s) = (t_start, l_start);
    let mut x = x;
    let mut x_prev = x.dup();
    let mut e0: Option<Eval<S>> = None;
    while s != t_end {
        let attempts = stats.accepted + stats.rejected;
        if attempts >= opts.max_attempts {
            return Err(SolverError::InvalidParameter {
                name: "max_attempts",
                reason: format!(
                    "adaptive DPM-Solver made {attempts} attempts and reached t = {s} of {t_end}; loosen rtol/atol or raise max_attempts"
                ),
            });
        }
        let remaining = l_end - l_s;
        let last = h.abs() >= remaining.abs();
        let hh = if last { remaining } else { h };
        let t = if last {
            t_end
        } else {
            schedule.t_of_lambda(l_s + hh)
        };
        let e = match e0.take() {
            Some(e) => e,
            None => {
                stats.nfe += 1;
                evaluate(model, schedule, &x, s)?
            }
        };
        let (x_low, x_high) = if opts.order == 2 {
            let low = ExpStep::new(schedule, s, t).noise_move(&x, &e.eps);
            let (high, _) = dpm_solver_2(model, schedule, &x, &e, t, 0.5)?;
            stats.nfe += 1;
            (low, high)
        } else {
            let (r1, r2) = (1.0 / 3.0, 2.0 / 3.0);
            let (low, e1) = dpm_solver_2(model, schedule, &x, &e, t, r1)?;
            let high = dpm_solver_3(model, schedule, &x, &e, &e1, t, (r1, r2))?;
            stats.nfe += 2;
            (low, high)
        };
        if !x_high.is_finite() {
            return Err(SolverError::NonFinite {
                step: attempts,
                t,
                solver: format!("dpm-solver-adaptive(order={})", opts.order),
            });
        }
        let err = scaled_error(&x_low, &x_high, &x_prev, opts.rtol, opts.atol);
        let decision = controller.propose(hh, err);
        if decision.accept {
            x_prev = x_low;
            x = x_high;
            s = t;
            l_s = if last { l_end } else { schedule.lambda(t) };
            stats.accepted += 1;
            stats.times.push(t);
        } else {
            e0 = Some(e);
            stats.rejected += 1;
        }
        h = decision.h_next;
        if h.is_nan() || h * dir <= 0.0 {
            return Err(SolverError::InvalidParameter {
                name: "controller",
                reason: format!("proposed a step of {h} (must be nonzero and point towards t_end)"),
            });
        }
    }
    Ok((x, stats))
}

/// `rms((hi - lo) / max(atol, rtol max(|lo|, |prev|)))` over all entries, on the host.
fn scaled_error<S: State>(lo: &S, hi: &S, prev: &S, rtol: f64, atol: f64) -> f64 {
    let (lo, hi, prev) = (lo.to_host(), hi.to_host(), prev.to_host());
    if lo.is_empty() {
        return 0.0;
    }
    let ss: f64 = lo
        .iter()
        .zip(&hi)
        .zip(&prev)
        .map(|((&l, &u), &p)| {
            let delta = atol.max(rtol * l.abs().max(p.abs()));
            ((u - l) / delta).powi(2)
        })
        .sum();
    (ss / lo.len() as f64).sqrt()
}

/// The adaptive DPM-Solver as a grid [`Solver`]: every grid interval is integrated adaptively to
/// the tolerances (a one-step grid gives the plain adaptive solver), and a step to `sigma = 0`
/// is the first-order denoising step `alpha1 x0_hat`. `order()` reports the order of the higher
/// method; the error is set by `rtol`/`atol`, not by the grid.
#[derive(Debug, Clone)]
pub struct DpmSolverAdaptive {
    opts: AdaptiveOptions,
    controller: PidController,
}

impl DpmSolverAdaptive {
    /// With the paper's standard controller.
    pub fn new(opts: AdaptiveOptions) -> Result<Self> {
        opts.validate()?;
        let controller = PidController::standard(opts.order as f64)?;
        Ok(DpmSolverAdaptive { opts, controller })
    }

    /// With a given PID controller (cloned fresh for every grid interval).
    pub fn with_controller(opts: AdaptiveOptions, controller: PidController) -> Result<Self> {
        opts.validate()?;
        Ok(DpmSolverAdaptive { opts, controller })
    }
}

impl<S: State> Solver<S> for DpmSolverAdaptive {
    fn name(&self) -> String {
        format!(
            "dpm-solver-adaptive(order={},rtol={},atol={},h_init={})",
            self.opts.order, self.opts.rtol, self.opts.atol, self.opts.h_init
        )
    }
    fn order(&self) -> f64 {
        self.opts.order as f64
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        _cache: &mut Cache<S>,
        _noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        if sch.sigma(step.t1) <= 0.0 {
            let e = step.eval(&x, step.t0)?;
            return Ok(e.x0.scale(sch.alpha(step.t1)));
        }
        let mut controller = self.controller.clone();
        let (x1, _) = dpm_solver_adaptive_with(
            step.model,
            sch,
            step.t0,
            step.t1,
            x,
            &self.opts,
            &mut controller,
        )?;
        Ok(x1)
    }
}
