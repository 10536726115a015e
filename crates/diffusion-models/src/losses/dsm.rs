//! Denoising score matching with an eps, x0, v, score or velocity target and a weighting.
//!
//! Paper: Vincent (2011), "A Connection Between Score Matching and Denoising Autoencoders",
//! Neural Computation 23(7) (denoising score matching); Ho, Jain & Abbeel (2020), "Denoising
//! Diffusion Probabilistic Models", arXiv:2006.11239, Eq. (14) (`L_simple`, the eps target);
//! Salimans & Ho (2022), "Progressive Distillation for Fast Sampling of Diffusion Models",
//! arXiv:2202.00512, Sec. 4 (the v target and truncated-SNR weighting); Hang et al. (2023),
//! "Efficient Diffusion Training via Min-SNR Weighting Strategy", arXiv:2303.09556, Eq. (7)-(9)
//! (min-SNR-gamma); Kingma & Gao (2023), "Understanding Diffusion Objectives as the ELBO with
//! Simple Data Augmentation", arXiv:2303.00848 (weightings across parameterizations).
//!
//! With `x_t = alpha x0 + sigma eps`, `t ~ U(t_min, t_max)`, the per-sample loss is
//! `m(t) * mean((net(x_t, t) - target)^2)`. Every [`Weighting`] except `Simple` is stated, as in
//! Hang et al., as a weight `w(t)` on the x0 error; it is carried to the chosen target by the
//! exact ratio of squared errors, so a weighting means the same objective for every
//! parameterization: `|d eps|^2 = snr |d x0|^2`, `|d v|^2 = (alpha^2 + sigma^2)^2 / sigma^2 |d x0|^2`,
//! `|d score|^2 = alpha^2 / sigma^4 |d x0|^2`, `|d u|^2 = ((alpha' sigma - sigma' alpha) / sigma)^2
//! |d x0|^2`, with `snr = alpha^2 / sigma^2`. (Min-SNR-gamma with an eps target is
//! `min(snr, gamma) / snr`, with a v target `min(snr, gamma) / (snr + 1)` under VP: Hang et al.)

use super::{check_batch, mean_per_sample, normals_like, per_row, vector, Objective};
use crate::denoiser::{Output, Parameterization};
use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use diffusion_core::{Coeffs, HostNoise, NoiseSchedule};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// How the per-time squared errors are weighted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Weighting {
    /// Plain mean squared error on the chosen target (`L_simple` for eps).
    Simple,
    /// `w = 1` on the x0 error.
    X0,
    /// `w = snr` on the x0 error (the eps MSE).
    Snr,
    /// `w = min(snr, gamma)` on the x0 error (Hang et al. 2023; gamma = 5 there).
    MinSnr {
        /// The clamp `gamma > 0`.
        gamma: f64,
    },
    /// `w = max(snr, 1)` on the x0 error (Salimans & Ho 2022).
    TruncatedSnr,
}

/// `|d target|^2 / |d x0|^2` for one target at coefficients `c`.
pub fn error_ratio(target: Output, c: &Coeffs) -> f64 {
    let Coeffs {
        alpha,
        sigma,
        d_alpha,
        d_sigma,
    } = *c;
    let snr = alpha * alpha / (sigma * sigma);
    match target {
        Output::Sample => 1.0,
        Output::Epsilon => snr,
        Output::V => (alpha * alpha + sigma * sigma).powi(2) / (sigma * sigma),
        Output::Score => alpha * alpha / sigma.powi(4),
        Output::Velocity => ((d_alpha * sigma - d_sigma * alpha) / sigma).powi(2),
    }
}

impl Weighting {
    /// The weight on the x0 error at signal-to-noise ratio `snr` (`None` for `Simple`).
    pub fn x0_weight(&self, snr: f64) -> Option<f64> {
        match *self {
            Weighting::Simple => None,
            Weighting::X0 => Some(1.0),
            Weighting::Snr => Some(snr),
            Weighting::MinSnr { gamma } => Some(snr.min(gamma)),
            Weighting::TruncatedSnr => Some(snr.max(1.0)),
        }
    }

    /// The multiplier of the squared error of `target` at coefficients `c`.
    pub fn multiplier(&self, target: Output, c: &Coeffs) -> f64 {
        let snr = c.alpha * c.alpha / (c.sigma * c.sigma);
        match self.x0_weight(snr) {
            None => 1.0,
            Some(w) => w / error_ratio(target, c),
        }
    }

    /// Checks the parameter.
    pub fn validate(&self) -> Result<()> {
        if let Weighting::MinSnr { gamma } = *self {
            if !(gamma.is_finite() && gamma > 0.0) {
                return Err(ModelError::invalid(
                    "weighting.gamma",
                    format!("must be finite and positive, got {gamma}"),
                ));
            }
        }
        Ok(())
    }
}

/// Denoising score matching under a schedule (see the module documentation).
#[derive(Debug)]
pub struct DsmLoss {
    schedule: Box<dyn NoiseSchedule>,
    target: Output,
    weighting: Weighting,
    t_min: f64,
    t_max: f64,
}

