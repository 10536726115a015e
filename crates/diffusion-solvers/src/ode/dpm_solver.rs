//! DPM-Solver-1, -2 and -3: singlestep exponential integrators in noise prediction.
//!
//! Paper: Lu, Zhou, Bao, Chen, Li & Zhu (2022), "DPM-Solver: A Fast ODE Solver for Diffusion
//! Probabilistic Model Sampling in Around 10 Steps", arXiv:2206.00927, Sec. 3 (DPM-Solver-1),
//! Algorithm 1 (DPM-Solver-2, `r1 = 1/2`) and Algorithm 2 (DPM-Solver-3, `r1 = 1/3`,
//! `r2 = 2/3`), the `'dpmsolver'` solver type of `dpm_solver_pytorch.py`.
//!
//! With `h = lambda1 - lambda0` and intermediate times `s_i = t_lambda(lambda0 + r_i h)`:
//! - DPM-Solver-1: `x1 = (alpha1/alpha0) x - sigma1 expm1(h) eps0` (identical to DDIM);
//! - DPM-Solver-2: `u = DPM-Solver-1(x; t0 -> s1)`,
//!   `x1 = (alpha1/alpha0) x - sigma1 expm1(h) eps0 - sigma1/(2 r1) expm1(h) (eps(u, s1) - eps0)`;
//! - DPM-Solver-3: `u1` as above, `D1 = eps(u1, s1) - eps0`,
//!   `u2 = (alpha_s2/alpha0) x - sigma_s2 expm1(r2 h) eps0 - sigma_s2 (r2/r1) (expm1(r2 h)/(r2 h) - 1) D1`,
//!   `x1 = (alpha1/alpha0) x - sigma1 expm1(h) eps0 - sigma1/r2 (expm1(h)/h - 1) (eps(u2, s2) - eps0)`.
//!
//! Every grid step is one singlestep update of the chosen order (`order` evaluations), so the
//! global order is `order`. A step to `sigma = 0` (`lambda = +inf`, where no intermediate time
//! exists) is first order and returns `alpha1 x0_hat`, like the `denoise_to_zero` of the
//! reference and a final sigma of 0 in k-diffusion and diffusers (from the data prediction
//! alone, `data_end_step`). DPM-Solver-1 takes Euler's step (`euler_step_direct`, the same map).

use super::{data_end_step, euler_step_direct, evaluate, phi, ExpStep};
use crate::error::{Result, SolverError};
use crate::solver::{Cache, Eval, Solver, Step};
use diffusion_core::{BrownianPath, Denoiser, NoiseSchedule, State};

/// Singlestep DPM-Solver of order 1, 2 or 3 (noise prediction): `order` evaluations per step.
#[derive(Debug, Clone, Copy)]
pub struct DpmSolver {
    order: usize,
}

impl DpmSolver {
    /// DPM-Solver-`order`; `order` must be 1, 2 or 3.
    pub fn new(order: usize) -> Result<Self> {
        if !(1..=3).contains(&order) {
            return Err(SolverError::InvalidParameter {
                name: "order",
                reason: format!("DPM-Solver has orders 1, 2 and 3, got {order}"),
            });
        }
        Ok(DpmSolver { order })
    }
}

/// The model at the DPM-Solver-1 prediction for time `t_lambda(lambda(t0) + r h)`.
pub(crate) fn dpm_stage<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    x: &S,
    e0: &Eval<S>,
    h: f64,
    r: f64,
) -> Result<Eval<S>> {
    let s = schedule.t_of_lambda(schedule.lambda(e0.t) + r * h);
    let u = ExpStep::new(schedule, e0.t, s).noise_move(x, &e0.eps);
    evaluate(model, schedule, &u, s)
}

/// DPM-Solver-2 with intermediate ratio `r1` from `e0.t` to `t1` (which must have
/// `sigma > 0`). Returns the new state and the intermediate evaluation (which DPM-Solver-3 and
/// the adaptive DPM-Solver-23 reuse).
pub(crate) fn dpm_solver_2<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    x: &S,
    e0: &Eval<S>,
    t1: f64,
    r1: f64,
) -> Result<(S, Eval<S>)> {
    let st = ExpStep::new(schedule, e0.t, t1);
    let e1 = dpm_stage(model, schedule, x, e0, st.h, r1)?;
    let c = 0.5 / r1;
    // `noise_move(x, (1 - c) eps0 + c eps1)` in one pass.
    let (a, b) = st.noise_coefs();
    Ok((x.lincomb3(a, &e0.eps, b * (1.0 - c), &e1.eps, b * c), e1))
}

/// DPM-Solver-3 with ratios `r1 < r2` from `e0.t` to `t1` (which must have `sigma > 0`), given
/// the evaluation `e1` at ratio `r1` (from [`dpm_stage`] or [`dpm_solver_2`]).
pub(crate) fn dpm_solver_3<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    x: &S,
    e0: &Eval<S>,
    e1: &Eval<S>,
    t1: f64,
    (r1, r2): (f64, f64),
) -> Result<S> {
    let st = ExpStep::new(schedule, e0.t, t1);
    let h = st.h;
    let s2 = schedule.t_of_lambda(schedule.lambda(e0.t) + r2 * h);
    let st2 = ExpStep::new(schedule, e0.t, s2);
    // expm1(z)/z - 1 = z phi_2(z).
    let c1 = -st2.s1 * (r2 / r1) * (r2 * h) * phi(2, r2 * h);
    // `noise_move(x, eps0) + c1 (eps1 - eps0)` in one pass.
    let (a2, b2) = st2.noise_coefs();
    let u2 = x.lincomb3(a2, &e0.eps, b2 - c1, &e1.eps, c1);
    let e2 = evaluate(model, schedule, &u2, s2)?;
    let c2 = -st.s1 * h * phi(2, h) / r2;
    // `noise_move(x, eps0) + c2 (eps2 - eps0)` in one pass.
    let (a, b) = st.noise_coefs();
    Ok(x.lincomb3(a, &e0.eps, b - c2, &e2.eps, c2))
}

impl<S: State> Solver<S> for DpmSolver {
    fn name(&self) -> String {
        format!("dpm-solver(order={})", self.order)
    }
    fn order(&self) -> f64 {
        self.order as f64
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        _noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let (model, sch) = (step.model, step.schedule);
        let st = ExpStep::new(sch, step.t0, step.t1);
        if st.ends_clean() {
            return data_end_step(step, x, cache);
        }
        if self.order == 1 {
            // DPM-Solver-1 is DDIM, i.e. Euler (no eps pass for a data prediction).
            return euler_step_direct(step, x, cache);
        }
        let e0 = step.eval(&x, step.t0)?;
        match self.order {
            2 => Ok(dpm_solver_2(model, sch, &x, &e0, step.t1, 0.5)?.0),
            _ => {
                let (r1, r2) = (1.0 / 3.0, 2.0 / 3.0);
                let e1 = dpm_stage(model, sch, &x, &e0, st.h, r1)?;
                dpm_solver_3(model, sch, &x, &e0, &e1, step.t1, (r1, r2))
            }
        }
    }
}
