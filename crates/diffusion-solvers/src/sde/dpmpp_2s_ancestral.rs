//! DPM-Solver++(2S) ancestral: a second-order singlestep data-prediction step down to
//! `sigma_down`, then fresh noise of standard deviation `sigma_up` (k-diffusion's
//! `sample_dpmpp_2s_ancestral`).
//!
//! Paper: Lu, Zhou, Bao, Chen, Li & Zhu (2022), "DPM-Solver++: Fast Solver for Guided Sampling
//! of Diffusion Probabilistic Models", arXiv:2211.01095, Algorithm 1 (DPM-Solver++(2S) with
//! `r = 1/2`), with the ancestral noise of Song, Meng & Ermon (2021), arXiv:2010.02502, Eq. (16).
//! In EDM coordinates with `lambda = -ln rho`: split the step into `(rho_down, rho_up)` as
//! [`super::EulerAncestral`] does, `h = lambda_down - lambda0`, `lambda_s = lambda0 + h / 2`,
//! `y_s = e^{-h/2} y0 + (1 - e^{-h/2}) D(y0)`, `y_down = e^{-h} y0 + (1 - e^{-h}) D(y_s)`,
//! `y1 = y_down + s_noise rho_up z`, `x1 = alpha1 y1`. When `rho_down = 0` (the step to noise
//! level 0) the step is first order and returns `alpha1 x0_hat`, as in k-diffusion.
//!
//! Order: `eta = 0` is DPM-Solver++(2S), global order 2 (the same update as
//! [`super::DpmSolverPpSde`] at `eta = 0`); for `eta > 0` strong order 1 along a Brownian tree.

use super::{ancestral_split, move_with_noise, NoiseControl};
use crate::error::Result;
use crate::ode::{data_pred_coefs, data_pred_move, Level};
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// DPM-Solver++(2S) ancestral with stochasticity `eta` and noise multiplier `s_noise`:
/// 2 evaluations per step (1 on a step whose `sigma_down` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DpmSolverPp2SAncestral {
    ctl: NoiseControl,
}

impl DpmSolverPp2SAncestral {
    /// DPM-Solver++(2S) ancestral; `eta` and `s_noise` must be finite and `>= 0`
    /// (k-diffusion defaults: 1, 1).
    pub fn new(eta: f64, s_noise: f64) -> Result<Self> {
        Ok(DpmSolverPp2SAncestral {
            ctl: NoiseControl::new(eta, s_noise)?,
        })
    }
}

impl<S: State> Solver<S> for DpmSolverPp2SAncestral {
    noise_control_solver_info!("dpmpp-2s-ancestral", 2.0);
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        // Only data predictions are read (`Step::eval_x0_reusing`: no eps pass).
        let d0 = step.eval_x0_reusing(&x, step.t0, cache)?;
        let (from, to) = (Level::at(sch, step.t0), Level::at(sch, step.t1));
        let split = ancestral_split(&from, &to, self.ctl.eta);
        let d = if split.lambda_down == f64::INFINITY {
            d0
        } else {
            let t_s = sch.t_of_lambda(0.5 * (from.lambda + split.lambda_down));
            let mid = Level::at(sch, t_s);
            let x_s = data_pred_move(&x, &from, mid.lambda, mid.alpha, &d0);
            cache.recycle(d0);
            let d_s = step.eval_x0_reusing(&x_s, t_s, cache)?;
            cache.recycle(x_s);
            d_s
        };
        // The move to lambda_down and the noise in one checked pass.
        let (a, b) = data_pred_coefs(&from, split.lambda_down, to.alpha);
        let coef = to.alpha * self.ctl.s_noise * split.rho_up;
        let out = move_with_noise(x, a, &d, b, coef, noise, (step.t0, step.t1), cache)?;
        cache.recycle(d);
        Ok(out)
    }
}
