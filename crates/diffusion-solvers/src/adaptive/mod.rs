//! Adaptive step-size solvers: they choose their own steps from an embedded error estimate, so
//! they run their own loop over time instead of walking a [`diffusion_core::TimeGrid`].
//!
//! - [`dpm_solver_adaptive`] / [`dpm_solver_adaptive_with`]: DPM-Solver-12 and -23 (Lu et al.
//!   2022, Algorithm 4) between two times with finite log-SNR;
//! - [`pf_ode_rk45`] / [`pf_ode_rk45_with`]: Dormand-Prince 5(4) on the probability-flow ODE
//!   (Dormand & Prince 1980), in EDM coordinates or in `t`;
//! - [`gotta_go_fast`] / [`gotta_go_fast_with`]: the adaptive reverse-SDE solver of
//!   Jolicoeur-Martineau et al. (2021), an Euler-Maruyama / improved-Euler pair sharing its noise;
//! - [`DpmSolverAdaptive`], [`Rk45`], [`GottaGoFast`]: the same as grid [`crate::Solver`]s,
//!   integrating every grid interval adaptively (so the registry and the grid-based tools can use
//!   them);
//! - [`controller`]: the [`StepSizeController`] trait and a PID controller, shared by all of them.
//!
//! They share one loop (clip the last step to land exactly on the end, ask the controller,
//! bound the attempts), the mixed absolute/relative error norm
//! `rms(err / max(atol, rtol max(|x_old|, |x_new|)))`, and the [`AdaptiveStats`] they report.

pub mod controller;
mod dpm_solver_adaptive;
mod gotta_go_fast;
mod rk45;

pub use controller::{Acceptance, Limiter, PidController, StepDecision, StepSizeController};
pub use dpm_solver_adaptive::{
    dpm_solver_adaptive, dpm_solver_adaptive_with, AdaptiveOptions, DpmSolverAdaptive,
};
pub use gotta_go_fast::{gotta_go_fast, gotta_go_fast_with, GottaGoFast, GottaGoFastOptions};
pub use rk45::{pf_ode_rk45, pf_ode_rk45_with, OdeCoordinates, Rk45, Rk45Options};
/// The Dormand-Prince 5(4) tableau (nodes `c`, rows `a`, fifth-order weights `b`, error weights
/// `b - b*`), for integrators outside this crate (the likelihood ODE of `diffusion-models`).
pub use rk45::{A as DOPRI5_A, B as DOPRI5_B, C as DOPRI5_C, E as DOPRI5_E};

use crate::error::{Result, SolverError};
use crate::ode::final_denoise;
use crate::solver::Step;
use diffusion_core::State;

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

impl AdaptiveStats {
    /// The fraction of attempts that were accepted (1 when nothing was attempted).
    pub fn acceptance_rate(&self) -> f64 {
        let attempts = self.accepted + self.rejected;
        if attempts == 0 {
            1.0
        } else {
            self.accepted as f64 / attempts as f64
        }
    }
}

/// `rms(err / max(atol, rtol max(|a|, |b|)))` over all entries, on the host (one device
/// synchronization on tch tensors): the mixed absolute/relative error norm of DPM-Solver's
/// adaptive solver, k-diffusion and Gotta Go Fast (`a`, `b` are the old and new solutions).
pub(crate) fn scaled_norm<S: State>(err: &S, a: &S, b: &S, rtol: f64, atol: f64) -> f64 {
    let (err, a, b) = (err.to_host(), a.to_host(), b.to_host());
    if err.is_empty() {
        return 0.0;
    }
    let ss: f64 = err
        .iter()
        .zip(&a)
        .zip(&b)
        .map(|((&e, &p), &q)| {
            let delta = atol.max(rtol * p.abs().max(q.abs()));
            (e / delta).powi(2)
        })
        .sum();
    (ss / err.len() as f64).sqrt()
}

/// [`scaled_norm`] of `hi - lo`, scaled by `lo` and `prev`: the error of an embedded pair whose
/// lower-order result is `lo`, with `prev` the previous lower-order result.
pub(crate) fn scaled_error<S: State>(lo: &S, hi: &S, prev: &S, rtol: f64, atol: f64) -> f64 {
    scaled_norm(&hi.lincomb(1.0, lo, -1.0), lo, prev, rtol, atol)
}

