//! Discrete DDPM beta tables (`alphas_cumprod`) viewed as a continuous-time schedule.
//!
//! Paper: Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models", arXiv:2006.11239,
//! Eq. (4) (`q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)`) and Section 4 (linear
//! betas `1e-4 .. 0.02`, `T = 1000`); Nichol & Dhariwal (2021), "Improved Denoising Diffusion
//! Probabilistic Models", arXiv:2102.09672, Eq. (17) (cosine `alpha_bar`, betas capped at 0.999:
//! diffusers' `squaredcos_cap_v2`); Rombach et al. (2022), "High-Resolution Image Synthesis with
//! Latent Diffusion Models", arXiv:2112.10752 (Stable Diffusion's `scaled_linear`,
//! `0.00085 .. 0.012`); Lin, Liu, Li & Yang (2023), "Common Diffusion Noise Schedules and Sample
//! Steps are Flawed", arXiv:2305.08891, Algorithm 1 (zero-terminal-SNR rescaling).
//!
//! Continuous view (k-diffusion `external.py:DiscreteSchedule.t_to_sigma` / `sigma_to_t`): time
//! `t in [0, N - 1]` indexes the table, entry `i` being `alpha_bar_i = prod_{j <= i} (1 - beta_j)`
//! (diffusers' timestep `i`). Between entries the EDM noise level
//! `s = sigma / alpha = sqrt((1 - alpha_bar) / alpha_bar)` is interpolated linearly in `ln s`, so
//! `lambda(t) = -ln s(t)` is piecewise linear and its inverse is closed-form (a table search).
//! The VP coefficients are `alpha = 1 / sqrt(1 + s^2)`, `sigma = s alpha`; on a segment with slope
//! `m = d ln s / dt` the SDE has `f = -m sigma^2` and `g^2 = 2 m sigma^2` (one-sided at the table
//! entries, where the slope jumps). Times outside `[0, N - 1]` are clamped, as in a table lookup.
//!
//! Conventions: `alpha_bar_0 = 1 - beta_0 < 1`, so `t = 0` is not clean data (`sigma(0) > 0`,
//! `lambda(0)` finite); samplers that want `sigma = 0` denoise once more at the end. Everything is
//! f64 and accumulated in log space (`ln alpha_bar = sum ln(1 - beta)`), where diffusers uses
//! float32 tables: expect agreement to ~1e-6 relative, not bit parity. With zero-terminal-SNR the
//! last `alpha_bar` is exactly 0 (infinite `s`); like diffusers' `EulerDiscreteScheduler` with
//! `rescale_betas_zero_snr` we clamp it to `2^-24` (`s_max = sqrt(2^24 - 1) ~ 4096`), while
//! [`DdpmDiscrete::betas`] keeps the rescaled betas (last beta = 1).

use super::NoiseSchedule;
use crate::error::{CoreError, Result};
use crate::schedule::vp_cosine::softplus;
use std::cmp::Ordering;

/// The value `alpha_bar_{N-1}` is clamped to under zero-terminal-SNR rescaling: `2^-24`, as in
/// diffusers' `EulerDiscreteScheduler`.
pub const ZERO_SNR_ALPHA_BAR: f64 = 1.0 / 16_777_216.0;

/// How a DDPM beta table is generated (diffusers' `beta_schedule`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BetaSchedule {
    /// DDPM's `linear`: `beta_i = beta_start + i (beta_end - beta_start) / (N - 1)`.
    Linear {
        /// First beta (DDPM: `1e-4`).
        beta_start: f64,
        /// Last beta (DDPM: `0.02`).
        beta_end: f64,
    },
    /// Stable Diffusion's `scaled_linear`: linear in `sqrt(beta)`, then squared.
    ScaledLinear {
        /// First beta (SD: `0.00085`).
        beta_start: f64,
        /// Last beta (SD: `0.012`).
        beta_end: f64,
    },
    /// iDDPM's cosine, diffusers' `squaredcos_cap_v2`: [`betas_for_alpha_bar`] with a cap.
    SquaredCosCapV2 {
        /// Upper bound on every beta (iDDPM: `0.999`).
        max_beta: f64,
    },
}