impl DsmLoss {
    /// A DSM objective with times uniform on `[t_min, t_max]` (inside the schedule's range, with
    /// finite weights at both ends).
    pub fn new(
        schedule: Box<dyn NoiseSchedule>,
        target: Output,
        weighting: Weighting,
        t_min: f64,
        t_max: f64,
    ) -> Result<Self> {
        weighting.validate()?;
        let (lo, hi) = schedule.t_range();
        if !(t_min.is_finite() && t_max.is_finite() && lo <= t_min && t_min < t_max && t_max <= hi)
        {
            return Err(ModelError::invalid(
                "t_min/t_max",
                format!("need {lo} <= t_min < t_max <= {hi}, got [{t_min}, {t_max}]"),
            ));
        }
        for t in [t_min, t_max] {
            let c = Coeffs::at(schedule.as_ref(), t);
            let m = weighting.multiplier(target, &c);
            if !(m.is_finite() && c.sigma > 0.0 && c.alpha > 0.0) {
                return Err(ModelError::invalid(
                    "t_min/t_max",
                    format!(
                        "the {} target with this weighting is singular at t = {t} (alpha {}, sigma {}); move t_min/t_max inside the range",
                        target.name(),
                        c.alpha,
                        c.sigma
                    ),
                ));
            }
        }
        Ok(DsmLoss {
            schedule,
            target,
            weighting,
            t_min,
            t_max,
        })
    }

    /// The target the network predicts.
    pub fn target(&self) -> Output {
        self.target
    }

    /// Per-sample losses `[B]` for clean data `x0`, times `t` (one per sample) and noise `eps`.
    pub fn per_sample(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        t: &[f64],
        eps: &Tensor,
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        check_batch(x0, eps, t.len(), "DSM loss")?;
        let cs: Vec<Coeffs> = t
            .iter()
            .map(|&ti| Coeffs::at(self.schedule.as_ref(), ti))
            .collect();
        let col = |f: &dyn Fn(&Coeffs) -> f64| per_row(&cs.iter().map(f).collect::<Vec<_>>(), x0);
        let (a, s) = (col(&|c| c.alpha), col(&|c| c.sigma));
        let xt = &a * x0 + &s * eps;
        let target = match self.target {
            Output::Epsilon => eps.shallow_clone(),
            Output::Sample => x0.shallow_clone(),
            Output::V => &a * eps - &s * x0,
            Output::Score => -(eps / &s),
            Output::Velocity => col(&|c| c.d_alpha) * x0 + col(&|c| c.d_sigma) * eps,
        };
        let pred = net.forward_t(&xt, &vector(t, x0), class)?;
        let pred = pred.to_kind(x0.kind()).to_device(x0.device());
        if pred.size() != x0.size() {
            return Err(ModelError::Shape {
                context: "DSM loss: network output".into(),
                expected: x0.size(),
                got: pred.size(),
            });
        }
        let m: Vec<f64> = cs
            .iter()
            .map(|c| self.weighting.multiplier(self.target, c))
            .collect();
        Ok(vector(&m, x0) * mean_per_sample(&(pred - target).square()))
    }
}

impl Objective for DsmLoss {
    fn name(&self) -> String {
        format!(
            "dsm({}, target {}, {:?}, t in [{}, {}])",
            self.schedule.name(),
            self.target.name(),
            self.weighting,
            self.t_min,
            self.t_max
        )
    }

    fn loss(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        class: Option<&Tensor>,
        noise: &mut HostNoise,
    ) -> Result<Tensor> {
        let b = *x0.size().first().unwrap_or(&0) as usize;
        let t: Vec<f64> = (0..b)
            .map(|_| self.t_min + (self.t_max - self.t_min) * noise.uniform())
            .collect();
        let eps = normals_like(noise, x0);
        Ok(self.per_sample(net, x0, &t, &eps, class)?.mean(x0.kind()))
    }

    fn parameterization(&self) -> Parameterization {
        Parameterization::Raw(self.target)
    }

    fn schedule(&self) -> &dyn NoiseSchedule {
        self.schedule.as_ref()
    }
    fn into_schedule(self: Box<Self>) -> Box<dyn NoiseSchedule> {
        self.schedule
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffusion_core::schedule::VpLinear;

    #[test]
    fn min_snr_matches_hang_et_al_for_eps_and_v() {
        let s = VpLinear::default();
        for &t in &[0.05, 0.3, 0.8] {
            let c = Coeffs::at(&s, t);
            let snr = c.alpha * c.alpha / (c.sigma * c.sigma);
            let w = Weighting::MinSnr { gamma: 5.0 };
            let e = w.multiplier(Output::Epsilon, &c);
            let v = w.multiplier(Output::V, &c);
            let x = w.multiplier(Output::Sample, &c);
            assert!((e - snr.min(5.0) / snr).abs() < 1e-12);
            assert!((v - snr.min(5.0) / (snr + 1.0)).abs() < 1e-9);
            assert!((x - snr.min(5.0)).abs() < 1e-12);
            assert_eq!(Weighting::Simple.multiplier(Output::V, &c), 1.0);
            // The SNR weighting is the plain eps MSE.
            assert!((Weighting::Snr.multiplier(Output::Epsilon, &c) - 1.0).abs() < 1e-12);
        }
        assert!(Weighting::MinSnr { gamma: -1.0 }.validate().is_err());
    }

    #[test]
    fn singular_time_ranges_are_rejected() {
        let s = || Box::new(VpLinear::default()) as Box<dyn NoiseSchedule>;
        assert!(DsmLoss::new(s(), Output::Epsilon, Weighting::Simple, 1e-3, 1.0).is_ok());
        // The score target at sigma = 0 is infinite.
        assert!(DsmLoss::new(s(), Output::Score, Weighting::Snr, 0.0, 1.0).is_err());
        assert!(DsmLoss::new(s(), Output::Epsilon, Weighting::Simple, 0.5, 0.2).is_err());
        assert!(DsmLoss::new(s(), Output::Epsilon, Weighting::Simple, 0.1, 2.0).is_err());
    }
}
