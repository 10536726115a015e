//! The momentum forward process of the Fast Diffusion Model (FDM) as a critically damped
//! oscillator: `dx = beta v dt`, `dv = -beta (x + 2 v) dt + 2 sqrt(beta) dW`, started at rest
//! (`v0 = 0`), so that the data coefficient is `E[x_t | x0] = (1 + B(t)) e^{-B(t)} x0`.
//!
//! Paper: Wu, Zhou, Kawaguchi & Zhang (2023), "Fast Diffusion Model", arXiv:2306.06991, Sec. 4
//! (momentum SGD read as a damped oscillation; the critically damped state gives the kernel).
//! What is pinned here: the mean coefficient `s(t) = e^{-B(t)} (1 + B(t))` with
//! `B(t) = beta_min t + beta_d t^2 / 2` (defaults `beta_min = 0.1`, `beta_d = 19.9`), exactly the
//! input scaling `s()` / `fdm_beta_fn()` of the reference code (sail-sg/FDM,
//! `training/networks.py`, FDM_VPPrecond / FDM_VEPrecond / FDM_EDMPrecond).
//!
//! The noise term. The reference code does not implement a momentum noise term at all: its
//! losses (`training/loss.py`) add the base process's noise `sigma n` (VP, VE or EDM sigma)
//! and FDM only rescales the network input by `s(t)`. The paper's own kernel equation could not
//! be read here (unverified). This module takes the process the paper's Sec. 4 describes, the
//! critically damped oscillator driven through the momentum (CLD with `M = 1`, `Gamma = 2`, in
//! `B`-time), `d(x, v) = beta F (x, v) dt + sqrt(beta) G dW`, `F = [[0, 1], [-1, -2]]`,
//! `G = (0, 2)^T`, started at rest. Its kernel follows from `e^{F tau} = e^{-tau} [[1 + tau,
//! tau], [-tau, 1 - tau]]` and the Lyapunov integral `Sigma(B) = int_0^B e^{F tau} G G^T
//! e^{F^T tau} d tau = 4 int_0^B e^{-2 tau} [[tau^2, tau (1 - tau)], [tau (1 - tau),
//! (1 - tau)^2]] d tau`:
//!
//! `Sigma_xx = 1 - e^{-2B} (1 + 2B + 2B^2)`, `Sigma_xv = 2 B^2 e^{-2B}`,
//! `Sigma_vv = 1 - e^{-2B} (1 - 2B + 2B^2)` ([`Fdm::phase_cov`]),
//!
//! tested against the matrix-exponential (Van Loan) transition of [`MultivariateSde`] (the MDM
//! oracle) and against an RK4 integration of the Lyapunov ODE `dSigma/dt = beta (F Sigma +
//! Sigma F^T + G G^T)`. The stationary law is `N(0, I)` in `(x, v)`, and the position marginal
//! given `x0` is `N(s(t) x0, Sigma_xx I)`. The [`NoiseSchedule`] impl exposes that position
//! marginal (`alpha = s`, `sigma^2 = Sigma_xx`), which is all an x-only network sees; its
//! `drift`/`diffusion_sq` are those of the x-only linear SDE with the same marginals, not the
//! momentum process.

use super::cld::{check_time, one_minus_exp_times_taylor2};
use super::linear_sde::{MultivariateSde, PhaseKernel};
use super::time_change::AffineBeta;
use crate::error::Result;
use crate::noise::NoiseSource;
use crate::schedule::NoiseSchedule;
use crate::state::{Phase, State};
use nalgebra::DMatrix;

/// FDM's critically damped momentum process with rate `beta(t)`, on `t in [0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fdm {
    beta: AffineBeta,
    sde: MultivariateSde,
}

impl Default for Fdm {
    /// The reference defaults `fdm_beta_min = 0.1`, `fdm_beta_d = 19.9`.
    fn default() -> Self {
        Fdm::new(AffineBeta::new(0.1, 19.9).expect("valid rate"))
    }
}

impl Fdm {
    /// The process with rate `beta(t)` (FDM's `fdm_beta_min + fdm_beta_d t`; a multiplier `k` of
    /// the reference code is `AffineBeta::new(k beta_min, k beta_d)`).
    pub fn new(beta: AffineBeta) -> Self {
        let f = DMatrix::from_row_slice(2, 2, &[0.0, 1.0, -1.0, -2.0]);
        let g = DMatrix::from_row_slice(2, 1, &[0.0, 2.0]);
        let sde = MultivariateSde::new(f, g, beta).expect("finite FDM matrices");
        Fdm { beta, sde }
    }

