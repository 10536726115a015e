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
use super::{
    adaptive_interval, check_tolerances, integrate, scaled_error, AdaptiveStats, Attempts,
};
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
        if !(self.order == 2 || self.order == 3) {
            return Err(SolverError::InvalidParameter {
                name: "order",
                reason: format!("adaptive DPM-Solver has orders 2 (DPM-Solver-12) and 3 (DPM-Solver-23), got {}", self.order),
            });
        }
        check_tolerances(self.rtol, self.atol, self.h_init, self.max_attempts)
    }
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

/// The state of one adaptive DPM-Solver integration in `lambda`.
struct DpmProblem<'a, S> {
    model: &'a dyn Denoiser<S>,
    schedule: &'a dyn NoiseSchedule,
    opts: &'a AdaptiveOptions,
    t_end: f64,
    /// Current time and state, and the previous lower-order result (for the relative scale).
    s: f64,
    x: S,
    x_prev: S,
    /// The evaluation at the current point, kept across rejected attempts.
    e0: Option<Eval<S>>,
    /// The attempted step: its end time and its lower- and higher-order results.
    candidate: Option<(f64, S, S)>,
    stats: AdaptiveStats,
}

impl<S: State> Attempts for DpmProblem<'_, S> {
    type Candidate = (f64, S, S);

    fn pending(&mut self) -> &mut Option<Self::Candidate> {
        &mut self.candidate
    }

    fn attempt(&mut self, _l0: f64, l1: f64, last: bool) -> Result<f64> {
        let sch = self.schedule;
        let t = if last {
            self.t_end
        } else {
            sch.t_of_lambda(l1)
        };
        let e = match self.e0.take() {
            Some(e) => e,
            None => {
                self.stats.nfe += 1;
                evaluate(self.model, sch, &self.x, self.s)?
            }
        };
        let (x_low, x_high) = if self.opts.order == 2 {
            let low = ExpStep::new(sch, self.s, t).noise_move(&self.x, &e.eps);
            let (high, _) = dpm_solver_2(self.model, sch, &self.x, &e, t, 0.5)?;
            self.stats.nfe += 1;
            (low, high)
        } else {
            let (r1, r2) = (1.0 / 3.0, 2.0 / 3.0);
            let (low, e1) = dpm_solver_2(self.model, sch, &self.x, &e, t, r1)?;
            let high = dpm_solver_3(self.model, sch, &self.x, &e, &e1, t, (r1, r2))?;
            self.stats.nfe += 2;
            (low, high)
        };
        if !x_high.is_finite() {
            return Err(SolverError::NonFinite {
                step: self.stats.accepted + self.stats.rejected,
                t,
                solver: format!("dpm-solver-adaptive(order={})", self.opts.order),
            });
        }
        let err = scaled_error(
            &x_low,
            &x_high,
            &self.x_prev,
            self.opts.rtol,
            self.opts.atol,
        );
        self.e0 = Some(e);
        self.candidate = Some((t, x_low, x_high));
        Ok(err)
    }

    fn commit(&mut self, (t, low, high): Self::Candidate) -> f64 {
        self.x_prev = low;
        self.x = high;
        self.s = t;
        self.e0 = None;
        t
    }

    fn current_t(&self) -> f64 {
        self.s
    }

    fn stats(&mut self) -> &mut AdaptiveStats {
        &mut self.stats
    }
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
    if t_start == t_end {
        return Ok((x, AdaptiveStats::default()));
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
    let mut p = DpmProblem {
        model,
        schedule,
        opts,
        t_end,
        s: t_start,
        x_prev: x.dup(),
        x,
        e0: None,
        candidate: None,
        stats: AdaptiveStats::default(),
    };
    integrate(
        &mut p,
        (l_start, l_end),
        opts.h_init,
        opts.max_attempts,
        controller,
        &format!("adaptive DPM-Solver (order {})", opts.order),
    )?;
    Ok((p.x, p.stats))
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
        adaptive_interval(step, x, |x| {
            let mut controller = self.controller.clone();
            dpm_solver_adaptive_with(
                step.model,
                step.schedule,
                step.t0,
                step.t1,
                x,
                &self.opts,
                &mut controller,
            )
        })
    }
}
