//! Grad-TTS's mean-shifted VP SDE, `dx = (1/2) beta_t (mu - x) dt + sqrt(beta_t) dW`, whose
//! terminal law is `N(mu, I)` with `mu` given by a condition (the text encoder's output).
//!
//! Paper: Popov, Vovk, Gogoryan, Sadekova & Kudinov (2021), "Grad-TTS: A Diffusion Probabilistic
//! Model for Text-to-Speech", arXiv:2105.06337, Eq. (1)-(4) with `Sigma = I`:
//! `x_t | x0 ~ N(e^{-B/2} x0 + (1 - e^{-B/2}) mu, (1 - e^{-B}) I)`, `B(t) = int_0^t beta`,
//! `beta_t = beta_0 + (beta_1 - beta_0) t` on `t in [0, 1]`, defaults `beta_0 = 0.05`, `beta_1 = 20`.
//! It is the mean-reverting SDE ([`MeanReverting`]) with `theta = beta/2` and `lambda = 1`.
//!
//! Solver view: `y = x - mu` is exactly the linear-beta VP SDE of Score SDE, so
//! [`MeanShiftedVp::schedule`] returns a [`VpLinear`]: integrate `y` with any solver (model
//! predictions of `y0 = x0 - mu`) and add `mu` back.

use super::mean_reverting::{centred_mean, centred_perturb, MeanReverting, ThetaSchedule};
use super::time_change::AffineBeta;
use crate::error::Result;
use crate::noise::NoiseSource;
use crate::schedule::{NoiseSchedule, VpLinear};
use crate::state::State;

/// The mean-shifted VP SDE with linear `beta_t` on `t in [0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanShiftedVp {
    vp: VpLinear,
    beta_min: f64,
    beta_max: f64,
}

impl Default for MeanShiftedVp {
    /// Grad-TTS's `beta_0 = 0.05`, `beta_1 = 20`.
    fn default() -> Self {
        MeanShiftedVp::new(0.05, 20.0).expect("valid Grad-TTS defaults")
    }
}

impl MeanShiftedVp {
    /// The process with `beta_t = beta_min + (beta_max - beta_min) t`, `0 <= beta_min < beta_max`.
    pub fn new(beta_min: f64, beta_max: f64) -> Result<Self> {
        Ok(MeanShiftedVp {
            vp: VpLinear::new(beta_min, beta_max, 1.0)?,
            beta_min,
            beta_max,
        })
    }

    /// The schedule of `y = x - mu`: the linear-beta VP schedule.
    pub fn schedule(&self) -> &VpLinear {
        &self.vp
    }

    /// `beta_t`.
    pub fn beta(&self, t: f64) -> f64 {
        self.vp.beta(t)
    }

    /// The conditional mean `e^{-B/2} x0 + (1 - e^{-B/2}) mu`.
    pub fn mean<S: State>(&self, x0: &S, mu: &S, t: f64) -> S {
        centred_mean(&self.vp, x0, mu, t)
    }

    /// The conditional standard deviation `sqrt(1 - e^{-B})`.
    pub fn std(&self, t: f64) -> f64 {
        self.vp.sigma(t)
    }

    /// Draws `x_t` given `x0` and `mu`.
    pub fn perturb<S: State>(
        &self,
        x0: &S,
        mu: &S,
        t: f64,
        noise: &mut dyn NoiseSource<S>,
    ) -> Result<S> {
        centred_perturb(&self.vp, x0, mu, t, noise)
    }

    /// The forward drift `(1/2) beta_t (mu - x)`.
    pub fn drift_of<S: State>(&self, x: &S, mu: &S, t: f64) -> S {
        let h = 0.5 * self.beta(t);
        mu.lincomb(h, x, -h)
    }

    /// The diffusion coefficient `sqrt(beta_t)`.
    pub fn diffusion(&self, t: f64) -> f64 {
        self.beta(t).max(0.0).sqrt()
    }

    /// The same process as a [`MeanReverting`] SDE (`theta = beta/2`, `lambda = 1`).
    pub fn as_mean_reverting(&self) -> MeanReverting {
        let theta = AffineBeta::new(0.5 * self.beta_min, 0.5 * (self.beta_max - self.beta_min))
            .expect("validated by VpLinear");
        MeanReverting::new(1.0, ThetaSchedule::Affine(theta)).expect("lambda = 1 is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::HostNoise;
    use crate::process::linear_sde::euler_maruyama_moments;
    use nalgebra::{DMatrix, DVector};

    #[test]
    fn closed_form_matches_grad_tts_and_the_mean_reverting_sde() {
        let p = MeanShiftedVp::default();
        let mr = p.as_mean_reverting();
        for &t in &[0.0, 0.1, 0.5, 1.0] {
            // Grad-TTS `get_noise`: cum = beta_0 t + (beta_1 - beta_0) t^2 / 2.
            let cum = 0.05 * t + 0.5 * 19.95 * t * t;
            let x0 = ndarray::arr1(&[0.3]);
            let mu = ndarray::arr1(&[-1.2]);
            let m = p.mean(&x0, &mu, t)[0];
            let want = 0.3 * (-0.5 * cum).exp() + -1.2 * (1.0 - (-0.5 * cum).exp());
            assert!((m - want).abs() < 1e-14);
            assert!((p.std(t).powi(2) - (1.0 - (-cum).exp())).abs() < 1e-14);
            assert!((mr.alpha(t) - p.schedule().alpha(t)).abs() < 1e-14);
            assert!((mr.sigma(t) - p.schedule().sigma(t)).abs() < 1e-14);
            assert!((mr.diffusion(t) - p.diffusion(t)).abs() < 1e-12);
        }
        // Terminal law N(mu, I) up to e^{-B(1)/2} = e^{-5.0125}.
        assert!(p.schedule().alpha(1.0) < 0.007);
    }

    #[test]
    fn marginal_matches_euler_maruyama() {
        // 20k paths, 1000 steps on [0, 0.3] (beta/2 <= 3, so 0.0009 per step). Margin: max z < 5.
        let p = MeanShiftedVp::default();
        let (x0, mu, t) = (2.0, 0.5, 0.3);
        let mc = euler_maruyama_moments(
            &|s| {
                let h = 0.5 * p.beta(s);
                (
                    DMatrix::from_element(1, 1, -h),
                    DVector::from_element(1, h * mu),
                )
            },
            &|s| DMatrix::from_element(1, 1, p.diffusion(s)),
            &DVector::from_element(1, x0),
            &DMatrix::zeros(1, 1),
            (0.0, t),
            1000,
            20_000,
            &mut HostNoise::new(41),
        )
        .unwrap();
        let a = p.schedule().alpha(t);
        let mean = DVector::from_element(1, a * x0 + (1.0 - a) * mu);
        let var = DMatrix::from_element(1, 1, p.std(t).powi(2));
        let z = mc.max_z_score(&mean, &var);
        assert!(z < 5.0, "max z {z}");
        // Forgetting mu (plain VP) is caught.
        assert!(mc.max_z_score(&DVector::from_element(1, a * x0), &var) > 20.0);
        let d = p.drift_of(&ndarray::arr1(&[x0]), &ndarray::arr1(&[mu]), t);
        assert!((d[0] - 0.5 * p.beta(t) * (mu - x0)).abs() < 1e-14);
        assert!(MeanShiftedVp::new(20.0, 0.05).is_err());
    }
}
