//! The mean-reverting SDE of IR-SDE, `dx = theta_t (mu - x) dt + sigma_t dW` with
//! `sigma_t^2 / theta_t = 2 lambda^2` fixed, whose marginal given `x0` is Gaussian around a point
//! that moves from `x0` to the condition `mu` (e.g. the degraded image), with stationary std `lambda`.
//!
//! Paper: Luo, Gustafsson, Zhao, Sjölund & Schön (2023), "Image Restoration with Mean-Reverting
//! Stochastic Differential Equations", arXiv:2301.11699, Eq. (2)-(4): with
//! `theta_bar(t) = int_0^t theta`, `x_t | x0 ~ N(mu + (x0 - mu) e^{-theta_bar}, lambda^2 (1 - e^{-2 theta_bar}))`.
//! The cosine `theta` schedule follows the reference code (Algolzw/image-restoration-sde,
//! `codes/utils/sde_utils.py`, `IRSDE`: `theta_i = 1 - alphabar_i` of the improved-DDPM cosine,
//! rescaled so that `e^{-theta_bar(T)} = eps`), here in continuous time on `t in [0, 1]`:
//! `theta(t) = k (1 - cos^2(a t + b) / cos^2 b)`, `a = pi / (2 (1 + s))`, `b = a s`, with `k` set by
//! `theta_bar(1) = -ln(eps)`. Defaults: `lambda = 10/255`, `s = 0.008`, `eps = 0.005` (the
//! reference configurations' `max_sigma: 10`, `eps: 0.005`).
//!
//! Solver view: `y = x - mu` is a plain linear diffusion, `y_t = alpha(t) y0 + sigma(t) eps` with
//! `alpha = e^{-theta_bar}`, `sigma = lambda sqrt(1 - alpha^2)`. The [`NoiseSchedule`] impl is this
//! view, so a generic solver integrates `y` (subtract `mu` from the state, give the model
//! predictions of `y0 = x0 - mu`, add `mu` back at the end); its `drift = -theta` and
//! `diffusion_sq = 2 lambda^2 theta` are the SDE's own coefficients.

use super::time_change::AffineBeta;
use crate::error::{CoreError, Result};
use crate::noise::NoiseSource;
use crate::schedule::{bisect_decreasing, NoiseSchedule};
use crate::state::State;
use std::f64::consts::PI;

/// The rate `theta(t)` of a mean-reverting SDE on `t in [0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThetaSchedule {
    /// `theta(t) = theta_0 + theta_1 t` (constant when `theta_1 = 0`).
    Affine(AffineBeta),
    /// IR-SDE's cosine schedule with offset `s`, scaled so that `e^{-theta_bar(1)} = eps`.
    Cosine {
        /// The cosine offset `s` (0.008 in IR-SDE).
        s: f64,
        /// The terminal data weight `e^{-theta_bar(1)}` (0.005 in IR-SDE), in `(0, 1)`.
        eps: f64,
    },
}

impl ThetaSchedule {
    fn validate(&self) -> Result<()> {
        if let ThetaSchedule::Cosine { s, eps } = *self {
            if !(s.is_finite() && s >= 0.0) {
                return Err(CoreError::invalid(
                    "s",
                    format!("must be finite and >= 0, got {s}"),
                ));
            }
            if !(eps > 0.0 && eps < 1.0) {
                return Err(CoreError::invalid(
                    "eps",
                    format!("must be in (0, 1), got {eps}"),
                ));
            }
        }
        Ok(())
    }

    /// `theta(t)`.
    pub fn theta(&self, t: f64) -> f64 {
        match *self {
            ThetaSchedule::Affine(b) => b.beta(t),
            ThetaSchedule::Cosine { s, eps } => {
                let (a, b, h0) = cosine_constants(s);
                let raw = (a * t).sin() * (a * t + 2.0 * b).sin() / h0;
                raw * (-eps.ln()) / cosine_raw_integral(s, 1.0)
            }
        }
    }

    /// `theta_bar(t) = int_0^t theta`.
    pub fn theta_bar(&self, t: f64) -> f64 {
        match *self {
            ThetaSchedule::Affine(b) => b.integral(t),
            ThetaSchedule::Cosine { s, eps } => {
                cosine_raw_integral(s, t) * (-eps.ln()) / cosine_raw_integral(s, 1.0)
            }
        }
    }

