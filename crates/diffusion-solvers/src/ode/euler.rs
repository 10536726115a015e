//! Euler's method on the probability-flow ODE in EDM coordinates (k-diffusion's `sample_euler`).
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Eq. (4) and Algorithm 1 without the Heun correction.
//! With `y = x / alpha`, `rho = sigma / alpha` the PF-ODE of every linear schedule is
//! `dy/drho = eps_hat(y, rho)`; one Euler step is `y1 = y0 + (rho1 - rho0) eps_hat`. For eta = 0
//! this coincides with DDIM (Song et al. 2021, arXiv:2010.02502, Eq. 13), which `Ddim` reuses.
//! Global order 1. A data-predicting model's output goes into the update directly (no eps pass,
//! see `euler_step_direct`).

use super::euler_step_direct;
use crate::error::Result;
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// Euler in EDM coordinates: 1 model evaluation per step, order 1.
#[derive(Debug, Clone, Copy, Default)]
pub struct Euler;

impl<S: State> Solver<S> for Euler {
    fn name(&self) -> String {
        "euler".into()
    }
    fn order(&self) -> f64 {
        1.0
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        _noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        euler_step_direct(step, x, cache)
    }
}
