//! SA-Solver: the stochastic Adams predictor-corrector in data prediction.
//!
//! Paper: Xue, Yi, Luo, Zhang, Sun, Li & Ma (2023), "SA-Solver: Stochastic Adams Solver for Fast
//! Sampling of Diffusion Models", arXiv:2309.05019, Eq. (15) (SA-Predictor) and Eq. (18)
//! (SA-Corrector), data-prediction form, Algorithm 1 (PEC mode); coefficients as in diffusers'
//! `SASolverScheduler` and ComfyUI's `sa_solver.py:compute_stochastic_adams_b_coeffs`.
//!
//! The variance-controlled reverse SDE with stochasticity `tau` has, in EDM coordinates
//! (`y = x / alpha`, `lambda = ln(alpha / sigma)`, `k = 1 + tau^2`, `h = lambda1 - lambda0`), the
//! exact solution
//! `y1 = e^{-k h} y0 + k int_{lambda0}^{lambda1} e^{-k (lambda1 - l)} D(l) dl
//!       + rho1 sqrt(1 - e^{-2 tau^2 h}) z`.
//! Both updates replace `D` by its Lagrange interpolant and integrate the exponential weight
//! exactly (`exp_lagrange_weights`): the predictor through the `p` newest data
//! predictions at `lambda0, lambda_{-1}, ...`, the corrector through the `c` nodes
//! `lambda1, lambda0, lambda_{-1}, ...`, the newest being `D(x1_pred, t1)`. Predictor and
//! corrector use the same `z`, the normalized Brownian increment over the step. Each step is
//! P-E-C: predict `x1`, evaluate there, correct; the evaluation at the predicted point is kept in
//! the [`Cache`] and reused as the data prediction at `t1` by the next step (SA-Solver's PEC,
//! ComfyUI's `sa_solver`), so a step costs 1 evaluation (2 on the first). With `pece = 1` the
//! corrected state is evaluated again and that evaluation is kept instead (ComfyUI's
//! `sa_solver_pece`, 2 evaluations per step). `corrector_order = 0` turns the corrector off (a
//! pure stochastic Adams-Bashforth method, 1 evaluation per step). Warm-up uses what the cache
//! holds (`min(p, available)` and `min(c, available + 1)` nodes), as the authors do. The step to
//! noise level 0 returns `alpha1 D` with `D` the newest data prediction at `t0` (no new
//! evaluation in PEC mode, exactly ComfyUI's last step).
//!
//! Relations (tested): `predictor_order = 1, corrector_order = 0, tau = 0` is DDIM / Euler;
//! `predictor_order = 2, corrector_order = 0` is DPM-Solver++(2M) SDE in its `phi_2` (heun) form
//! with `eta = tau^2`, noise included.
//!
//! Differences from the anchors: `tau` is a constant over the whole grid (diffusers and ComfyUI
//! default to `tau = 1` only inside a middle band of times and 0 outside; any constant `tau`
//! samples the exact law); diffusers' optional order-2 "modification" (an `O(h^3)` change of the
//! two weights, off by default in ComfyUI) is not applied; the moments of the exponential weight
//! use a power series for small steps instead of the integration-by-parts recursion, which
//! cancels catastrophically as `k h -> 0`; no lower-order steps near the end of the grid.
//!
//! Order: at `tau = 0` a deterministic multistep method of global order `p` without corrector
//! and `min(p + 1, c)` with it (PEC: the corrector's local error is `O(h^{c+1})`, evaluating at
//! the predicted point costs `O(h^{p+2})`); for `tau > 0` strong order 1 along a Brownian tree
//! (additive noise drawn as one Gaussian per step).

use super::{draw_step_noise, exp_lagrange_weights, exp_noise_coef, NoiseControl};
use crate::error::{Result, SolverError};
use crate::ode::{ensure_current_x0, Level};
use crate::ops::{lincomb_terms_checked, lincomb_terms_new};
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, NoiseSchedule, State};

