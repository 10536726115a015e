//! Heun's second-order method on the PF-ODE in EDM coordinates (EDM Algorithm 1, deterministic).
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Algorithm 1 (lines 5-8). The step to a noise level of 0
//! falls back to Euler, as in the paper (line 6), so a grid ending at sigma = 0 costs
//! `2 N - 1` evaluations. Global order 2.

use super::{edm_euler_move_owned, edm_euler_to_reusing, Level};
use crate::error::Result;
use crate::ops::lincomb_owned;
use crate::solver::{Cache, Eval, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// Heun (explicit trapezoid) in EDM coordinates: 2 evaluations per step, order 2.
#[derive(Debug, Clone, Copy, Default)]
pub struct Heun;

impl<S: State> Solver<S> for Heun {
    fn name(&self) -> String {
        "heun".into()
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
        let e0 = step.eval_reusing(&x, step.t0, cache)?;
        if sch.sigma(step.t1) <= 0.0 {
            let out = edm_euler_move_owned(sch, x, step.t0, step.t1, &e0.eps);
            cache.recycle_eval(e0);
            return Ok(out);
        }
        let (from, to) = (Level::at(sch, step.t0), Level::at(sch, step.t1));
        let x_pred = edm_euler_to_reusing(&x, &from, to, &e0.eps, cache.scratch_like(&x));
        let e1 = step.eval_reusing(&x_pred, step.t1, cache)?;
        cache.recycle(x_pred);
        let Eval { x0, eps: d, .. } = e0;
        cache.recycle(x0);
        let d = lincomb_owned(d, 0.5, &e1.eps, 0.5);
        let out = edm_euler_move_owned(sch, x, step.t0, step.t1, &d);
        cache.recycle(d);
        cache.recycle_eval(e1);
        Ok(out)
    }
}
