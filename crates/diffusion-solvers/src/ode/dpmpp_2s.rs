//! DPM-Solver++(2S): the second-order singlestep exponential integrator in data prediction.
//!
//! Paper: Lu, Zhou, Bao, Chen, Li & Zhu (2022), "DPM-Solver++: Fast Solver for Guided Sampling of
//! Diffusion Probabilistic Models", arXiv:2211.01095, Algorithm 1 with `r = 1/2`. With
//! `h = lambda1 - lambda0` and `s = t_lambda(lambda0 + r h)`:
//! `u = (sigma_s/sigma0) x - alpha_s expm1(-r h) x0_hat(x, t0)`,
//! `D = (1 - 1/(2r)) x0_hat(x, t0) + 1/(2r) x0_hat(u, s)`,
//! `x1 = (sigma1/sigma0) x - alpha1 expm1(-h) D`.
//! Two evaluations per step, global order 2. A step to `sigma = 0` is first order and returns
//! `alpha1 x0_hat` (one evaluation).
//!
//! Cost: data predictions only (`Step::eval_x0_reusing`, no eps pass); with `r = 1/2` the
//! weight of `x0_hat(x, t0)` in `D` is 0, so `x1` is one checked pass over `x` and
//! `x0_hat(u, s)`: the same bits as forming `D` first.

use super::{data_end_step, ExpStep};
use crate::error::Result;
use crate::ops::{lincomb_checked, lincomb_reusing};
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// The midpoint `r` of the step in `lambda`.
const R: f64 = 0.5;

/// DPM-Solver++(2S) with the midpoint `r = 1/2`: 2 evaluations per step, order 2.
#[derive(Debug, Clone, Copy, Default)]
pub struct DpmSolverPp2S;

impl<S: State> Solver<S> for DpmSolverPp2S {
    fn name(&self) -> String {
        "dpmpp-2s".into()
    }
    fn order(&self) -> f64 {
        2.0
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        _noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        let st = ExpStep::new(sch, step.t0, step.t1);
        if st.ends_clean() {
            return data_end_step(step, x, cache);
        }
        let x0 = step.eval_x0_reusing(&x, step.t0, cache)?;
        let s = sch.t_of_lambda(sch.lambda(step.t0) + R * st.h);
        let (ua, ub) = ExpStep::new(sch, step.t0, s).data_coefs();
        let u = lincomb_reusing(&x, ua, &x0, ub, cache.scratch_like(&x));
        cache.recycle(x0);
        let xs = step.eval_x0_reusing(&u, s, cache)?;
        cache.recycle(u);
        // With r = 1/2 the weight 1 - 1/(2r) of x0_hat(x, t0) in D is 0: D = x0_hat(u, s).
        let (a, b) = st.data_coefs();
        let (out, checked) = lincomb_checked(x, a, &xs, b);
        cache.set_checked(checked);
        cache.recycle(xs);
        Ok(out)
    }
}
