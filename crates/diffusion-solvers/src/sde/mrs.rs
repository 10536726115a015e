//! MRS (MR Sampler): semi-analytic exponential-integrator ODE and SDE solvers for mean-reverting
//! diffusions (IR-SDE), with noise or data prediction, first or second order.
//!
//! Paper: Li, Fang, Zhao, Lu, Yang & Xu (2025), "MRS: A Fast Sampler for Mean Reverting Diffusion
//! based on ODE and SDE Solvers" (ICLR 2025), arXiv:2502.07856, Sec. 3-4 (the semi-analytic
//! solutions of the PF-ODE and the reverse SDE of `dx = theta_t (mu - x) dt + sigma_t dW`, in noise
//! and data prediction, with the neural integral expanded to first or second order; equation
//! numbers not re-checked here).
//!
//! The MR SDE is linear in `y = x - mu`: `y_t = alpha_t y_0 + sigma_t eps` with
//! `alpha = e^{-theta_bar}`, `sigma = lambda_mr sqrt(1 - alpha^2)`
//! ([`diffusion_core::process::MeanReverting`]'s [`NoiseSchedule`] view), so the semi-analytic
//! solutions are those of the exponential integrators in `y`, with `h = lambda_1 - lambda_0`
//! (`lambda = ln(alpha / sigma)`) and, for order 2, the divided difference
//! `D1 = (d_0 - d_prev) / (lambda_0 - lambda_prev)` of the previous step's prediction:
//!
//! - ODE, noise: `y1 = (alpha1/alpha0) y0 - sigma1 (e^h - 1) eps0 - sigma1 (e^h - 1 - h) D1`;
//! - ODE, data: `y1 = (sigma1/sigma0) y0 + alpha1 (1 - e^{-h}) x0_0 + alpha1 (h - 1 + e^{-h}) D1`;
//! - SDE, noise: `y1 = (alpha1/alpha0) y0 - 2 sigma1 (e^h - 1) eps0 - 2 sigma1 (e^h - 1 - h) D1
//!   + sigma1 sqrt(e^{2h} - 1) z`;
//! - SDE, data: `y1 = (sigma1/sigma0) e^{-h} y0 + alpha1 (1 - e^{-2h}) x0_0
//!   + alpha1 (h - (1 - e^{-2h})/2) D1 + sigma1 sqrt(1 - e^{-2h}) z`;
//!
//! and `x1 = y1 + mu`. These integrate the linear part exactly and the model term with a
//! polynomial in `lambda` (the SDE forms are the exact integrals of the reverse SDE, whose score
//! term carries twice the PF-ODE's weight). The `D1` weights above are the exact integrals
//! ([`SecondOrderForm::Heun`], the `phi_2` form); the default [`SecondOrderForm::Midpoint`]
//! uses the zeroth-order weight times `h / 2` instead, as DPM-Solver++(2M) and its SDE form do
//! (then MRS in `y` is exactly [`crate::ode::DpmSolverPp2M`] / [`super::DpmSolverPp2MSde`] at
//! `eta = 1`, which the tests check). Both are second order; with an exact model the midpoint
//! weight is markedly better at 10-20 coarse steps (the `phi_2` weight extrapolates `D1` over
//! the whole of a long step and over-disperses the SDE output). A step to `sigma = 0` returns `alpha1 x0_hat` (data)
//! or the `sigma1 -> 0` limit of the noise form. The model is queried at `x` and its prediction
//! is read in `y` coordinates: `Sample(x0)` becomes `x0 - mu`; `Epsilon`, `Score` and `Velocity`
//! are the same in both; `V` is taken as `alpha eps - sigma (x0 - mu)`.
//!
//! Orders: the ODE forms have global order `order`; the SDE forms strong order 1 (additive noise).

use super::{draw_step_noise, SecondOrderForm};
use crate::error::{Result, SolverError};
use crate::ode::ExpStep;
use crate::ops::lincomb_terms_checked;
use crate::solver::{Cache, Eval, Solver, Step};
use diffusion_core::{BrownianPath, Coeffs, CoreError, NoiseSchedule, Prediction, State};

/// Which model output the MRS update integrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MrsPrediction {
    /// Noise prediction `eps_hat`.
    Noise,
    /// Data prediction `x0_hat` (in `y = x - mu` coordinates); more stable at few steps.
    Data,
}

/// The MR Sampler for a mean-reverting process with condition `mu` (one row per sample, shaped
/// like the state).
#[derive(Debug)]
pub struct Mrs<S> {
    mu: S,
    prediction: MrsPrediction,
    order: usize,
    stochastic: bool,
    form: SecondOrderForm,
}

impl<S: State> Mrs<S> {
    /// MRS around `mu` with the given prediction, order (1 or 2) and `stochastic` (reverse SDE)
    /// or deterministic (PF-ODE) form, with the midpoint second-order weight.
    pub fn new(mu: S, prediction: MrsPrediction, order: usize, stochastic: bool) -> Result<Self> {
        if !(1..=2).contains(&order) {
            return Err(SolverError::InvalidParameter {
                name: "order",
                reason: format!("MRS has orders 1 and 2, got {order}"),
            });
        }
        if !mu.is_finite() {
            return Err(SolverError::InvalidParameter {
                name: "mu",
                reason: "the condition must be finite".into(),
            });
        }
        Ok(Mrs {
            mu,
            prediction,
            order,
            stochastic,
            form: SecondOrderForm::Midpoint,
        })
    }

    /// The same sampler with the given second-order weight.
    pub fn with_form(mut self, form: SecondOrderForm) -> Self {
        self.form = form;
        self
    }