/// The largest supported predictor and corrector order.
pub const MAX_SA_ORDER: usize = 3;

/// SA-Solver with predictor order `p` (1 to 3), corrector order `c` (0 to 3, 0 = off) and
/// stochasticity `tau >= 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SaSolver {
    predictor_order: usize,
    corrector_order: usize,
    tau: f64,
    pece: bool,
}

impl Default for SaSolver {
    /// `p = 3`, `c = 3`, `tau = 1` (the reverse SDE), PEC.
    fn default() -> Self {
        SaSolver {
            predictor_order: 3,
            corrector_order: 3,
            tau: 1.0,
            pece: false,
        }
    }
}

impl SaSolver {
    /// SA-Solver; errors unless `1 <= predictor_order <= 3`, `corrector_order <= 3` and `tau`
    /// is finite and `>= 0`. `pece` re-evaluates the model at the corrected state.
    pub fn new(
        predictor_order: usize,
        corrector_order: usize,
        tau: f64,
        pece: bool,
    ) -> Result<Self> {
        if !(1..=MAX_SA_ORDER).contains(&predictor_order) {
            return Err(SolverError::InvalidParameter {
                name: "predictor_order",
                reason: format!(
                    "must be an integer from 1 to {MAX_SA_ORDER}, got {predictor_order}"
                ),
            });
        }
        if corrector_order > MAX_SA_ORDER {
            return Err(SolverError::InvalidParameter {
                name: "corrector_order",
                reason: format!(
                    "must be an integer from 0 (off) to {MAX_SA_ORDER}, got {corrector_order}"
                ),
            });
        }
        if !(tau >= 0.0 && (tau * tau).is_finite()) {
            return Err(SolverError::InvalidParameter {
                name: "tau",
                reason: format!("must be finite and >= 0, got {tau}"),
            });
        }
        Ok(SaSolver {
            predictor_order,
            corrector_order,
            tau,
            pece,
        })
    }

    /// The noise controls of the equivalent DPM-Solver++ SDE frame: `eta = tau^2`.
    fn control(&self) -> NoiseControl {
        NoiseControl {
            eta: self.tau * self.tau,
            s_noise: 1.0,
        }
    }

    /// How many evaluations the cache must keep.
    fn keep(&self) -> usize {
        self.predictor_order.max(self.corrector_order).max(1)
    }
}