    /// The rate `beta(t)`.
    pub fn time_change(&self) -> AffineBeta {
        self.beta
    }

    /// The process as a [`MultivariateSde`]: `F = [[0, 1], [-1, -2]]`, `G = [0, 2]^T`.
    pub fn sde(&self) -> &MultivariateSde {
        &self.sde
    }

    /// The data coefficient `s(t) = (1 + B(t)) e^{-B(t)}` (FDM's input scaling).
    pub fn mean_scale(&self, t: f64) -> f64 {
        let b = self.beta.integral(t);
        (1.0 + b) * (-b).exp()
    }

    /// The variance of `x_t` given `x0` (from rest): `1 - e^{-2B}(1 + 2B + 2B^2)`.
    pub fn x_variance(&self, t: f64) -> f64 {
        one_minus_exp_times_taylor2(2.0 * self.beta.integral(t))
    }

    /// The closed-form covariance `(Sigma_xx, Sigma_xv, Sigma_vv)` of `(x_t, v_t)` given a
    /// deterministic start at time 0 (the Lyapunov integral, see the module docs).
    pub fn phase_cov(&self, t: f64) -> (f64, f64, f64) {
        let b = self.beta.integral(t);
        let e = (-2.0 * b).exp();
        (
            self.x_variance(t),
            2.0 * b * b * e,
            1.0 - e * (1.0 - 2.0 * b + 2.0 * b * b),
        )
    }

    /// The exact transition from a deterministic `(x0, v0)` at time 0 to `t` (matrix exponential).
    pub fn transition(&self, t: f64) -> Result<PhaseKernel> {
        check_time(t)?;
        self.sde.phase_kernel(0.0, t)
    }

    /// Draws `(x_t, v_t)` from `x0` at rest (`v0 = 0`). Draws `eps_x` then `eps_v`.
    pub fn perturb<S: State>(
        &self,
        x0: &S,
        t: f64,
        noise: &mut dyn NoiseSource<S>,
    ) -> Result<Phase<S>> {
        let ex = noise.standard_normal(x0);
        let ev = noise.standard_normal(x0);
        Ok(self.transition(t)?.sample(x0, None, &Phase::new(ex, ev)))
    }
}