    /// The condition `mu`.
    pub fn mu(&self) -> &S {
        &self.mu
    }

    /// The model at `(x, t)` resolved in `y = x - mu` coordinates as `(y0_hat, eps_hat)`.
    fn eval(&self, step: &Step<'_, S>, x: &S, y: &S, t: f64) -> Result<Eval<S>> {
        let pred = match step.model.predict(x, t)? {
            Prediction::Sample(x0) => Prediction::Sample(x0.axpy(-1.0, &self.mu)),
            other => other,
        };
        let (x0, eps) = pred.resolve(y, &Coeffs::at(step.schedule, t))?;
        if !x0.is_finite() {
            return Err(CoreError::NonFinite {
                context: format!("model output at t = {t}"),
            }
            .into());
        }
        Ok(Eval { t, x0, eps })
    }
}

/// The prediction an update integrates.
fn pick<S>(e: &Eval<S>, p: MrsPrediction) -> &S {
    match p {
        MrsPrediction::Noise => &e.eps,
        MrsPrediction::Data => &e.x0,
    }
}

impl<S: State> Solver<S> for Mrs<S> {
    fn name(&self) -> String {
        let p = match self.prediction {
            MrsPrediction::Noise => "noise",
            MrsPrediction::Data => "data",
        };
        let f = if self.stochastic { "sde" } else { "ode" };
        let form = match self.form {
            SecondOrderForm::Midpoint => "midpoint",
            SecondOrderForm::Heun => "heun",
        };
        format!("mrs:{f},{p},order={},{form}", self.order)
    }
    fn order(&self) -> f64 {
        if self.stochastic {
            1.0
        } else {
            self.order as f64
        }
    }
    fn is_stochastic(&self) -> bool {
        self.stochastic
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch: &dyn NoiseSchedule = step.schedule;
        let (t0, t1) = (step.t0, step.t1);
        let y = x.axpy(-1.0, &self.mu);
        let e = self.eval(step, &x, &y, t0)?;
        let es = ExpStep::new(sch, t0, t1);
        if es.ends_clean() {
            let d0 = pick(&e, self.prediction);
            let y1 = match self.prediction {
                MrsPrediction::Data => es.data_move(&y, d0),
                MrsPrediction::Noise => es.noise_move(&y, d0),
            };
            cache.push(e, 1);
            return Ok(y1.axpy(1.0, &self.mu));
        }
        let h = es.h;
        // (coefficient of y0, coefficient of d0, exact D1 weight, noise std)
        let (cy, c0, w_exact, noise_std) = match (self.prediction, self.stochastic) {
            (MrsPrediction::Noise, false) => (
                es.a1 / es.a0,
                -es.s1 * h.exp_m1(),
                -es.s1 * (h.exp_m1() - h),
                0.0,
            ),
            (MrsPrediction::Data, false) => (
                es.s1 / es.s0,
                -es.a1 * (-h).exp_m1(),
                es.a1 * (h + (-h).exp_m1()),
                0.0,
            ),
            (MrsPrediction::Noise, true) => (
                es.a1 / es.a0,
                -2.0 * es.s1 * h.exp_m1(),
                -2.0 * es.s1 * (h.exp_m1() - h),
                es.s1 * (2.0 * h).exp_m1().max(0.0).sqrt(),
            ),
            (MrsPrediction::Data, true) => (
                es.s1 / es.s0 * (-h).exp(),
                -es.a1 * (-2.0 * h).exp_m1(),
                es.a1 * (h + 0.5 * (-2.0 * h).exp_m1()),
                es.s1 * (-(-2.0 * h).exp_m1()).max(0.0).sqrt(),
            ),
        };
        let w1 = match self.form {
            SecondOrderForm::Heun => w_exact,
            SecondOrderForm::Midpoint => 0.5 * h * c0,
        };
        // The noise first (it takes a spare of the cache), then the update as one checked
        // combination: with y = x - mu and D1 = (d0 - d_prev) / (lambda0 - lambda_prev) (order
        // 2, when the history has it), x1 = y1 + mu = cy x + (1 - cy) mu + c0 d0 + w1 D1
        // + noise_std z.
        let z = draw_step_noise(noise_std, noise, step, &x, cache)?;
        let (out, checked) = {
            let d0 = pick(&e, self.prediction);
            let mut terms: Vec<(f64, &S)> = vec![(1.0 - cy, &self.mu)];
            match cache.back(0) {
                Some(prev) if self.order == 2 => {
                    let w = w1 / (sch.lambda(t0) - sch.lambda(prev.t));
                    terms.push((c0 + w, d0));
                    terms.push((-w, pick(prev, self.prediction)));
                }
                _ => terms.push((c0, d0)),
            }
            if let Some((z, c)) = &z {
                terms.push((c * noise_std, z));
            }
            lincomb_terms_checked(x, cy, &terms)
        };
        cache.set_checked(checked);
        if let Some((z, _)) = z {
            cache.recycle(z);
        }
        cache.recycle(y);
        cache.push(e, 1);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn bad_parameters_are_errors() {
        assert!(Mrs::new(arr1(&[0.0]), MrsPrediction::Data, 3, false).is_err());
        assert!(Mrs::new(arr1(&[f64::NAN]), MrsPrediction::Data, 1, false).is_err());
        let m = Mrs::new(arr1(&[0.0]), MrsPrediction::Noise, 2, true).unwrap();
        assert_eq!(Solver::<ndarray::Array1<f64>>::order(&m), 1.0);
        assert_eq!(
            Solver::<ndarray::Array1<f64>>::name(&m),
            "mrs:sde,noise,order=2,midpoint"
        );
    }
}
