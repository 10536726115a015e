//! The prior gap at a truncated diffusion time `T`: how far the diffused data law still is from
//! the Gaussian a sampler starts from.
//!
//! Paper: Franzese, Rossi, Yang, Finamore, Rossi, Filippone & Michiardi (2023), "How Much is
//! Enough? A Study on Diffusion Times in Score-based Generative Models", arXiv:2206.05173, Sec. 3
//! (the ELBO splits into a score-matching term and the prior gap `KL(p_T || p_prior)`, which
//! shrinks as `T` grows while the score term grows).
//!
//! For a Gaussian target `N(mu, Sigma)` and the prior `N(0, sigma(T)^2 I)` (what samplers draw:
//! `sigma(T) z`), the gap is closed form and depends on `T` only through `SNR = alpha^2 / sigma^2`:
//! `KL = 1/2 sum_k [SNR s_k - ln(1 + SNR s_k)] + 1/2 SNR |mu|^2`, `s_k` the eigenvalues of
//! `Sigma` (via [`crate::metrics::gaussian_kl`]). It is increasing in SNR, hence decreasing in `T`,
//! so the smallest `T` with a gap below a tolerance is found by bisection in `lambda`. For a
//! Gaussian mixture the gap has no closed form and is not provided.

use crate::error::{CoreError, Result};
use crate::metrics::gaussian_kl;
use crate::schedule::NoiseSchedule;
use crate::target::Gaussian;

/// `KL(p_t || N(0, sigma(t)^2 I))` for the Gaussian `target` diffused to time `t` (needs
/// `sigma(t) > 0`).
pub fn prior_gap_kl(target: &Gaussian, schedule: &dyn NoiseSchedule, t: f64) -> Result<f64> {
    let s = schedule.sigma(t);
    if s.is_nan() || s <= 0.0 {
        return Err(CoreError::invalid(
            "t",
            format!("the prior N(0, sigma(t)^2 I) needs sigma(t) > 0, got t = {t}"),
        ));
    }
    let d = target.dim();
    let eye: Vec<Vec<f64>> = (0..d)
        .map(|i| (0..d).map(|j| if i == j { s * s } else { 0.0 }).collect())
        .collect();
    let prior = Gaussian::new(vec![0.0; d], eye)?;
    gaussian_kl(&target.marginal(schedule, t), &prior)
}

/// The same gap as a function of the signal-to-noise ratio alone:
/// `1/2 sum_k [snr s_k - ln(1 + snr s_k)] + 1/2 snr |mu|^2`.
pub fn prior_gap_kl_at_snr(target: &Gaussian, snr: f64) -> f64 {
    let (vals, _) = target.eig();
    let spread: f64 = vals
        .iter()
        .map(|&v| {
            let x = snr * v.max(0.0);
            x - x.ln_1p()
        })
        .sum();
    0.5 * spread + 0.5 * snr * target.mean().norm_squared()
}

/// The smallest time `T` of `schedule` whose prior gap is at most `tol` nats. Errors when
/// `tol <= 0` and when even the largest time leaves a larger gap.
pub fn truncation_time(target: &Gaussian, schedule: &dyn NoiseSchedule, tol: f64) -> Result<f64> {
    if tol.is_nan() || tol <= 0.0 {
        return Err(CoreError::invalid(
            "tol",
            format!("must be positive, got {tol}"),
        ));
    }
    let (_, hi) = schedule.t_range();
    let gap_hi = prior_gap_kl_at_snr(target, (2.0 * schedule.lambda(hi)).exp());
    if gap_hi > tol {
        return Err(CoreError::invalid(
            "tol",
            format!(
                "even t = {hi} (the largest time of {}) leaves a prior gap of {gap_hi} > {tol} nats",
                schedule.name()
            ),
        ));
    }
    // Bisect on lambda between lambda(hi) (gap <= tol) and a lambda with gap > tol.
    let gap = |l: f64| prior_gap_kl_at_snr(target, (2.0 * l).exp());
    let mut a = schedule.lambda(hi);
    let mut b = a + 1.0;
    while gap(b) <= tol {
        b += 2.0 * (b - a);
        if b > 350.0 {
            // The gap never exceeds tol (a point mass at 0): every time works.
            return Ok(schedule.t_range().0);
        }
    }
    for _ in 0..200 {
        let m = 0.5 * (a + b);
        if m <= a || m >= b {
            break;
        }
        if gap(m) <= tol {
            a = m;
        } else {
            b = m;
        }
    }
    Ok(schedule.t_of_lambda(a).min(hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{Edm, VpLinear};

    fn target() -> Gaussian {
        Gaussian::new(vec![1.5, -0.5], vec![vec![0.4, 0.15], vec![0.15, 0.2]]).unwrap()
    }

    #[test]
    fn gap_matches_the_snr_closed_form_and_shrinks_with_t() {
        let g = target();
        for s in [&VpLinear::default() as &dyn NoiseSchedule, &Edm::default()] {
            let (_, hi) = s.t_range();
            let mut prev = f64::INFINITY;
            for k in 1..=20 {
                let t = hi * k as f64 / 20.0;
                let kl = prior_gap_kl(&g, s, t).unwrap();
                let snr = (s.alpha(t) / s.sigma(t)).powi(2);
                let closed = prior_gap_kl_at_snr(&g, snr);
                assert!(
                    (kl - closed).abs() < 1e-9 * (1.0 + kl),
                    "{}: {kl} vs {closed}",
                    s.name()
                );
                assert!(kl < prev && kl > 0.0);
                prev = kl;
            }
        }
        // EDM at T = 80: SNR = 1/6400; to first order in SNR the gap is SNR |mu|^2 / 2.
        let kl = prior_gap_kl(&g, &Edm::default(), 80.0).unwrap();
        let first = 0.5 * 2.5 / 6400.0;
        assert!((kl - first).abs() < 1e-3 * first, "{kl} vs {first}");
        assert!(prior_gap_kl(&g, &VpLinear::default(), 0.0).is_err());
    }

    #[test]
    fn truncation_time_is_the_first_time_below_the_tolerance() {
        let g = target();
        let s = VpLinear::default();
        for tol in [1e-1, 1e-2, 1e-3] {
            let t = truncation_time(&g, &s, tol).unwrap();
            let at = prior_gap_kl(&g, &s, t).unwrap();
            assert!(
                (at - tol).abs() < 1e-6 * tol,
                "tol {tol}: t = {t}, gap {at}"
            );
            assert!(prior_gap_kl(&g, &s, t * 0.99).unwrap() > tol);
        }
        // VP-linear(0.1, 20) at t = 1 has SNR ~ 4.3e-5: a 1e-6 nats gap is out of reach.
        assert!(truncation_time(&g, &s, 1e-6).is_err());
        assert!(truncation_time(&g, &s, 0.0).is_err());
    }
}