impl NoiseSchedule for Fdm {
    fn name(&self) -> String {
        format!("fdm({},{})", self.beta.beta0(), self.beta.beta1())
    }
    fn t_range(&self) -> (f64, f64) {
        (0.0, 1.0)
    }
    fn alpha(&self, t: f64) -> f64 {
        self.mean_scale(t)
    }
    fn sigma(&self, t: f64) -> f64 {
        self.x_variance(t).max(0.0).sqrt()
    }
    fn lambda(&self, t: f64) -> f64 {
        let b = self.beta.integral(t);
        (1.0 + b).ln() - b - 0.5 * self.x_variance(t).ln()
    }
    fn drift(&self, t: f64) -> f64 {
        // d ln((1 + B) e^{-B}) / dt = -beta B / (1 + B).
        let b = self.beta.integral(t);
        -self.beta.beta(t) * b / (1.0 + b)
    }
    fn diffusion_sq(&self, t: f64) -> f64 {
        // d sigma^2 / dt = beta 4 B^2 e^{-2B}; g^2 = that - 2 f sigma^2.
        let b = self.beta.integral(t);
        let beta = self.beta.beta(t);
        beta * 4.0 * b * b * (-2.0 * b).exp() - 2.0 * self.drift(t) * self.x_variance(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::HostNoise;
    use crate::process::Cld;
    use crate::schedule::testing::check_schedule;
    use nalgebra::DVector;

    #[test]
    fn mean_scale_matches_the_reference_and_the_matrix_exponential() {
        let fdm = Fdm::default();
        for &t in &[0.0_f64, 0.01, 0.2, 0.5, 1.0] {
            // sail-sg/FDM: beta = fdm_beta_min t + 0.5 fdm_beta_d t^2; s = exp(-beta) (1 + beta).
            let b = 0.1 * t + 0.5 * 19.9 * t * t;
            let s_ref = (-b).exp() * (1.0 + b);
            let k = fdm.transition(t).unwrap();
            assert!((fdm.mean_scale(t) - s_ref).abs() < 1e-15);
            assert!((k.phi()[(0, 0)] - s_ref).abs() < 1e-13, "t {t}");
            assert!((k.cov()[(0, 0)] - fdm.x_variance(t)).abs() < 1e-12, "t {t}");
        }
        // It is CLD with M = 1 (Gamma = 2) and a velocity started at rest.
        let cld = Cld::new(1.0, 0.0, fdm.time_change()).unwrap();
        let (a, b) = (cld.transition(0.3).unwrap(), fdm.transition(0.3).unwrap());
        assert!((a.phi() - b.phi()).abs().max() < 1e-12);
        assert!((a.cov() - b.cov()).abs().max() < 1e-12);
    }

    #[test]
    fn closed_form_covariance_is_the_lyapunov_integral() {
        // Oracle 1: the Van Loan matrix exponential of the general linear SDE (MDM's transition).
        // Oracle 2: RK4 on dSigma/dt = beta (F Sigma + Sigma F^T + Q), independent of expm.
        let fdm = Fdm::default();
        let sde = fdm.sde();
        let f = sde.drift_matrix().clone();
        let q = sde.noise_covariance().clone();
        let rate = |t: f64, c: &DMatrix<f64>| (&f * c + c * f.transpose() + &q) * fdm.beta.beta(t);
        let (mut c, mut t) = (DMatrix::<f64>::zeros(2, 2), 0.0);
        let h = 1e-4;
        for i in 1..=10_000 {
            let k1 = rate(t, &c);
            let k2 = rate(t + h / 2.0, &(&c + &k1 * (h / 2.0)));
            let k3 = rate(t + h / 2.0, &(&c + &k2 * (h / 2.0)));
            let k4 = rate(t + h, &(&c + &k3 * h));
            c += (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0);
            t = i as f64 * h;
            if i % 500 == 0 {
                let (xx, xv, vv) = fdm.phase_cov(t);
                let k = fdm.transition(t).unwrap().cov();
                for (got, vl, rk) in [
                    (xx, k[(0, 0)], c[(0, 0)]),
                    (xv, k[(0, 1)], c[(0, 1)]),
                    (vv, k[(1, 1)], c[(1, 1)]),
                ] {
                    assert!((got - vl).abs() < 1e-12, "t {t}: {got} vs Van Loan {vl}");
                    assert!((got - rk).abs() < 1e-9, "t {t}: {got} vs Lyapunov RK4 {rk}");
                }
            }
        }
        // Stationary N(0, I) at t = 1 (B = 10.05), and a wrong sign of Sigma_xv is far off.
        let (xx, xv, vv) = fdm.phase_cov(1.0);
        assert!((xx - 1.0).abs() < 1e-6 && xv.abs() < 1e-6 && (vv - 1.0).abs() < 1e-6);
        assert!(sde.lyapunov_residual(&DMatrix::identity(2, 2)).abs().max() < 1e-15);
        let (_, xv, _) = fdm.phase_cov(0.2);
        assert!(xv > 0.05, "{xv}");
    }

    #[test]
    fn kernel_matches_euler_maruyama() {
        // 20k paths, 1000 steps on [0, 0.2]: B(0.2) = 0.418, beta <= 4.1, rate <= 2 beta, so 0.0016
        // per step; EM bias ~0.1%, a tenth of a standard error. Margin: max z < 5.
        let fdm = Fdm::default();
        let t = 0.2;
        let mean0 = DVector::from_vec(vec![-1.1, 0.0]);
        let cov0 = DMatrix::zeros(2, 2);
        let (mean, cov) = fdm.sde().marginal(t, &mean0, &cov0).unwrap();
        let mc = fdm
            .sde()
            .euler_maruyama(&mean0, &cov0, t, 1000, 20_000, &mut HostNoise::new(12))
            .unwrap();
        let z = mc.max_z_score(&mean, &cov);
        assert!(z < 5.0, "max z {z}");
        assert!((mean[0] + 1.1 * fdm.mean_scale(t)).abs() < 1e-13);
    }

    #[test]
    fn position_marginal_is_a_consistent_schedule() {
        let fdm = Fdm::default();
        let ts: Vec<f64> = (1..=40).map(|i| i as f64 / 40.0).collect();
        check_schedule(&fdm, &ts);
        assert_eq!(fdm.sigma(0.0), 0.0);
        assert_eq!(fdm.alpha(0.0), 1.0);
        assert!(fdm.sigma(1.0) > 0.999 && fdm.alpha(1.0) < 1e-3);
        let z = fdm
            .perturb(
                &ndarray::Array1::from_elem(4, 2.0),
                0.5,
                &mut HostNoise::new(1),
            )
            .unwrap();
        assert!(z.is_finite());
        assert!(fdm.transition(-0.1).is_err());
    }
}