/// Checks `rtol >= 0` and `atol > 0` (both finite), `h_init > 0` and `max_attempts >= 1`.
pub(crate) fn check_tolerances(
    rtol: f64,
    atol: f64,
    h_init: f64,
    max_attempts: usize,
) -> Result<()> {
    let bad =
        |name: &'static str, reason: String| Err(SolverError::InvalidParameter { name, reason });
    if !(rtol >= 0.0 && rtol.is_finite()) {
        return bad("rtol", format!("must be finite and >= 0, got {rtol}"));
    }
    if !(atol > 0.0 && atol.is_finite()) {
        return bad("atol", format!("must be finite and > 0, got {atol}"));
    }
    if !(h_init > 0.0 && h_init.is_finite()) {
        return bad("h_init", format!("must be finite and > 0, got {h_init}"));
    }
    if max_attempts == 0 {
        return bad("max_attempts", "must be at least 1".into());
    }
    Ok(())
}

/// One adaptive integration seen by [`integrate`]: it attempts steps in its own scalar variable
/// `u` (log-SNR, EDM noise level or time) and keeps its state and statistics.
pub(crate) trait Attempts {
    /// Attempts a step from the current point (at `u0`) to `u1` and returns its scaled error
    /// (`<= 1` meets the tolerance; a non-finite candidate should report `f64::INFINITY`).
    /// `last` is set when `u1` is exactly the end of the integration.
    fn attempt(&mut self, u0: f64, u1: f64, last: bool) -> Result<f64>;
    /// What an attempt leaves pending until the controller decides on it.
    type Candidate;
    /// The slot holding the last attempt's candidate.
    fn pending(&mut self) -> &mut Option<Self::Candidate>;
    /// Moves the state to an accepted candidate and returns the schedule time reached.
    fn commit(&mut self, candidate: Self::Candidate) -> f64;
    /// Keeps (`accept`, recording the time reached) or discards the last attempt.
    fn decide(&mut self, accept: bool) {
        let candidate = self
            .pending()
            .take()
            .expect("an attempt precedes every decision");
        if accept {
            let t = self.commit(candidate);
            self.stats().times.push(t);
        }
    }
    /// The schedule time reached so far (for error messages).
    fn current_t(&self) -> f64;
    /// The statistics of this integration ([`integrate`] counts accepted and rejected attempts).
    fn stats(&mut self) -> &mut AdaptiveStats;
}

/// The loop every adaptive solver shares: from `u_start` towards `u_end`, starting with a step
/// of size `h_init` (its sign follows the direction), clipping the last step to land exactly on
/// `u_end`, asking `controller` (reset first) for every decision and the next size, and failing
/// after `max_attempts` attempts or on a step that does not point towards the end. Counts the
/// accepted and rejected attempts in the problem's statistics; `name` names the solver in errors.
pub(crate) fn integrate<P: Attempts>(
    problem: &mut P,
    (u_start, u_end): (f64, f64),
    h_init: f64,
    max_attempts: usize,
    controller: &mut dyn StepSizeController,
    name: &str,
) -> Result<()> {
    if u_start == u_end {
        return Ok(());
    }
    controller.reset();
    let dir = (u_end - u_start).signum();
    let mut h = dir * h_init.abs();
    let mut u = u_start;
    while u != u_end {
        let attempts = {
            let st = problem.stats();
            st.accepted + st.rejected
        };
        if attempts >= max_attempts {
            return Err(SolverError::InvalidParameter {
                name: "max_attempts",
                reason: format!(
                    "{name} made {attempts} attempts and reached t = {}; loosen rtol/atol or raise max_attempts",
                    problem.current_t()
                ),
            });
        }
        let remaining = u_end - u;
        let last = h.abs() >= remaining.abs();
        let hh = if last { remaining } else { h };
        let u1 = if last { u_end } else { u + hh };
        let err = problem.attempt(u, u1, last)?;
        let decision = controller.propose(hh, err);
        problem.decide(decision.accept);
        if decision.accept {
            u = u1;
            problem.stats().accepted += 1;
        } else {
            problem.stats().rejected += 1;
        }
        h = decision.h_next;
        if u != u_end && (h.is_nan() || h * dir <= 0.0) {
            return Err(SolverError::InvalidParameter {
                name: "controller",
                reason: format!(
                    "{name}: the controller proposed a step of {h} (must be nonzero and point towards the end)"
                ),
            });
        }
    }
    Ok(())
}

/// One grid interval of an adaptive grid solver: the denoising step `alpha1 x0_hat` when the
/// interval ends at `sigma = 0`, else the adaptive integration `run` over `[t0, t1]` from `x`.
pub(crate) fn adaptive_interval<S: State>(
    step: &Step<'_, S>,
    x: S,
    run: impl FnOnce(S) -> Result<(S, AdaptiveStats)>,
) -> Result<S> {
    if step.schedule.sigma(step.t1) <= 0.0 {
        return final_denoise(step, &x);
    }
    Ok(run(x)?.0)
}