    /// The `t in [0, 1]` with `theta_bar(t) = target` (clamped to the ends).
    pub fn t_of_theta_bar(&self, target: f64) -> f64 {
        match *self {
            ThetaSchedule::Affine(b) => b.inverse_integral(target).min(1.0),
            ThetaSchedule::Cosine { .. } => {
                bisect_decreasing(|t| -self.theta_bar(t), (0.0, 1.0), -target)
            }
        }
    }
}

fn cosine_constants(s: f64) -> (f64, f64, f64) {
    let a = PI / (2.0 * (1.0 + s));
    let b = a * s;
    (a, b, b.cos().powi(2))
}

/// `x - sin(x)` without cancellation near 0.
fn x_minus_sin(x: f64) -> f64 {
    if x.abs() > 0.5 {
        return x - x.sin();
    }
    // x^3/3! - x^5/5! + x^7/7! - ...
    let x2 = x * x;
    let mut term = x * x2 / 6.0;
    let mut sum: f64 = 0.0;
    let mut k = 3.0;
    while term.abs() > 1e-18 * sum.abs().max(1e-300) {
        sum += term;
        term *= -x2 / ((k + 1.0) * (k + 2.0));
        k += 2.0;
    }
    sum
}

/// `int_0^t (1 - cos^2(a u + b) / cos^2 b) du = int_0^t sin(a u) sin(a u + 2b) du / cos^2 b`
/// `= [cos 2b (2at - sin 2at) / (4a) + sin 2b sin^2(at) / (2a)] / cos^2 b`.
fn cosine_raw_integral(s: f64, t: f64) -> f64 {
    let (a, b, h0) = cosine_constants(s);
    let at = a * t;
    ((2.0 * b).cos() * x_minus_sin(2.0 * at) / (4.0 * a)
        + (2.0 * b).sin() * at.sin().powi(2) / (2.0 * a))
        / h0
}

/// The IR-SDE mean-reverting process with stationary std `lambda` and rate schedule `theta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanReverting {
    lambda: f64,
    theta: ThetaSchedule,
}

impl Default for MeanReverting {
    /// IR-SDE's defaults: `lambda = 10/255`, cosine `s = 0.008`, `eps = 0.005`.
    fn default() -> Self {
        MeanReverting {
            lambda: 10.0 / 255.0,
            theta: ThetaSchedule::Cosine {
                s: 0.008,
                eps: 0.005,
            },
        }
    }
}

impl MeanReverting {
    /// The process with stationary std `lambda > 0` and rate schedule `theta`.
    pub fn new(lambda: f64, theta: ThetaSchedule) -> Result<Self> {
        if !(lambda.is_finite() && lambda > 0.0) {
            return Err(CoreError::invalid(
                "lambda",
                format!("must be finite and > 0, got {lambda}"),
            ));
        }
        theta.validate()?;
        Ok(MeanReverting { lambda, theta })
    }

    /// The stationary standard deviation `lambda` (`sigma_t^2 / theta_t = 2 lambda^2`).
    pub fn stationary_std(&self) -> f64 {
        self.lambda
    }

    /// The rate schedule.
    pub fn theta_schedule(&self) -> ThetaSchedule {
        self.theta
    }

    /// The diffusion coefficient `sigma_t = sqrt(2 lambda^2 theta_t)`.
    pub fn diffusion(&self, t: f64) -> f64 {
        (2.0 * self.lambda * self.lambda * self.theta.theta(t))
            .max(0.0)
            .sqrt()
    }

    /// The conditional mean `mu + (x0 - mu) e^{-theta_bar(t)}`.
    pub fn mean<S: State>(&self, x0: &S, mu: &S, t: f64) -> S {
        centred_mean(self, x0, mu, t)
    }

    /// The conditional standard deviation `lambda sqrt(1 - e^{-2 theta_bar(t)})`.
    pub fn std(&self, t: f64) -> f64 {
        self.sigma(t)
    }

    /// Draws `x_t` given `x0` and `mu`.
    pub fn perturb<S: State>(
        &self,
        x0: &S,
        mu: &S,
        t: f64,
        noise: &mut dyn NoiseSource<S>,
    ) -> Result<S> {
        centred_perturb(self, x0, mu, t, noise)
    }

    /// The forward drift `theta(t) (mu - x)`.
    pub fn drift_of<S: State>(&self, x: &S, mu: &S, t: f64) -> S {
        mu.lincomb(self.theta.theta(t), x, -self.theta.theta(t))
    }

