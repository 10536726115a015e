//! DPM2: a second-order midpoint method on the PF-ODE in EDM coordinates, the midpoint taken in
//! log noise level (k-diffusion's `sample_dpm_2` without churn).
//!
//! Paper: Lu, Zhou, Bao, Chen, Li & Zhu (2022), "DPM-Solver: A Fast ODE Solver for Diffusion
//! Probabilistic Model Sampling in Around 10 Steps", arXiv:2206.00927, Algorithm 1
//! (DPM-Solver-2 with `r1 = 1/2`: the intermediate point halves the step in `lambda`), written
//! as Euler sub-steps of `dy/drho = eps_hat` as in Karras, Aittala, Aila & Laine (2022),
//! arXiv:2206.00364, Algorithm 2. With `rho_mid = sqrt(rho0 rho1)` (`lambda_mid` the mean of
//! `lambda0` and `lambda1`): `y_mid = y0 + (rho_mid - rho0) eps(y0, rho0)`,
//! `y1 = y0 + (rho1 - rho0) eps(y_mid, rho_mid)`. A step to noise level 0 has no log midpoint
//! and is a single Euler step (which returns `alpha1 x0_hat`), as in k-diffusion, so a grid
//! ending at 0 costs `2 N - 1` evaluations. Global order 2.
//!
//! Cost: both evaluations are `Slope`s (a data prediction is folded into the next combination,
//! no eps pass): one pass writes `y_mid`, one checked pass over `x`, `x_mid` and the midpoint's
//! prediction writes `x1`. An eps-predicting model gives the bits of the two-pass form.

use super::{edm_euler_coefs, euler_from_slope, Level, Slope};
use crate::error::Result;
use crate::ops::{lincomb3_checked, lincomb_reusing};
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// DPM2 (log-midpoint in EDM coordinates): 2 evaluations per step, order 2.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dpm2;

impl<S: State> Solver<S> for Dpm2 {
    fn name(&self) -> String {
        "dpm2".into()
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
        let (t0, t1) = (step.t0, step.t1);
        let s0 = Slope::eval(step, &x, t0, cache)?;
        let (l0, l1) = (Level::at(sch, t0), Level::at(sch, t1));
        if l1.is_data() || l0.is_data() {
            return Ok(euler_from_slope(step, x, s0, cache));
        }
        let t_mid = sch.t_of_lambda(0.5 * (l0.lambda + l1.lambda));
        let lm = Level::at(sch, t_mid);
        // x_mid = am x + bm eps0 = (am + p0) x + q0 s0.
        let (am, bm) = edm_euler_coefs(&l0, lm.rho, lm.alpha);
        let (p0, q0) = s0.times(bm);
        let x_mid = lincomb_reusing(&x, am + p0, s0.state(), q0, cache.scratch_like(&x));
        cache.recycle(s0.into_state());
        let s_mid = Slope::eval(step, &x_mid, t_mid, cache)?;
        // x1 = a x + b eps_mid = a x + (b p) x_mid + (b q) s_mid, one checked pass.
        let (a, b) = edm_euler_coefs(&l0, l1.rho, l1.alpha);
        let (pm, qm) = s_mid.times(b);
        let (out, checked) = lincomb3_checked(x, a, &x_mid, pm, s_mid.state(), qm);
        cache.set_checked(checked);
        cache.recycle(x_mid);
        cache.recycle(s_mid.into_state());
        Ok(out)
    }
}
