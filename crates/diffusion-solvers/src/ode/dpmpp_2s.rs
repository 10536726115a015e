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

use super::{evaluate, ExpStep};
use crate::error::Result;
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

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
        _cache: &mut Cache<S>,
        _noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        let r = 0.5;
        let e0 = step.eval(&x, step.t0)?;
        let st = ExpStep::new(sch, step.t0, step.t1);
        if st.ends_clean() {
            return Ok(st.data_move(&x, &e0.x0));
        }
        let s = sch.t_of_lambda(sch.lambda(step.t0) + r * st.h);
        let u = ExpStep::new(sch, step.t0, s).data_move(&x, &e0.x0);
        let es = evaluate(step.model, sch, &u, s)?;
        let c = 0.5 / r;
        let d = e0.x0.lincomb(1.0 - c, &es.x0, c);
        Ok(st.data_move(&x, &d))
    }
}