/// The weights of one Adams update `alpha1 [e^{-k h} y0 + sum_j w_j D_j]` through the data
/// predictions `data` (`(t_j, D_j)`, distinct times), integrating their Lagrange interpolant in
/// `lambda` exactly: the coefficient of `x` and the terms `(alpha1 w_j, D_j)`, with the noise
/// term `(coef, z)` appended when there is one.
fn adams_terms<'a, S: State>(
    from: &Level,
    to: &Level,
    k: f64,
    data: &[(f64, &'a S)],
    schedule: &dyn NoiseSchedule,
    noise: Option<(f64, &'a S)>,
) -> (f64, Vec<(f64, &'a S)>) {
    let h = to.lambda - from.lambda;
    let nodes: Vec<f64> = data
        .iter()
        .map(|&(t, _)| {
            if t == to.t {
                1.0
            } else {
                (schedule.lambda(t) - from.lambda) / h
            }
        })
        .collect();
    let w = exp_lagrange_weights(&nodes, k * h);
    let mut terms: Vec<(f64, &S)> = w
        .iter()
        .zip(data)
        .map(|(&w, &(_, d))| (to.alpha * w, d))
        .collect();
    terms.extend(noise);
    (to.alpha / from.alpha * (-k * h).exp(), terms)
}

impl<S: State> Solver<S> for SaSolver {
    fn name(&self) -> String {
        format!(
            "sa-solver(predictor_order={},corrector_order={},tau={}{})",
            self.predictor_order,
            self.corrector_order,
            self.tau,
            if self.pece { ",pece" } else { "" }
        )
    }
    fn order(&self) -> f64 {
        let p = self.predictor_order as f64;
        let ode = match self.corrector_order {
            0 => p,
            c => (p + 1.0).min(c as f64),
        };
        self.control().order(ode)
    }
    fn is_stochastic(&self) -> bool {
        self.control().is_stochastic()
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        let keep = self.keep();
        // Only data predictions are read (no eps pass); the corrector's evaluation at the new
        // point is reused when it is there.
        ensure_current_x0(step, &x, cache, keep)?;
        let (from, to) = (Level::at(sch, step.t0), Level::at(sch, step.t1));
        if to.is_data() {
            let (_, d0) = cache.back_x0(0).expect("pushed above");
            return Ok(d0.scale(to.alpha));
        }
        let ctl = self.control();
        let k = 1.0 + ctl.eta;
        let coef = exp_noise_coef(&from, &to, &ctl);
        // A coefficient of zero (or below) draws nothing.
        let z = draw_step_noise(coef.max(0.0), noise, step, &x, cache)?;

        // Predictor: the Adams mean and the noise in one combination (the whole update when
        // there is no corrector: then in place, and checked).
        let noise_term = z.as_ref().map(|(z, c)| (c * coef, z));
        let p = self.predictor_order.min(cache.len_x0());
        let predictor = || {
            let past: Vec<(f64, &S)> = (0..p).filter_map(|j| cache.back_x0(j)).collect();
            adams_terms(&from, &to, k, &past, sch, noise_term)
        };
        if self.corrector_order == 0 {
            let (out, checked) = {
                let (a, terms) = predictor();
                lincomb_terms_checked(x, a, &terms)
            };
            cache.set_checked(checked);
            if let Some((z, _)) = z {
                cache.recycle(z);
            }
            return Ok(out);
        }
        let x_pred = {
            let (a, terms) = predictor();
            lincomb_terms_new(&x, a, &terms)
        };

        // Corrector through the prediction's data prediction, the same noise, from `x` (its last
        // use: written in place, and checked).
        let x1 = step.eval_x0_reusing(&x_pred, step.t1, cache)?;
        cache.recycle(x_pred);
        let (x_corr, checked) = {
            let c = self.corrector_order.min(cache.len_x0() + 1);
            let mut nodes: Vec<(f64, &S)> = vec![(step.t1, &x1)];
            nodes.extend((0..c - 1).filter_map(|j| cache.back_x0(j)));
            let (a, terms) = adams_terms(&from, &to, k, &nodes, sch, noise_term);
            lincomb_terms_checked(x, a, &terms)
        };
        cache.set_checked(checked);
        if let Some((z, _)) = z {
            cache.recycle(z);
        }
        let kept = if self.pece {
            let again = step.eval_x0_reusing(&x_corr, step.t1, cache)?;
            cache.recycle(x1);
            again
        } else {
            x1
        };
        cache.push_x0(step.t1, kept, keep);
        Ok(x_corr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_validated() {
        assert!(SaSolver::new(0, 1, 1.0, false).is_err());
        assert!(SaSolver::new(4, 1, 1.0, false).is_err());
        assert!(SaSolver::new(2, 4, 1.0, false).is_err());
        assert!(SaSolver::new(2, 2, -0.1, false).is_err());
        assert!(SaSolver::new(2, 2, f64::NAN, false).is_err());
        assert!(SaSolver::new(2, 2, f64::INFINITY, false).is_err());
        assert!(SaSolver::new(3, 0, 0.0, true).is_ok());
    }

    #[test]
    fn declared_orders_follow_the_pec_rule() {
        let order = |p, c, tau| {
            Solver::<ndarray::Array1<f64>>::order(&SaSolver::new(p, c, tau, false).unwrap())
        };
        assert_eq!(order(3, 3, 0.0), 3.0);
        assert_eq!(order(1, 2, 0.0), 2.0);
        assert_eq!(order(3, 2, 0.0), 2.0);
        assert_eq!(order(2, 0, 0.0), 2.0);
        assert_eq!(order(3, 3, 1.0), 1.0);
    }
}