impl BetaSchedule {
    /// The `n` betas of this schedule; validates the parameters.
    pub fn betas(&self, n: usize) -> Result<Vec<f64>> {
        if n < 2 {
            return Err(CoreError::invalid("n", format!("need n >= 2, got {n}")));
        }
        let last = (n - 1) as f64;
        match *self {
            BetaSchedule::Linear {
                beta_start,
                beta_end,
            } => {
                check_beta_pair(beta_start, beta_end)?;
                Ok((0..n)
                    .map(|i| beta_start + (beta_end - beta_start) * (i as f64 / last))
                    .collect())
            }
            BetaSchedule::ScaledLinear {
                beta_start,
                beta_end,
            } => {
                check_beta_pair(beta_start, beta_end)?;
                let (a, b) = (beta_start.sqrt(), beta_end.sqrt());
                Ok((0..n)
                    .map(|i| (a + (b - a) * (i as f64 / last)).powi(2))
                    .collect())
            }
            BetaSchedule::SquaredCosCapV2 { max_beta } => {
                if !(max_beta > 0.0 && max_beta < 1.0) {
                    return Err(CoreError::invalid(
                        "max_beta",
                        format!("must lie in (0, 1), got {max_beta}"),
                    ));
                }
                Ok(betas_for_alpha_bar(n, max_beta))
            }
        }
    }
}

fn check_beta_pair(beta_start: f64, beta_end: f64) -> Result<()> {
    if !(beta_start > 0.0 && beta_start < 1.0) {
        return Err(CoreError::invalid(
            "beta_start",
            format!("must lie in (0, 1), got {beta_start}"),
        ));
    }
    if !(beta_end >= beta_start && beta_end < 1.0) {
        return Err(CoreError::invalid(
            "beta_end",
            format!("must lie in [beta_start, 1) = [{beta_start}, 1), got {beta_end}"),
        ));
    }
    Ok(())
}

