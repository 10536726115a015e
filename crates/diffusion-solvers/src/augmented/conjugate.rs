//! The conjugate integrator (lambda-DDIM) for the augmented probability-flow ODE.
//!
//! Paper: Pandey, Rudolph & Mandt (2024), "Efficient Integrators for Diffusion Generative Models",
//! arXiv:2310.07894, Sec. 3 (conjugate integrators, Def. 3.1, and the choice `B_t = lambda I`,
//! "lambda-DDIM"; Def. 3.1 is the conjugate integrator in the public text, other equation numbers
//! not re-checked here). With the score written through the
//! perturbation kernel's covariance `Sigma_t = L_t L_t^T`, `s = -L_t^{-T} eps`, the PF-ODE is
//! `dz/dt = beta F z + (1/2) beta Q L_t^{-T} eps(z, t)`. The conjugate map
//! `z_hat = A_t z`, `A_t = exp(int_0^t (B_u - beta_u F) du)`, with `B_t = lambda I` gives
//! `dz_hat/dt = lambda z_hat + dPhi_t eps`, `dPhi_t = (1/2) beta A_t Q L_t^{-T} dt`; one Euler step
//! in `(z_hat, Phi)` from `t0` down to `t1 = t0 - h`, mapped back, is
//!
//! `z1 = (1 - lambda h) e^{lambda h} exp(-(B(t0) - B(t1)) F) z0 - P eps0`,
//! `P = int_{t1}^{t0} (1/2) beta(u) e^{lambda (u - t1)} exp(-(B(u) - B(t1)) F) Q L_u^{-T} du`,
//!
//! with `eps0 = -L_{t0}^T s(z0, t0)`. At `lambda = 0` this is the DDIM-type exponential integrator
//! that is exact when `eps` is constant along the path (for the scalar VP case it is DDIM itself).
//! `Sigma_t` is the perturbation kernel with the initial velocity marginalized
//! ([`Psld::mean_cov`]); `P` is computed by composite 4-point Gauss-Legendre quadrature on
//! geometric pieces (ratio <= 2) of `[t1, t0]`, which resolves the `1/t` growth of `L_u^{-T}` near
//! `u = 0`. Global order 1; one score evaluation per step; needs `t1 > 0`.

use super::{apply, check_step, cholesky2, mat2, PhaseSolver, PhaseStep, Recipe};
use crate::error::{Result, SolverError};
use crate::ode::gauss_legendre;
use diffusion_core::process::{expm, Psld};
use diffusion_core::{BrownianPath, Phase, State};
use nalgebra::Matrix2;
use std::sync::OnceLock;

/// lambda-DDIM: the conjugate integrator with `B_t = lambda I`. One evaluation per step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConjugateIntegrator {
    lambda: f64,
}

impl Default for ConjugateIntegrator {
    /// `lambda = 0` (the augmented DDIM).
    fn default() -> Self {
        ConjugateIntegrator { lambda: 0.0 }
    }
}

impl ConjugateIntegrator {
    /// The integrator with `B_t = lambda I`; `lambda` must be finite.
    pub fn new(lambda: f64) -> Result<Self> {
        if !lambda.is_finite() {
            return Err(SolverError::InvalidParameter {
                name: "lambda",
                reason: format!("must be finite, got {lambda}"),
            });
        }
        Ok(ConjugateIntegrator { lambda })
    }

    /// The `lambda` of `B_t = lambda I`.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// The step matrices `(M, C)` with `z1 = M z0 + C s(z0, t0)` from `t0` down to `t1`
    /// (`0 < t1 < t0`): `M = (1 - lambda h) e^{lambda h} exp(-(B(t0) - B(t1)) F)`, `C = P L_{t0}^T`.
    pub fn coefficients(
        &self,
        process: &Psld,
        t0: f64,
        t1: f64,
    ) -> Result<(Matrix2<f64>, Matrix2<f64>)> {
        if !(t1 > 0.0 && t1 < t0 && t0.is_finite()) {
            return Err(SolverError::InvalidParameter {
                name: "grid",
                reason: format!(
                    "the conjugate integrator needs 0 < t1 < t0 (the kernel covariance is \
                     singular at t = 0), got t0 = {t0}, t1 = {t1}"
                ),
            });
        }
        let r = Recipe::of(process);
        let lam = self.lambda;
        let h = t0 - t1;
        let m = back_propagator(process, t1, t0)? * ((1.0 - lam * h) * (lam * h).exp());
        let mut p = Matrix2::zeros();
        let pieces = ((t0 / t1).log2().ceil() as usize).clamp(1, 64);
        let ratio = (t0 / t1).powf(1.0 / pieces as f64);
        for k in 0..pieces {
            let a = t1 * ratio.powi(k as i32);
            let b = if k + 1 == pieces { t0 } else { a * ratio };
            let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
            for &(node, w) in rule() {
                let u = mid + half * node;
                let integrand = back_propagator(process, t1, u)?
                    * r.q
                    * inverse_transposed_factor(process, u)?
                    * (0.5 * r.beta(u) * (lam * (u - t1)).exp());
                p += integrand * (w * half);
            }
        }
        let l0 = kernel_factor(process, t0)?;
        Ok((m, p * l0.transpose()))
    }
}

