//! DEIS: the diffusion exponential integrator with polynomial extrapolation of `eps`, in two
//! forms.
//!
//! Paper: Zhang & Chen (2022), "Fast Sampling of Diffusion Models with Exponential Integrator",
//! arXiv:2204.13902. In EDM coordinates `y = x / alpha`, `rho = sigma / alpha` the PF-ODE in
//! noise prediction is `dy/drho = eps(rho)`, the paper's exponential integrator with
//! `Psi(t, s) = alpha_t / alpha_s`. A `k`-th order step replaces `eps` on the step by its
//! Lagrange polynomial through the current and the `k - 1` previous evaluations and integrates it
//! exactly in `rho`: `x1 = alpha1 (x / alpha0 + sum_j C_j eps_j)`,
//! `C_j = int_{rho0}^{rho1} l_j(tau(rho)) drho`. The two forms differ in the variable `tau` of
//! the interpolation:
//! - [`DeisForm::TimeAb`] (`form=0`, default): the paper's tAB-DEIS, `tau = t` (the schedule's
//!   time). `lower_order_final` below 10 steps, as DPM-Solver's `sample()`.
//! - [`DeisForm::LogRho`] (`form=1`): the log-rho variant of diffusers' `DEISMultistepScheduler`
//!   (`algorithm_type="deis"`), `tau = ln rho = -lambda`, where `eps` of the exact Gaussian
//!   flow is smoother over the decades of noise a few-step grid spans. With the warm-up and
//!   `lower_order_final` of that scheduler: below 15 steps the last step is first order and the
//!   one before at most second order.
//!
//! diffusers writes `C_j` in closed form (antiderivatives of `l_j(ln rho)` in `rho`); we compute
//! both forms with a 24-point Gauss-Legendre rule in `lambda = -ln rho` (smooth across the
//! decades a step may span; for `LogRho` the integrand is `e^{-lambda}` times a polynomial, so
//! the rule agrees with the closed form to rounding, see the unit test below).
//!
//! Order 1..3 (default 3); DEIS-1 is DDIM in both forms. Warm-up: step `i` uses order
//! `min(order, i + 1)`. A step to `sigma = 0` is first order (`alpha1 x0_hat`). One evaluation
//! per step.
//!
//! Cost: the cache keeps noise predictions only (`ensure_current_eps`: an eps-predicting model
//! costs no conversion, a data-predicting one one pass writing `eps_hat`), and the update
//! `a x + sum_j (b w_j) eps_j` goes straight into the state, two terms a pass, the last pass
//! checking the result (`adams_update`). DEIS-1 takes Euler's step (`euler_step_direct`: no eps
//! pass at all for a data prediction), the step to `sigma = 0` the data prediction alone.

use super::{
    adams_update, adams_weights, data_end_step, ensure_current_eps, euler_step_direct,
    multistep_order, LOWER_ORDER_FINAL_DIFFUSERS, LOWER_ORDER_FINAL_DPM_SOLVER,
};
use crate::error::{Result, SolverError};
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// The variable in which DEIS interpolates the noise predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeisForm {
    /// tAB-DEIS of the paper: Lagrange polynomial in the schedule's time `t`.
    #[default]
    TimeAb,
    /// diffusers' log-rho DEIS: Lagrange polynomial in `ln rho`, with diffusers'
    /// `lower_order_final` (below 15 steps).
    LogRho,
}

impl DeisForm {
    /// The form of the registry flag `form` (0: tAB, 1: log-rho).
    pub fn from_flag(value: f64) -> Result<Self> {
        match super::int_param("form", value, 0, 1)? {
            0 => Ok(DeisForm::TimeAb),
            _ => Ok(DeisForm::LogRho),
        }
    }
}

/// DEIS of order 1 to 3 in one of its [`DeisForm`]s: one evaluation per step.
#[derive(Debug, Clone, Copy)]
pub struct Deis {
    order: usize,
    form: DeisForm,
}

impl Deis {
    /// tAB-DEIS of the given order (1, 2 or 3).
    pub fn new(order: usize) -> Result<Self> {
        Self::with_form(order, DeisForm::TimeAb)
    }

    /// DEIS of the given order (1, 2 or 3) and form.
    pub fn with_form(order: usize, form: DeisForm) -> Result<Self> {
        if !(1..=3).contains(&order) {
            return Err(SolverError::InvalidParameter {
                name: "order",
                reason: format!("DEIS is implemented for orders 1, 2 and 3, got {order}"),
            });
        }
        Ok(Deis { order, form })
    }
}