/// iDDPM's cosine betas (diffusers `betas_for_alpha_bar` with the `cosine` transform):
/// `beta_i = min(1 - abar((i + 1) / n) / abar(i / n), max_beta)` with
/// `abar(t) = cos^2((t + 0.008) / 1.008 * pi/2)`.
///
/// `i / n` is a real division: the Rust ports diffusers-rs, candle and diffusers-burn compute it
/// in integers, which makes every beta but the last 0.
pub fn betas_for_alpha_bar(n: usize, max_beta: f64) -> Vec<f64> {
    let abar = |t: f64| {
        ((t + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
            .cos()
            .powi(2)
    };
    let nf = n as f64;
    (0..n)
        .map(|i| {
            let (t1, t2) = (i as f64 / nf, (i + 1) as f64 / nf);
            (1.0 - abar(t2) / abar(t1)).min(max_beta)
        })
        .collect()
}

/// Zero-terminal-SNR rescaling (Lin et al. 2023, Algorithm 1; diffusers
/// `rescale_zero_terminal_snr`): shifts and scales `sqrt(alpha_bar)` so that its first value is
/// kept and its last becomes 0, and returns the betas of the rescaled table (the last one is 1).
///
/// Needs a strictly decreasing `alpha_bar`, i.e. betas in `(0, 1)`; see [`DdpmDiscrete::from_betas`].
pub fn rescale_zero_terminal_snr(betas: &[f64]) -> Vec<f64> {
    let mut acc = 1.0;
    let sqrt_abar: Vec<f64> = betas
        .iter()
        .map(|b| {
            acc *= 1.0 - b;
            acc.sqrt()
        })
        .collect();
    let (Some(&first), Some(&last)) = (sqrt_abar.first(), sqrt_abar.last()) else {
        return Vec::new();
    };
    let scale = first / (first - last);
    let abar: Vec<f64> = sqrt_abar
        .iter()
        .map(|s| ((s - last) * scale).powi(2))
        .collect();
    let mut out = Vec::with_capacity(abar.len());
    out.push(1.0 - abar[0]);
    for i in 1..abar.len() {
        out.push(1.0 - abar[i] / abar[i - 1]);
    }
    out
}

/// A discrete DDPM table on the continuous time axis `t in [0, N - 1]`, interpolated in
/// log-sigma as k-diffusion does (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct DdpmDiscrete {
    label: String,
    betas: Vec<f64>,
    alphas_cumprod: Vec<f64>,
    /// `ln s_i = ln sqrt((1 - alpha_bar_i) / alpha_bar_i)`, strictly increasing.
    log_sigmas: Vec<f64>,
}

impl DdpmDiscrete {
    /// The table of `n` steps generated by `kind`, optionally rescaled to zero terminal SNR.
    pub fn new(kind: BetaSchedule, n: usize, zero_snr: bool) -> Result<Self> {
        let betas = kind.betas(n)?;
        let z = u8::from(zero_snr);
        let label = match kind {
            BetaSchedule::Linear {
                beta_start,
                beta_end,
            } => format!("ddpm-linear({n},{beta_start},{beta_end},{z})"),
            BetaSchedule::ScaledLinear {
                beta_start,
                beta_end,
            } => format!("ddpm-scaled-linear({n},{beta_start},{beta_end},{z})"),
            BetaSchedule::SquaredCosCapV2 { max_beta } => {
                format!("ddpm-cosine({n},{max_beta},{z})")
            }
        };
        Self::build(label, &betas, zero_snr)
    }

    /// A table from explicit betas (diffusers' `trained_betas`): at least 2, each in `(0, 1)`,
    /// optionally rescaled to zero terminal SNR.
    pub fn from_betas(betas: &[f64], zero_snr: bool) -> Result<Self> {
        let label = format!("ddpm-table({},{})", betas.len(), u8::from(zero_snr));
        Self::build(label, betas, zero_snr)
    }

    fn build(label: String, betas: &[f64], zero_snr: bool) -> Result<Self> {
        let n = betas.len();
        if n < 2 {
            return Err(CoreError::invalid("n", format!("need n >= 2, got {n}")));
        }
        if let Some((i, b)) = betas
            .iter()
            .enumerate()
            .find(|(_, b)| !(**b > 0.0 && **b < 1.0))
        {
            return Err(CoreError::invalid(
                "betas",
                format!("beta_{i} = {b} is not in (0, 1)"),
            ));
        }
        let betas = if zero_snr {
            rescale_zero_terminal_snr(betas)
        } else {
            betas.to_vec()
        };
        let mut acc = 0.0;
        let mut log_abar: Vec<f64> = betas
            .iter()
            .map(|b| {
                acc += (-b).ln_1p();
                acc
            })
            .collect();
        if zero_snr {
            log_abar[n - 1] = ZERO_SNR_ALPHA_BAR.ln();
            if log_abar[n - 1].partial_cmp(&log_abar[n - 2]) != Some(Ordering::Less) {
                return Err(CoreError::invalid(
                    "zero_snr",
                    format!(
                        "alpha_bar_{} = {:e} is already below the 2^-24 clamp of the last entry",
                        n - 2,
                        log_abar[n - 2].exp()
                    ),
                ));
            }
        }
        let log_sigmas: Vec<f64> = log_abar
            .iter()
            .map(|&la| 0.5 * ((-la.exp_m1()).ln() - la))
            .collect();
        if let Some(i) = (1..n)
            .find(|&i| log_sigmas[i].partial_cmp(&log_sigmas[i - 1]) != Some(Ordering::Greater))
        {
            return Err(CoreError::invalid(
                "betas",
                format!("noise level not strictly increasing at entry {i} (beta too small?)"),
            ));
        }
        let mut alphas_cumprod: Vec<f64> = log_abar.iter().map(|la| la.exp()).collect();
        if zero_snr {
            alphas_cumprod[n - 1] = ZERO_SNR_ALPHA_BAR;
        }
        Ok(DdpmDiscrete {
            label,
            betas,
            alphas_cumprod,
            log_sigmas,
        })
    }

    /// The betas (after zero-SNR rescaling, if requested).
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// `alpha_bar_i` (with the last entry clamped to [`ZERO_SNR_ALPHA_BAR`] under zero-SNR).
    pub fn alphas_cumprod(&self) -> &[f64] {
        &self.alphas_cumprod
    }

    /// The number of table entries `N` (diffusers' `num_train_timesteps`).
    pub fn num_train_timesteps(&self) -> usize {
        self.log_sigmas.len()
    }

    /// The EDM noise levels `sqrt((1 - alpha_bar_i) / alpha_bar_i)` of the table entries.
    pub fn sigmas(&self) -> Vec<f64> {
        self.log_sigmas.iter().map(|l| l.exp()).collect()
    }

    /// Segment index `i` (so that `t` lies in `[i, i + 1]`) and `ln s(t)`, with `t` clamped.
    fn log_sigma(&self, t: f64) -> (usize, f64) {
        let n = self.log_sigmas.len();
        let tc = t.clamp(0.0, (n - 1) as f64);
        let i = (tc.floor() as usize).min(n - 2);
        let w = tc - i as f64;
        let ls = &self.log_sigmas;
        (i, (1.0 - w) * ls[i] + w * ls[i + 1])
    }
}

impl NoiseSchedule for DdpmDiscrete {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn t_range(&self) -> (f64, f64) {
        (0.0, (self.log_sigmas.len() - 1) as f64)
    }
    fn alpha(&self, t: f64) -> f64 {
        let (_, ls) = self.log_sigma(t);
        (-0.5 * softplus(2.0 * ls)).exp()
    }
    fn sigma(&self, t: f64) -> f64 {
        let (_, ls) = self.log_sigma(t);
        (ls - 0.5 * softplus(2.0 * ls)).exp()
    }
    fn lambda(&self, t: f64) -> f64 {
        -self.log_sigma(t).1
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        let ls = &self.log_sigmas;
        let n = ls.len();
        let x = -lambda;
        if x.is_nan() {
            return f64::NAN;
        }
        if x <= ls[0] {
            return 0.0;
        }
        if x >= ls[n - 1] {
            return (n - 1) as f64;
        }
        let i = (ls.partition_point(|&v| v <= x) - 1).min(n - 2);
        i as f64 + (x - ls[i]) / (ls[i + 1] - ls[i])
    }
    fn drift(&self, t: f64) -> f64 {
        let (i, ls) = self.log_sigma(t);
        let m = self.log_sigmas[i + 1] - self.log_sigmas[i];
        // sigma_vp^2 = s^2 / (1 + s^2) = e^{2 ls - softplus(2 ls)}.
        -m * (2.0 * ls - softplus(2.0 * ls)).exp()
    }
    fn diffusion_sq(&self, t: f64) -> f64 {
        -2.0 * self.drift(t)
    }
    fn noise_ratio(&self, t: f64) -> f64 {
        self.log_sigma(t).1.exp()
    }
    fn discrete_steps(&self) -> Option<usize> {
        Some(self.log_sigmas.len())
    }
}

/// Reads a spec value as a table length: an integer in `[2, 10^8]`.
pub(super) fn count(name: &'static str, v: f64) -> Result<usize> {
    if v.fract() == 0.0 && (2.0..=1e8).contains(&v) {
        Ok(v as usize)
    } else {
        Err(CoreError::invalid(
            name,
            format!("must be an integer in [2, 1e8], got {v}"),
        ))
    }
}

/// Reads a spec value as a switch: 0 or 1.
pub(super) fn flag(name: &'static str, v: f64) -> Result<bool> {
    if v == 0.0 || v == 1.0 {
        Ok(v == 1.0)
    } else {
        Err(CoreError::invalid(name, format!("must be 0 or 1, got {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::check_schedule;
    use proptest::prelude::*;

    fn linear() -> DdpmDiscrete {
        let kind = BetaSchedule::Linear {
            beta_start: 1e-4,
            beta_end: 0.02,
        };
        DdpmDiscrete::new(kind, 1000, false).unwrap()
    }

    fn scaled_linear(zero_snr: bool) -> DdpmDiscrete {
        let kind = BetaSchedule::ScaledLinear {
            beta_start: 0.00085,
            beta_end: 0.012,
        };
        DdpmDiscrete::new(kind, 1000, zero_snr).unwrap()
    }

    fn cosine(zero_snr: bool) -> DdpmDiscrete {
        let kind = BetaSchedule::SquaredCosCapV2 { max_beta: 0.999 };
        DdpmDiscrete::new(kind, 1000, zero_snr).unwrap()
    }

    /// Off-knot times spread over the table (the drift jumps at integer times).
    fn interior_times() -> Vec<f64> {
        (0..100).map(|k| k as f64 * 10.0 + 0.37).collect()
    }

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs()
    }

    #[test]
    fn ddpm_tables_are_consistent_schedules() {
        for s in [
            linear(),
            scaled_linear(false),
            scaled_linear(true),
            cosine(false),
            cosine(true),
        ] {
            check_schedule(&s, &interior_times());
            check_schedule(&s, &[0.5, 1.25, 997.5, 998.75]);
            for t in [0.0, 3.3, 500.0, 999.0] {
                assert!((s.alpha(t).powi(2) + s.sigma(t).powi(2) - 1.0).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn ddpm_cosine_betas_match_diffusers_not_the_integer_division_bug() {
        let betas = betas_for_alpha_bar(1000, 0.999);
        let abar = |t: f64| {
            ((t + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        for i in [0usize, 1, 2, 10, 500, 998] {
            let want = 1.0 - abar((i + 1) as f64 / 1000.0) / abar(i as f64 / 1000.0);
            assert!(
                rel(betas[i], want) < 1e-12,
                "beta_{i}: {} vs {want}",
                betas[i]
            );
        }
        // diffusers (f64 Python): beta_0 = 4.1284e-05, beta_1 = 4.6142e-05, beta_998 = 0.749999.
        assert!(
            rel(betas[0], 4.128_422_482_196_914e-5) < 1e-9,
            "{}",
            betas[0]
        );
        assert!(rel(betas[1], 4.614_175_273_665_033e-5) < 1e-9);
        assert!(rel(betas[998], 0.749_999_392_901_116_6) < 1e-9);
        assert_eq!(betas[999], 0.999);
        assert!(betas.iter().all(|&b| b > 0.0));
        // The table built from them: k-diffusion sigmas 0.006425 .. 20291.
        let s = cosine(false);
        let sig = s.sigmas();
        assert!(rel(sig[0], 0.006_425_412_771_142_061) < 1e-9);
        assert!(rel(sig[999], 20_291.169_610_019_886) < 1e-8);
    }

    #[test]
    fn ddpm_linear_and_scaled_linear_match_known_sigmas() {
        let s = linear();
        assert!(rel(s.betas()[0], 1e-4) < 1e-15);
        assert!(rel(s.betas()[999], 0.02) < 1e-15);
        assert!(rel(s.alphas_cumprod()[999], 4.035_829_765_375_675_4e-5) < 1e-9);
        assert!(rel(s.sigmas()[999], 157.407_280_810_407_57) < 1e-9);
        assert!(rel(s.sigmas()[0], 0.010_000_500_037_502_575) < 1e-9);
        // Stable Diffusion: sigma_min = 0.0292, sigma_max = 14.6146 (k-diffusion / diffusers).
        let sd = scaled_linear(false);
        assert!(rel(sd.sigmas()[0], 0.029_167_158_151_720_367) < 1e-9);
        assert!(rel(sd.sigmas()[999], 14.614_641_229_333_646) < 1e-9);
        assert_eq!(sd.t_range(), (0.0, 999.0));
        assert_eq!(sd.num_train_timesteps(), 1000);
    }

    #[test]
    fn ddpm_interpolates_log_sigma_and_clamps_like_k_diffusion() {
        let s = scaled_linear(false);
        let sig = s.sigmas();
        for i in [0usize, 1, 17, 500, 999] {
            assert!(rel(s.noise_ratio(i as f64), sig[i]) < 1e-14);
            assert!((s.t_of_noise_ratio(sig[i]) - i as f64).abs() < 1e-9);
        }
        // Halfway between entries the noise level is the geometric mean.
        assert!(rel(s.noise_ratio(41.5), (sig[41] * sig[42]).sqrt()) < 1e-14);
        let alpha_bar = s.alphas_cumprod()[41];
        assert!(rel(s.alpha(41.0).powi(2), alpha_bar) < 1e-13);
        // Clamped outside the table.
        assert_eq!(s.alpha(-3.0), s.alpha(0.0));
        assert_eq!(s.sigma(1200.0), s.sigma(999.0));
        assert_eq!(s.t_of_lambda(f64::INFINITY), 0.0);
        assert_eq!(s.t_of_lambda(f64::NEG_INFINITY), 999.0);
        assert_eq!(s.t_of_noise_ratio(0.0), 0.0);
        assert!(s.t_of_lambda(f64::NAN).is_nan());
    }

    #[test]
    fn ddpm_zero_terminal_snr_rescales_and_clamps() {
        let kind = BetaSchedule::ScaledLinear {
            beta_start: 0.00085,
            beta_end: 0.012,
        };
        let orig = kind.betas(1000).unwrap();
        let resc = rescale_zero_terminal_snr(&orig);
        assert_eq!(resc[999], 1.0);
        assert!((resc[0] - orig[0]).abs() < 1e-15);
        // sqrt(alpha_bar) is an affine function of the original one (Lin et al. Alg. 1).
        let cum = |b: &[f64]| {
            b.iter()
                .scan(1.0, |a, x| {
                    *a *= 1.0 - x;
                    Some(a.sqrt())
                })
                .collect::<Vec<f64>>()
        };
        let (so, sr) = (cum(&orig), cum(&resc));
        let want = (so[500] - so[999]) * so[0] / (so[0] - so[999]);
        assert!(rel(sr[500], want) < 1e-12);

        let s = scaled_linear(true);
        assert_eq!(s.betas()[999], 1.0);
        assert_eq!(s.alphas_cumprod()[999], ZERO_SNR_ALPHA_BAR);
        assert!(rel(s.sigmas()[999], (16_777_215.0f64).sqrt()) < 1e-12);
        assert!(s.lambda(999.0).is_finite());
        assert!(rel(s.sigmas()[0], scaled_linear(false).sigmas()[0]) < 1e-12);
        assert!(s.sigmas()[998] < s.sigmas()[999]);
    }

    #[test]
    fn ddpm_rejects_bad_parameters() {
        let lin = |a, b| BetaSchedule::Linear {
            beta_start: a,
            beta_end: b,
        };
        assert!(DdpmDiscrete::new(lin(0.0, 0.02), 1000, false).is_err());
        assert!(DdpmDiscrete::new(lin(0.02, 1e-4), 1000, false).is_err());
        assert!(DdpmDiscrete::new(lin(1e-4, 1.0), 1000, false).is_err());
        assert!(DdpmDiscrete::new(lin(f64::NAN, 0.02), 1000, false).is_err());
        assert!(DdpmDiscrete::new(lin(1e-4, 0.02), 1, false).is_err());
        let sl = BetaSchedule::ScaledLinear {
            beta_start: -1.0,
            beta_end: 0.012,
        };
        assert!(DdpmDiscrete::new(sl, 1000, false).is_err());
        for max_beta in [0.0, 1.0, f64::NAN] {
            let k = BetaSchedule::SquaredCosCapV2 { max_beta };
            assert!(DdpmDiscrete::new(k, 1000, false).is_err());
        }
        assert!(matches!(
            DdpmDiscrete::from_betas(&[0.1, 0.0, 0.2], false),
            Err(CoreError::InvalidParameter { name: "betas", .. })
        ));
        assert!(DdpmDiscrete::from_betas(&[0.1, 1.0], false).is_err());
        assert!(DdpmDiscrete::from_betas(&[0.1], false).is_err());
        // alpha_bar_{N-2} = 2^-39 is already below the zero-SNR clamp 2^-24.
        assert!(matches!(
            DdpmDiscrete::from_betas(&[0.5; 40], true),
            Err(CoreError::InvalidParameter {
                name: "zero_snr",
                ..
            })
        ));
        assert!(DdpmDiscrete::from_betas(&[0.5; 40], false).is_ok());
    }

    #[test]
    fn ddpm_builds_from_spec() {
        use crate::schedule::build;
        let s = build("ddpm-linear").unwrap();
        assert_eq!(s.name(), "ddpm-linear(1000,0.0001,0.02,0)");
        assert_eq!(s.t_range(), (0.0, 999.0));
        let s = build("ddpm-scaled-linear:zero_snr=1").unwrap();
        assert_eq!(s.name(), "ddpm-scaled-linear(1000,0.00085,0.012,1)");
        assert!(rel(s.noise_ratio(999.0), 16_777_215.0f64.sqrt()) < 1e-12);
        let s = build("ddpm-cosine:n=500,max_beta=0.99").unwrap();
        assert_eq!(s.name(), "ddpm-cosine(500,0.99,0)");
        assert_eq!(s.t_range(), (0.0, 499.0));
        assert!(build("ddpm-linear:n=2.5").is_err());
        assert!(build("ddpm-linear:n=1").is_err());
        assert!(build("ddpm-linear:zero_snr=2").is_err());
        assert!(build("ddpm-cosine:beta_start=0.1").is_err());
    }

    proptest! {
        #[test]
        fn ddpm_lambda_decreasing_and_invertible(a in 0.0f64..999.0, b in 0.0f64..999.0) {
            let s = scaled_linear(true);
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            prop_assume!(hi - lo > 1e-6);
            prop_assert!(s.lambda(lo) > s.lambda(hi));
            prop_assert!((s.t_of_lambda(s.lambda(a)) - a).abs() < 1e-9 * (1.0 + a));
        }
    }
}
