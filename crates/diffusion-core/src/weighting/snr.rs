//! The signal-to-noise ratio and the min-SNR-gamma loss weighting.
//!
//! Paper: Hang, Gu, Li, Bao, Chen, Hu, Geng & Guo (2023), "Efficient Diffusion Training via
//! Min-SNR Weighting Strategy", arXiv:2303.09556, Sec. 3.4: weight the `x0` mean squared error by
//! `min(SNR(t), gamma)` (default `gamma = 5`). Since `||eps_hat - eps||^2 = SNR ||x0_hat - x0||^2`
//! and (for VP schedules) `||v_hat - v||^2 = (SNR + 1) ||x0_hat - x0||^2`, the same loss written
//! for an `eps` or `v` network has weight `min(SNR, gamma) / SNR` or `min(SNR, gamma) / (SNR + 1)`
//! (diffusers `training_utils.py:compute_snr` and its training scripts).
//!
//! `SNR(t) = alpha^2 / sigma^2 = exp(2 lambda(t))`. Zero terminal SNR (Lin et al. 2023,
//! arXiv:2305.08891) makes `SNR = 0` at the last time: the `eps` weight is then its limit 1
//! (`SNR <= gamma`), never `0 / 0` (kohya-ss issues #1263, #1905).

use crate::error::{CoreError, Result};
use crate::schedule::NoiseSchedule;

/// `SNR(t) = alpha(t)^2 / sigma(t)^2`: `+inf` where `sigma = 0`, 0 where `alpha = 0`.
pub fn snr(schedule: &dyn NoiseSchedule, t: f64) -> f64 {
    let (a, s) = (schedule.alpha(t), schedule.sigma(t));
    if s == 0.0 {
        f64::INFINITY
    } else {
        (a / s).powi(2)
    }
}

/// What a network regresses, i.e. which mean squared error a loss weight multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossTarget {
    /// The noise `eps`.
    Epsilon,
    /// The clean sample `x0`.
    Sample,
    /// `v = alpha eps - sigma x0` (VP schedules).
    V,
}

/// The min-SNR-gamma weight of the loss on `target` at signal-to-noise ratio `snr`: `min(snr,
/// gamma)` for `x0`, `min(snr, gamma) / snr` for `eps` (1 at `snr = 0`), `min(snr, gamma) /
/// (snr + 1)` for `v`. All three weight the same `x0`-space loss. Errors when `gamma <= 0` or
/// `snr` is negative or NaN.
pub fn min_snr_weight(snr: f64, gamma: f64, target: LossTarget) -> Result<f64> {
    if gamma.is_nan() || gamma <= 0.0 {
        return Err(CoreError::invalid(
            "gamma",
            format!("must be positive, got {gamma}"),
        ));
    }
    if snr.is_nan() || snr < 0.0 {
        return Err(CoreError::invalid(
            "snr",
            format!("must be >= 0, got {snr}"),
        ));
    }
    let clipped = snr.min(gamma);
    Ok(match target {
        LossTarget::Sample => clipped,
        LossTarget::Epsilon => {
            if snr <= gamma {
                1.0
            } else {
                gamma / snr
            }
        }
        LossTarget::V => clipped / (snr + 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::HostNoise;
    use crate::schedule::{self, VpCosine};

    #[test]
    fn the_three_weights_give_one_x0_space_loss() {
        // A VP schedule, random x0, eps and a wrong x0_hat, eps_hat pair that is consistent
        // with the same x_t: the weighted eps, x0 and v errors must agree.
        let s = VpCosine::default();
        let mut noise = HostNoise::new(3);
        for &t in &[0.05, 0.3, 0.6, 0.95] {
            let (a, sg) = (s.alpha(t), s.sigma(t));
            let r = snr(&s, t);
            assert!((r - (2.0 * s.lambda(t)).exp()).abs() < 1e-9 * r);
            let v = noise.normals(6);
            let (x0, eps, x0h) = (v[0..2].to_vec(), v[2..4].to_vec(), v[4..6].to_vec());
            let xt: Vec<f64> = (0..2).map(|i| a * x0[i] + sg * eps[i]).collect();
            let epsh: Vec<f64> = (0..2).map(|i| (xt[i] - a * x0h[i]) / sg).collect();
            let vv = |e: &[f64], x: &[f64]| -> Vec<f64> {
                (0..2).map(|i| a * e[i] - sg * x[i]).collect()
            };
            let sq = |p: &[f64], q: &[f64]| -> f64 {
                p.iter().zip(q).map(|(x, y)| (x - y).powi(2)).sum()
            };
            let l_x0 = sq(&x0h, &x0);
            let l_eps = sq(&epsh, &eps);
            let l_v = sq(&vv(&epsh, &x0h), &vv(&eps, &x0));
            for gamma in [1.0, 5.0] {
                let w0 = min_snr_weight(r, gamma, LossTarget::Sample).unwrap() * l_x0;
                let we = min_snr_weight(r, gamma, LossTarget::Epsilon).unwrap() * l_eps;
                let wv = min_snr_weight(r, gamma, LossTarget::V).unwrap() * l_v;
                assert!((w0 - we).abs() < 1e-9 * (1.0 + w0), "t={t}: {w0} vs {we}");
                assert!((w0 - wv).abs() < 1e-9 * (1.0 + w0), "t={t}: {w0} vs {wv}");
                assert!(w0 <= gamma * l_x0 + 1e-12);
            }
        }
    }

    #[test]
    fn zero_terminal_snr_and_bad_inputs() {
        let s = schedule::build("ddpm-scaled-linear:zero_snr=1").unwrap();
        assert!(snr(s.as_ref(), 999.0) < 1e-7);
        assert_eq!(min_snr_weight(0.0, 5.0, LossTarget::Epsilon).unwrap(), 1.0);
        assert_eq!(min_snr_weight(0.0, 5.0, LossTarget::V).unwrap(), 0.0);
        assert_eq!(min_snr_weight(0.0, 5.0, LossTarget::Sample).unwrap(), 0.0);
        assert_eq!(
            min_snr_weight(20.0, 5.0, LossTarget::Epsilon).unwrap(),
            0.25
        );
        assert_eq!(min_snr_weight(20.0, 5.0, LossTarget::Sample).unwrap(), 5.0);
        assert_eq!(min_snr_weight(2.0, 5.0, LossTarget::V).unwrap(), 2.0 / 3.0);
        assert_eq!(
            min_snr_weight(f64::INFINITY, 5.0, LossTarget::Epsilon).unwrap(),
            0.0
        );
        assert_eq!(
            snr(&crate::schedule::VpLinear::default(), 0.0),
            f64::INFINITY
        );
        assert!(min_snr_weight(1.0, 0.0, LossTarget::Sample).is_err());
        assert!(min_snr_weight(f64::NAN, 5.0, LossTarget::Sample).is_err());
        assert!(min_snr_weight(-1.0, 5.0, LossTarget::Sample).is_err());
    }
}