    /// The conditional score `-(x - mean(x0, mu, t)) / std(t)^2` (IR-SDE's training target).
    pub fn conditional_score<S: State>(&self, x: &S, x0: &S, mu: &S, t: f64) -> S {
        let v = self.std(t).powi(2);
        self.mean(x0, mu, t).lincomb(1.0 / v, x, -1.0 / v)
    }
}

/// The conditional mean `a x0 + (1 - a) mu` of a kernel centred on `mu`, where `a = alpha(t)` of
/// the schedule of `y = x - mu` (shared by [`MeanReverting`] and the mean-shifted VP SDE).
pub(super) fn centred_mean<S: State>(y: &dyn NoiseSchedule, x0: &S, mu: &S, t: f64) -> S {
    let a = y.alpha(t);
    x0.lincomb(a, mu, 1.0 - a)
}

/// Draws `x_t = centred_mean(x0, mu, t) + sigma(t) eps` for `t in [0, 1]`.
pub(super) fn centred_perturb<S: State>(
    y: &dyn NoiseSchedule,
    x0: &S,
    mu: &S,
    t: f64,
    noise: &mut dyn NoiseSource<S>,
) -> Result<S> {
    if !(0.0..=1.0).contains(&t) {
        return Err(CoreError::invalid(
            "t",
            format!("must be in [0, 1], got {t}"),
        ));
    }
    let eps = noise.standard_normal(x0);
    Ok(centred_mean(y, x0, mu, t).axpy(y.sigma(t), &eps))
}