impl<S: State> Solver<S> for Deis {
    fn name(&self) -> String {
        match self.form {
            DeisForm::TimeAb => format!("deis(order={})", self.order),
            DeisForm::LogRho => format!("deis(order={},form=log-rho)", self.order),
        }
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
        let sch = step.schedule;
        if sch.sigma(step.t1) <= 0.0 {
            return data_end_step(step, x, cache);
        }
        if self.order == 1 {
            // DEIS-1 is DDIM, i.e. Euler: no noise history to keep.
            return euler_step_direct(step, x, cache);
        }
        let history = ensure_current_eps(step, &x, cache, self.order)?;
        let lower_order_final = match self.form {
            DeisForm::TimeAb => LOWER_ORDER_FINAL_DPM_SOLVER,
            DeisForm::LogRho => LOWER_ORDER_FINAL_DIFFUSERS,
        };
        let k = multistep_order(step, self.order, history, lower_order_final);
        if k == 1 {
            return Ok(adams_update(step, x, cache, &[1.0]));
        }
        let times = (0..k).map(|j| cache.back_eps(j).expect("history").0);
        let span = (sch.lambda(step.t0), sch.lambda(step.t1));
        let drho = sch.noise_ratio(step.t1) - sch.noise_ratio(step.t0);
        let drho_dlambda = |l: f64| -(-l).exp();
        let mut w = match self.form {
            DeisForm::TimeAb => {
                let nodes: Vec<f64> = times.collect();
                adams_weights(&nodes, span, |l| sch.t_of_lambda(l), drho_dlambda, drho)
            }
            // ln rho = -lambda: interpolating in lambda is the same polynomial.
            DeisForm::LogRho => {
                let nodes: Vec<f64> = times.map(|t| sch.lambda(t)).collect();
                adams_weights(&nodes, span, |l| l, drho_dlambda, drho)
            }
        };
        // The weights sum to 1: write the constant part exactly so that order 1 is DDIM.
        w[0] = 1.0 - w[1..].iter().sum::<f64>();
        Ok(adams_update(step, x, cache, &w))
    }
}

#[cfg(test)]
mod tests {
    use super::super::adams_weights;

    /// `int l_j(ln rho) drho` in closed form for 2 and 3 nodes (our own antiderivatives:
    /// `int (ln r - c) dr = r (ln r - c - 1)` and
    /// `int (ln r - c)(ln r - d) dr = r ((ln r - c)(ln r - d) - (2 ln r - c - d) + 2)`).
    fn closed_form(nodes_ln_rho: &[f64], rho0: f64, rho1: f64) -> Vec<f64> {
        let n = nodes_ln_rho;
        (0..n.len())
            .map(|j| {
                let others: Vec<f64> = (0..n.len()).filter(|&m| m != j).map(|m| n[m]).collect();
                let denom: f64 = others.iter().map(|&o| n[j] - o).product();
                let anti = |r: f64| {
                    let l = r.ln();
                    match others.as_slice() {
                        [c] => r * (l - c - 1.0),
                        [c, d] => r * ((l - c) * (l - d) - (2.0 * l - c - d) + 2.0),
                        _ => unreachable!(),
                    }
                };
                (anti(rho1) - anti(rho0)) / denom / (rho1 - rho0)
            })
            .collect()
    }

    #[test]
    fn log_rho_weights_match_the_closed_form() {
        // Steps of a few-step grid: h up to ~1.5 in lambda.
        for rhos in [
            [2.0, 5.0, 12.0, 0.5],
            [0.3, 1.0, 4.0, 0.07],
            [40.0, 80.0, 160.0, 9.0],
        ] {
            let (rho0, rho1) = (rhos[0], rhos[3]);
            for k in 2..=3 {
                let nodes_ln: Vec<f64> = rhos[..k].iter().map(|r: &f64| r.ln()).collect();
                let lam: Vec<f64> = nodes_ln.iter().map(|l| -l).collect();
                let ours = adams_weights(
                    &lam,
                    (-rho0.ln(), -rho1.ln()),
                    |l| l,
                    |l| -(-l).exp(),
                    rho1 - rho0,
                );
                let exact = closed_form(&nodes_ln, rho0, rho1);
                for (a, b) in ours.iter().zip(&exact) {
                    assert!(
                        (a - b).abs() < 1e-12,
                        "{rhos:?} k={k}: {ours:?} vs {exact:?}"
                    );
                }
            }
        }
    }
}
