//! The Align-Your-Steps noise-level tables and their log-linear interpolation to other step counts.
//!
//! Paper: Sabour, Fidler & Kreis (2024), "Align Your Steps: Optimizing Sampling Schedules in
//! Diffusion Models", arXiv:2404.14507, Sec. 4 and the project page's "how to" (10-step schedules
//! for Stable Diffusion 1.5, SDXL and Stable Video Diffusion; other step counts by log-linear
//! interpolation). Reference: diffusers `scheduling_utils.py:AysSchedules` (the same lists with the
//! last level replaced by 0).
//!
//! Each table holds 11 EDM noise levels `sigma / alpha`, from `sigma_max` down to the model's
//! smallest level (`0.0292`, the first entry of SD's `scaled_linear` table, or `0.002` for SVD).
//! For `steps` steps the levels are interpolated piecewise linearly in `ln sigma` against
//! `linspace(0, 1, 11)` at `linspace(0, 1, steps + 1)`; with a final zero the last level is then
//! replaced by 0, which reproduces diffusers' `AysSchedules` sigma lists for 10 steps.

use crate::error::{CoreError, Result};

/// Stable Diffusion 1.5 (paper / diffusers `StableDiffusionSigmas`, last level `0.029`).
pub const AYS_SD15: [f64; 11] = [
    14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029,
];
/// Stable Diffusion XL (paper / diffusers `StableDiffusionXLSigmas`, last level `0.029`).
pub const AYS_SDXL: [f64; 11] = [
    14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029,
];
/// Stable Video Diffusion (paper / diffusers `StableVideoDiffusionSigmas`, last level `0.002`).
pub const AYS_SVD: [f64; 11] = [
    700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002,
];

/// The model an Align-Your-Steps table was optimized for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AysModel {
    /// Stable Diffusion 1.5 (`ays:model=0`).
    StableDiffusion15,
    /// Stable Diffusion XL (`ays:model=1`).
    StableDiffusionXl,
    /// Stable Video Diffusion (`ays:model=2`).
    StableVideoDiffusion,
}

impl AysModel {
    /// The model with spec index `0`, `1` or `2`.
    pub fn from_index(index: f64) -> Result<Self> {
        if index == 0.0 {
            Ok(AysModel::StableDiffusion15)
        } else if index == 1.0 {
            Ok(AysModel::StableDiffusionXl)
        } else if index == 2.0 {
            Ok(AysModel::StableVideoDiffusion)
        } else {
            Err(CoreError::invalid(
                "model",
                format!("must be 0 (SD 1.5), 1 (SDXL) or 2 (SVD), got {index}"),
            ))
        }
    }

    /// The 11 optimized noise levels (10 steps), largest first.
    pub fn noise_levels(self) -> &'static [f64; 11] {
        match self {
            AysModel::StableDiffusion15 => &AYS_SD15,
            AysModel::StableDiffusionXl => &AYS_SDXL,
            AysModel::StableVideoDiffusion => &AYS_SVD,
        }
    }
}

/// Resamples a decreasing list of positive levels to `n` levels, piecewise linearly in
/// `ln(level)` against equally spaced positions in `[0, 1]` (the paper's `loglinear_interp`).
/// The first and last levels are kept. Errors when `n < 2`, when fewer than two levels are given
/// or when a level is not positive and finite.
pub fn loglinear_interp(levels: &[f64], n: usize) -> Result<Vec<f64>> {
    if n < 2 || levels.len() < 2 {
        return Err(CoreError::invalid(
            "levels",
            format!(
                "need at least 2 levels in and out, got {} and {n}",
                levels.len()
            ),
        ));
    }
    if levels.iter().any(|l| !(*l > 0.0 && l.is_finite())) {
        return Err(CoreError::invalid(
            "levels",
            "must be positive and finite to interpolate in log space",
        ));
    }
    let m = levels.len() - 1;
    let logs: Vec<f64> = levels.iter().map(|l| l.ln()).collect();
    Ok((0..n)
        .map(|i| {
            let x = i as f64 / (n - 1) as f64 * m as f64;
            let k = (x.floor() as usize).min(m - 1);
            let w = x - k as f64;
            ((1.0 - w) * logs[k] + w * logs[k + 1]).exp()
        })
        .collect())
}

/// The AYS noise levels of `model` for `steps` steps: `steps + 1` levels, the last one replaced by
/// 0 when `zero` is set (diffusers' and ComfyUI's convention).
pub fn ays_noise_levels(model: AysModel, steps: usize, zero: bool) -> Result<Vec<f64>> {
    if steps == 0 {
        return Err(CoreError::invalid("steps", "must be at least 1"));
    }
    let mut levels = loglinear_interp(model.noise_levels(), steps + 1)?;
    if zero {
        levels[steps] = 0.0;
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_steps_reproduce_the_diffusers_tables() {
        let sd = ays_noise_levels(AysModel::StableDiffusion15, 10, true).unwrap();
        let diffusers_sd = [
            14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.0,
        ];
        for (a, b) in sd.iter().zip(diffusers_sd) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        let svd = ays_noise_levels(AysModel::StableVideoDiffusion, 10, false).unwrap();
        assert_eq!(svd.len(), 11);
        assert!((svd[10] - 0.002).abs() < 1e-15 && (svd[0] - 700.0).abs() < 1e-10);
    }

    #[test]
    fn log_linear_interpolation_halves_and_doubles() {
        let lv = AYS_SDXL;
        // 21 levels: the even ones are the table, the odd ones geometric means of neighbours.
        let f = loglinear_interp(&lv, 21).unwrap();
        for k in 0..10 {
            assert!((f[2 * k] - lv[k]).abs() < 1e-12 * lv[k]);
            let g = (lv[k] * lv[k + 1]).sqrt();
            assert!((f[2 * k + 1] - g).abs() < 1e-12 * g);
        }
        // 6 levels: every second table entry.
        let c = loglinear_interp(&lv, 6).unwrap();
        for k in 0..6 {
            assert!((c[k] - lv[2 * k]).abs() < 1e-12 * lv[2 * k]);
        }
        let five = ays_noise_levels(AysModel::StableDiffusion15, 5, true).unwrap();
        assert_eq!(five.len(), 6);
        assert!(five.windows(2).all(|w| w[1] < w[0]));
        assert!(loglinear_interp(&[1.0, 0.0], 3).is_err());
        assert!(loglinear_interp(&lv, 1).is_err());
        assert!(AysModel::from_index(3.0).is_err());
        assert!(ays_noise_levels(AysModel::StableDiffusion15, 0, true).is_err());
    }
}
