//! Heun's second-order method on the PF-ODE in EDM coordinates (EDM Algorithm 1, deterministic).
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Algorithm 1 (lines 5-8). The step to a noise level of 0
//! falls back to Euler, as in the paper (line 6), so a grid ending at sigma = 0 costs
//! `2 N - 1` evaluations. Global order 2. A data-predicting model's outputs go into the predictor
//! and the corrector directly (no eps pass, see `Slope`): one pass for each.

use super::{edm_euler_coefs, euler_from_slope, Level, Slope};
use crate::error::Result;
use crate::ops::{lincomb3_checked, lincomb_reusing};
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
        let sch = step.schedule;
        let s0 = Slope::eval(step, &x, step.t0, cache)?;
        if sch.sigma(step.t1) <= 0.0 {
            return Ok(euler_from_slope(step, x, s0, cache));
        }
        let (from, to) = (Level::at(sch, step.t0), Level::at(sch, step.t1));
        let (a, b) = edm_euler_coefs(&from, to.rho, to.alpha);
        // Predictor: x_pred = a x + b eps0 = (a + p0) x + q0 s0.
        let (p0, q0) = s0.times(b);
        let x_pred = lincomb_reusing(&x, a + p0, s0.state(), q0, cache.scratch_like(&x));
        let s1 = Slope::eval(step, &x_pred, step.t1, cache)?;
        cache.recycle(x_pred);
        // Corrector: x1 = a x + (b/2) (eps0 + eps1), with x_pred substituted, so one pass over
        // x, s0 and s1 (which also checks the result); a data-predicting model never has its
        // eps written.
        let (p0h, q0h) = s0.times(0.5 * b);
        let (p1h, q1h) = s1.times(0.5 * b);
        let (out, checked) = lincomb3_checked(
            x,
            a + p0h + p1h * (a + p0),
            s0.state(),
            q0h + p1h * q0,
            s1.state(),
            q1h,
        );
        cache.set_checked(checked);
        cache.recycle(s0.into_state());
        cache.recycle(s1.into_state());
        Ok(out)
    }
}