impl NoiseSchedule for MeanReverting {
    fn name(&self) -> String {
        match self.theta {
            ThetaSchedule::Affine(b) => format!(
                "mean-reverting(lambda={},theta={}+{}t)",
                self.lambda,
                b.beta0(),
                b.beta1()
            ),
            ThetaSchedule::Cosine { s, eps } => {
                format!(
                    "mean-reverting(lambda={},cosine s={s},eps={eps})",
                    self.lambda
                )
            }
        }
    }
    fn t_range(&self) -> (f64, f64) {
        (0.0, 1.0)
    }
    fn alpha(&self, t: f64) -> f64 {
        (-self.theta.theta_bar(t)).exp()
    }
    fn sigma(&self, t: f64) -> f64 {
        self.lambda * (-(-2.0 * self.theta.theta_bar(t)).exp_m1()).max(0.0).sqrt()
    }
    fn lambda(&self, t: f64) -> f64 {
        let tb = self.theta.theta_bar(t);
        -tb - self.lambda.ln() - 0.5 * (-(-2.0 * tb).exp_m1()).max(0.0).ln()
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        if lambda == f64::INFINITY {
            return 0.0;
        }
        // e^{2 l} = e^{-2 tb} / (lambda^2 (1 - e^{-2 tb}))  =>  tb = ln(1 + e^{-2 l} / lambda^2) / 2.
        let x = -2.0 * lambda - 2.0 * self.lambda.ln();
        let softplus = if x > 0.0 {
            x + (-x).exp().ln_1p()
        } else {
            x.exp().ln_1p()
        };
        self.theta.t_of_theta_bar(0.5 * softplus)
    }
    fn drift(&self, t: f64) -> f64 {
        -self.theta.theta(t)
    }
    fn diffusion_sq(&self, t: f64) -> f64 {
        2.0 * self.lambda * self.lambda * self.theta.theta(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::HostNoise;
    use crate::process::linear_sde::euler_maruyama_moments;
    use crate::schedule::testing::check_schedule;
    use nalgebra::{DMatrix, DVector};

    fn affine() -> MeanReverting {
        MeanReverting::new(
            0.5,
            ThetaSchedule::Affine(AffineBeta::new(0.5, 3.0).unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn schedule_view_is_consistent_and_reaches_the_terminal_law() {
        let ts: Vec<f64> = (1..=50).map(|i| i as f64 / 50.0).collect();
        for mr in [MeanReverting::default(), affine()] {
            check_schedule(&mr, &ts);
            assert_eq!(mr.sigma(0.0), 0.0);
            assert_eq!(mr.alpha(0.0), 1.0);
        }
        let mr = MeanReverting::default();
        assert!((mr.alpha(1.0) - 0.005).abs() < 1e-14);
        assert!((mr.sigma(1.0) - 10.0 / 255.0 * (1.0 - 0.005_f64.powi(2)).sqrt()).abs() < 1e-15);
        // theta_bar is the integral of theta (Simpson on 2000 panels, error ~1e-13).
        let th = mr.theta_schedule();
        let n = 2000;
        let h = 0.7 / n as f64;
        let simpson: f64 = (0..n)
            .map(|i| {
                let a = i as f64 * h;
                h / 6.0 * (th.theta(a) + 4.0 * th.theta(a + h / 2.0) + th.theta(a + h))
            })
            .sum();
        assert!((th.theta_bar(0.7) - simpson).abs() < 1e-10);
        // Small-t accuracy of the closed form: theta_bar ~ int k a sin(2b) u / cos^2 b du.
        let t = 1e-7;
        assert!(th.theta_bar(t) > 0.0 && th.theta_bar(t) < 1e-10);
    }

    #[test]
    fn marginal_matches_euler_maruyama() {
        // 20k paths, 1000 steps on [0, 0.6] (theta <= 2.3, so 0.0014 per step: EM bias ~0.1% of
        // the variance, a tenth of a standard error). Margin: max z < 5 on mean and variance.
        let mr = affine();
        let (x0, mu, t) = (1.5, -0.7, 0.6);
        let th = mr.theta_schedule();
        let lam = mr.stationary_std();
        let mc = euler_maruyama_moments(
            &|s| {
                let a = th.theta(s);
                (
                    DMatrix::from_element(1, 1, -a),
                    DVector::from_element(1, a * mu),
                )
            },
            &|s| DMatrix::from_element(1, 1, (2.0 * lam * lam * th.theta(s)).sqrt()),
            &DVector::from_element(1, x0),
            &DMatrix::zeros(1, 1),
            (0.0, t),
            1000,
            20_000,
            &mut HostNoise::new(23),
        )
        .unwrap();
        let a = mr.alpha(t);
        let mean = DVector::from_element(1, mu + (x0 - mu) * a);
        let var = DMatrix::from_element(1, 1, mr.std(t).powi(2));
        let z = mc.max_z_score(&mean, &var);
        assert!(z < 5.0, "max z {z}");
        // A sign error (drift away from mu) is caught.
        let wrong = DVector::from_element(1, mu - (x0 - mu) * a);
        assert!(mc.max_z_score(&wrong, &var) > 50.0);
    }

    #[test]
    fn state_api_is_the_closed_form() {
        let mr = MeanReverting::default();
        let x0 = ndarray::arr1(&[0.2, 0.9]);
        let mu = ndarray::arr1(&[0.5, 0.5]);
        let m = mr.mean(&x0, &mu, 0.4);
        let a = mr.alpha(0.4);
        assert!((m[0] - (0.5 + (0.2 - 0.5) * a)).abs() < 1e-15);
        let x = mr.perturb(&x0, &mu, 0.4, &mut HostNoise::new(3)).unwrap();
        let s = mr.conditional_score(&x, &x0, &mu, 0.4);
        // score * std^2 = -(x - mean): the standardized noise.
        let e0 = -s[0] * mr.std(0.4);
        assert!(e0.abs() < 6.0 && e0 != 0.0);
        let d = mr.drift_of(&x0, &mu, 0.4);
        assert!((d[0] - mr.theta_schedule().theta(0.4) * 0.3).abs() < 1e-14);
        assert!(mr.perturb(&x0, &mu, 1.5, &mut HostNoise::new(3)).is_err());
        assert!(MeanReverting::new(
            0.0,
            ThetaSchedule::Cosine {
                s: 0.008,
                eps: 0.005
            }
        )
        .is_err());
        assert!(MeanReverting::new(1.0, ThetaSchedule::Cosine { s: 0.008, eps: 1.0 }).is_err());
        for &x in &[0.3_f64, 0.5, -0.45] {
            let direct = x - x.sin();
            assert!((x_minus_sin(x) - direct).abs() < 1e-12 * direct.abs());
        }
        // Where the direct form cancels: x^3/6 (1 - x^2/20) to 1e-16 relative.
        let x = 1e-4_f64;
        let series = x.powi(3) / 6.0 * (1.0 - x * x / 20.0);
        assert!((x_minus_sin(x) / series - 1.0).abs() < 1e-14);
    }
}
