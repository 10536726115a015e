//! Heun's second-order method on the PF-ODE in EDM coordinates (EDM Algorithm 1, deterministic).
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Algorithm 1 (lines 5-8). The step to a noise level of 0
//! falls back to Euler, as in the paper (line 6), so a grid ending at sigma = 0 costs
//! `2 N - 1` evaluations. Global order 2. A data-predicting model's outputs go into the predictor
//! and the corrector directly (no eps pass, see `Slope`): one pass for each (`heun_from_slope`,
//! shared with PLMS's first step).

use super::{euler_from_slope, heun_from_slope, Slope};
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
        cache: &mut Cache<S>,
        _noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let s0 = Slope::eval(step, &x, step.t0, cache)?;
        if step.schedule.sigma(step.t1) <= 0.0 {
            return Ok(euler_from_slope(step, x, s0, cache));
        }
        let out = heun_from_slope(step, x, &s0, cache)?;
        cache.recycle(s0.into_state());
        Ok(out)
    }
}
