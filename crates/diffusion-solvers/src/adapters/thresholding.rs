//! Dynamic thresholding of the data prediction.
//!
//! Paper: Saharia, Chan, Saxena, Li, Whang, Denton, Ghasemipour, Ayan, Mahdavi, Lopes, Salimans,
//! Ho, Fleet & Norouzi (2022), "Photorealistic Text-to-Image Diffusion Models with Deep Language
//! Understanding" (Imagen), arXiv:2205.11487, Sec. 2.3: at every step set `s` to a percentile of
//! `|x0_hat|`, and if `s > 1` clip `x0_hat` to `[-s, s]` and divide by `s`. As diffusers'
//! `_threshold_sample` (`dynamic_thresholding_ratio`, `sample_max_value`): per sample,
//! `s = clamp(quantile_p(|x0_hat|), 1, max_value)` and `x0_hat <- clamp(x0_hat, -s, s) / s`, the
//! quantile with linear interpolation between order statistics (`torch.quantile`). With
//! `max_value = 1` this is static clipping to `[-1, 1]`. (DPM-Solver's and UniPC's
//! `thresholding_max_val` is instead a lower bound on `s`, i.e. Imagen's 1.)
//!
//! The adapter resolves the wrapped model's output with the schedule, thresholds `x0_hat` on the
//! host, and answers [`Prediction::Sample`]; every solver then derives a consistent `eps_hat`.
//! When nothing is clipped (every `|x0_hat| <= 1`) the data prediction passes through unchanged
//! (bit for bit for models that predict `x0`; up to the rounding of the eps <-> x0 conversion
//! otherwise).

use diffusion_core::{Coeffs, CoreError, Denoiser, NoiseSchedule, Prediction, Result, State};

/// A [`Denoiser`] whose data prediction is dynamically thresholded per sample.
pub struct DynamicThresholding<'a, S> {
    inner: &'a dyn Denoiser<S>,
    schedule: &'a dyn NoiseSchedule,
    percentile: f64,
    max_value: f64,
    sample_size: usize,
}

impl<'a, S> DynamicThresholding<'a, S> {
    /// Wraps `inner` (trained for `schedule`). `percentile` in `(0, 1]` (Imagen and diffusers use
    /// 0.995), `max_value >= 1` bounds the threshold, and `sample_size` is the number of entries
    /// of one sample (states hold whole samples in row-major order, e.g. `C*H*W`, or the columns
    /// of an `(n, d)` array).
    pub fn new(
        inner: &'a dyn Denoiser<S>,
        schedule: &'a dyn NoiseSchedule,
        percentile: f64,
        max_value: f64,
        sample_size: usize,
    ) -> Result<Self> {
        if !(percentile > 0.0 && percentile <= 1.0) {
            return Err(CoreError::invalid(
                "percentile",
                format!("must be in (0, 1], got {percentile}"),
            ));
        }
        if max_value.is_nan() || max_value < 1.0 {
            return Err(CoreError::invalid(
                "max_value",
                format!("must be >= 1 (the threshold never goes below 1), got {max_value}"),
            ));
        }
        if sample_size == 0 {
            return Err(CoreError::invalid("sample_size", "must be at least 1"));
        }
        Ok(DynamicThresholding {
            inner,
            schedule,
            percentile,
            max_value,
            sample_size,
        })
    }
}

/// Thresholds one sample in place: `s = clamp(quantile_p(|v|), 1, max_value)`,
/// `v <- clamp(v, -s, s) / s`. Returns `s`.
pub fn dynamic_threshold(values: &mut [f64], percentile: f64, max_value: f64) -> f64 {
    if values.is_empty() {
        return 1.0;
    }
    let mut abs: Vec<f64> = values.iter().map(|v| v.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let pos = percentile * (abs.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    let hi = (lo + 1).min(abs.len() - 1);
    let q = abs[lo] + frac * (abs[hi] - abs[lo]);
    let s = q.clamp(1.0, max_value);
    for v in values.iter_mut() {
        *v = v.clamp(-s, s) / s;
    }
    s
}

impl<S: State> Denoiser<S> for DynamicThresholding<'_, S> {
    fn predict(&self, x: &S, t: f64) -> Result<Prediction<S>> {
        let c = Coeffs::at(self.schedule, t);
        let (x0, _) = self.inner.predict(x, t)?.resolve(x, &c)?;
        let mut v = x0.to_host();
        if v.len() % self.sample_size != 0 {
            return Err(CoreError::ShapeMismatch {
                context: "dynamic thresholding: state size is not a multiple of sample_size",
                expected: vec![self.sample_size],
                got: vec![v.len()],
            });
        }
        if v.iter().all(|a| a.abs() <= 1.0) {
            return Ok(Prediction::Sample(x0));
        }
        for sample in v.chunks_mut(self.sample_size) {
            dynamic_threshold(sample, self.percentile, self.max_value);
        }
        Ok(Prediction::Sample(x0.from_host_like(&v)))
    }
}
