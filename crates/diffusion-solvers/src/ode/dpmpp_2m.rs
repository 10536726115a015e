//! DPM-Solver++(2M): the second-order multistep exponential integrator in data prediction.
//!
//! Paper: Lu, Zhou, Bao, Chen, Li & Zhu (2022), "DPM-Solver++: Fast Solver for Guided Sampling of
//! Diffusion Probabilistic Models", arXiv:2211.01095, Algorithm 2. With `h = lambda1 - lambda0`,
//! `r = h_prev / h`: `D = (1 + 1/(2r)) x0_hat - 1/(2r) x0_prev`,
//! `x1 = (sigma1 / sigma0) x - alpha1 expm1(-h) D`. The first step and a final step to sigma = 0
//! use the first-order update (`D = x0_hat`), as k-diffusion's `sample_dpmpp_2m` does. Order 2.

use crate::error::Result;
use crate::ops::{lincomb3_checked, lincomb_checked, scale_reusing};
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// DPM-Solver++(2M), one evaluation per step, order 2.
#[derive(Debug, Clone, Copy, Default)]
pub struct DpmSolverPp2M;

impl<S: State> Solver<S> for DpmSolverPp2M {
    fn name(&self) -> String {
        "dpmpp-2m".into()
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
        // Only data predictions are read (this one and the previous step's), so no eps pass.
        let x0 = step.eval_x0_reusing(&x, step.t0, cache)?;
        let (s0, s1, a1) = (sch.sigma(step.t0), sch.sigma(step.t1), sch.alpha(step.t1));
        let out = if s1 <= 0.0 {
            scale_reusing(&x0, a1, x)
        } else {
            let (l0, l1) = (sch.lambda(step.t0), sch.lambda(step.t1));
            let h = l1 - l0;
            let c = -a1 * (-h).exp_m1();
            let (out, checked) = match cache.back_x0(0) {
                None => lincomb_checked(x, s1 / s0, &x0, c),
                Some((t_prev, x0_prev)) => {
                    // x1 = (s1/s0) x + c D with D = (1 + 1/(2r)) x0 - 1/(2r) x0_prev, in one
                    // pass that also checks the result.
                    let r = (l0 - sch.lambda(t_prev)) / h;
                    let (cx, cp) = (c * (1.0 + 0.5 / r), -c * 0.5 / r);
                    lincomb3_checked(x, s1 / s0, &x0, cx, x0_prev, cp)
                }
            };
            cache.set_checked(checked);
            out
        };
        cache.push_x0(step.t0, x0, 1);
        Ok(out)
    }
}
