//! RES multistep: the second-order multistep exponential integrator of ComfyUI's
//! `res_multistep` sampler.
//!
//! Paper: Zhang, Song & Chen (2023), "Improved Order Analysis and Design of Exponential
//! Integrator for Diffusion Models Sampling" (the Refined Exponential Solver, RES),
//! arXiv:2308.02157, its second-order multistep form (order conditions on the `phi_1`, `phi_2`
//! weights); ComfyUI `comfy/k_diffusion/sampling.py:sample_res_multistep` (`res_multistep` with
//! `eta = 0`). In data prediction with `lambda = -ln rho`, `h = lambda1 - lambda0`,
//! `h_prev = lambda0 - lambda_prev` and `c2 = -h_prev / h`:
//! `y1 = e^{-h} y0 + h (b1 D0 + b2 D_prev)`, `b1 = phi_1(-h) - phi_2(-h) / c2`,
//! `b2 = phi_2(-h) / c2`, i.e. the exact integral of the line through the two newest data
//! predictions in `lambda`:
//! `x1 = alpha1 [e^{-h} y0 + (1 - e^{-h}) D0 + h^2 phi_2(-h) (D0 - D_prev) / h_prev]`
//! with `phi_2(z) = (e^z - 1 - z) / z^2`. DPM-Solver++(2M) approximates the last weight by
//! `(1 - e^{-h}) h / (2 h_prev)`. The first step (no history) and a step to `sigma = 0` are the
//! first-order Euler / DDIM step, as in ComfyUI. One evaluation per step, order 2.

use super::{data_pred_move_owned, phi, Level};
use crate::error::Result;
use crate::ops::lincomb3_owned;
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// RES second-order multistep (ComfyUI `res_multistep`): 1 evaluation per step, order 2.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResMultistep;

impl<S: State> Solver<S> for ResMultistep {
    fn name(&self) -> String {
        "res-multistep".into()
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
        // Only data predictions are read, so no eps pass (`Step::eval_x0_reusing`).
        let x0 = step.eval_x0_reusing(&x, step.t0, cache)?;
        let (from, to) = (Level::at(sch, step.t0), Level::at(sch, step.t1));
        let mut out = data_pred_move_owned(x, &from, to.lambda, to.alpha, &x0);
        if let (Some((t_prev, x0_prev)), false) = (cache.back_x0(0), to.is_data()) {
            let h = to.lambda - from.lambda;
            let h_prev = from.lambda - sch.lambda(t_prev);
            let w = to.alpha * h * h * phi(2, -h) / h_prev;
            out = lincomb3_owned(out, 1.0, &x0, w, x0_prev, -w);
        }
        cache.push_x0(step.t0, x0, 1);
        Ok(out)
    }
}
