//! Heun's second-order method on the PF-ODE in EDM coordinates (EDM Algorithm 1, deterministic).
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Algorithm 1 (lines 5-8). The step to a noise level of 0
//! falls back to Euler, as in the paper (line 6), so a grid ending at sigma = 0 costs
//! `2 N - 1` evaluations. Global order 2.

use super::edm_euler_move;
use crate::error::Result;
use crate::solver::{Cache, Solver, Step};
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
        _cache: &mut Cache<S>,
        _noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        let e0 = step.eval(&x, step.t0)?;
        let x_pred = edm_euler_move(sch, &x, step.t0, step.t1, &e0.eps);
        if sch.sigma(step.t1) <= 0.0 {
            return Ok(x_pred);
        }
        let e1 = step.eval(&x_pred, step.t1)?;
        let d = e0.eps.lincomb(0.5, &e1.eps, 0.5);
        Ok(edm_euler_move(sch, &x, step.t0, step.t1, &d))
    }
}