/// The 4-point Gauss-Legendre rule on `[-1, 1]`.
fn rule() -> &'static [(f64, f64)] {
    static RULE: OnceLock<Vec<(f64, f64)>> = OnceLock::new();
    RULE.get_or_init(|| gauss_legendre(4))
}

/// `exp(-(B(u) - B(lo)) F)`: the forward mean map over `[lo, u]`, inverted.
pub(super) fn back_propagator(process: &Psld, lo: f64, u: f64) -> Result<Matrix2<f64>> {
    let db = process.sde().time_change().integral_between(lo, u);
    Ok(mat2(&expm(&(process.sde().drift_matrix() * -db))?))
}

/// The lower Cholesky factor `L_u` of the perturbation covariance at `u`.
pub(super) fn kernel_factor(process: &Psld, u: f64) -> Result<Matrix2<f64>> {
    cholesky2(&process.mean_cov(u)?.cov())
}

/// `L_u^{-T}` (upper triangular); errors where `Sigma_u` is singular.
pub(super) fn inverse_transposed_factor(process: &Psld, u: f64) -> Result<Matrix2<f64>> {
    let l = kernel_factor(process, u)?;
    let (a, b, c) = (l[(0, 0)], l[(1, 0)], l[(1, 1)]);
    if !(a > 0.0 && c > 0.0) {
        return Err(SolverError::InvalidParameter {
            name: "grid",
            reason: format!("the perturbation covariance is singular at t = {u}"),
        });
    }
    Ok(Matrix2::new(1.0 / a, -b / (a * c), 0.0, 1.0 / c))
}

impl<S: State> PhaseSolver<S> for ConjugateIntegrator {
    fn name(&self) -> String {
        format!("conjugate:lambda={}", self.lambda)
    }
    fn order(&self) -> f64 {
        1.0
    }
    fn evals_per_step(&self) -> usize {
        1
    }
    fn step(
        &self,
        step: &PhaseStep<'_, S>,
        z: Phase<S>,
        _noise: &mut dyn BrownianPath<Phase<S>>,
    ) -> Result<Phase<S>> {
        check_step(step)?;
        let (m, c) = self.coefficients(step.process, step.t0, step.t1)?;
        let s = step.score(&z, step.t0)?;
        Ok(apply(&m, &z).axpy(1.0, &apply(&c, &s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffusion_core::process::Cld;

    #[test]
    fn small_steps_are_the_euler_step_of_the_pf_ode() {
        // z1 = z0 - h beta (F z0 - Q s0 / 2) + O(h^2), for every lambda (h^2 beta^2 |F^2| ~ 1e-8).
        for p in [Psld::default(), Psld::from_cld(&Cld::default())] {
            let r = Recipe::of(&p);
            for lam in [0.0, 2.0] {
                let ci = ConjugateIntegrator::new(lam).unwrap();
                let (t0, h) = (0.5, 1e-5);
                let (m, c) = ci.coefficients(&p, t0, t0 - h).unwrap();
                let b = r.beta(t0);
                let m_want = Matrix2::identity() - r.f * (h * b);
                let c_want = r.q * (0.5 * h * b);
                assert!((m - m_want).abs().max() < 1e-7, "{m} vs {m_want}");
                assert!((c - c_want).abs().max() < 1e-7, "{c} vs {c_want}");
            }
        }
    }

    #[test]
    fn cld_reads_only_the_velocity_score() {
        // Q = diag(0, 2 Gamma) and the lower factor make C's first column vanish.
        let p = Psld::from_cld(&Cld::default());
        let (_, c) = ConjugateIntegrator::default()
            .coefficients(&p, 0.6, 0.3)
            .unwrap();
        assert!(c[(0, 0)].abs() < 1e-14 && c[(1, 0)].abs() < 1e-14, "{c}");
        assert!(ConjugateIntegrator::default()
            .coefficients(&p, 0.6, 0.0)
            .is_err());
        assert!(ConjugateIntegrator::new(f64::NAN).is_err());
    }
}
