//! Score calibration: subtract the time-wise mean of the predicted noise (equivalently, of the
//! predicted score).
//!
//! Paper: Pang, Lu, Du, Lin, Yan & Deng (2023), "On Calibrating Diffusion Probabilistic Models",
//! NeurIPS 2023, arXiv:2302.10688 (code: thudzj/Calibrated-DPMs): the data score is a martingale
//! with `E_{q_t}[grad log q_t(x_t)] = 0`, so `E_{q_t}[eps_hat(x_t, t)]` should vanish;
//! the calibrated model `eps_hat(x, t) - eta_t` with `eta_t = E_{q_t}[eps_hat(x_t, t)]` lowers the
//! denoising score matching loss `E ||eps_hat - eps||^2` by exactly `||eta_t||^2` (and raises the
//! ELBO).
//!
//! Estimation: `eta_t` is a Monte Carlo mean over forward samples `x_t = alpha x0 + sigma eps` of a
//! data batch, with antithetic noise (`eps` and `-eps`, so the noise averages to exactly 0). It is
//! stored per feature (one number per data dimension) at the given times and interpolated
//! linearly in `t` between them (clamped outside). The adapter reads states as rows of that
//! dimension on the host, like the analytic denoisers.

use crate::error::{CoreError, Result};
use crate::noise::NoiseSource;
use crate::prediction::{denoise, Denoiser, Prediction};
use crate::schedule::NoiseSchedule;
use crate::state::State;

/// A denoiser with its time-wise mean noise prediction removed (see the module docs).
pub struct Calibrated<'a, S> {
    inner: &'a dyn Denoiser<S>,
    schedule: &'a dyn NoiseSchedule,
    dim: usize,
    /// Increasing knot times.
    times: Vec<f64>,
    /// `eta` at each knot, `dim` numbers each.
    means: Vec<Vec<f64>>,
}

impl<S> std::fmt::Debug for Calibrated<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calibrated")
            .field("schedule", &self.schedule.name())
            .field("dim", &self.dim)
            .field("times", &self.times)
            .field("means", &self.means)
            .finish()
    }
}

fn rows_of(numel: usize, dim: usize) -> Result<usize> {
    if dim == 0 || numel % dim != 0 || numel == 0 {
        return Err(CoreError::ShapeMismatch {
            context: "calibration rows (state size must be a positive multiple of dim)",
            expected: vec![numel / dim.max(1), dim],
            got: vec![numel],
        });
    }
    Ok(numel / dim)
}

fn row_mean(values: &[f64], dim: usize) -> Vec<f64> {
    let n = (values.len() / dim) as f64;
    let mut m = vec![0.0; dim];
    for row in values.chunks(dim) {
        for (a, v) in m.iter_mut().zip(row) {
            *a += v;
        }
    }
    m.iter_mut().for_each(|a| *a /= n);
    m
}

impl<'a, S: State> Calibrated<'a, S> {
    /// Estimates `eta_t` at each of `times` from the data batch `data` (rows of `dim` values) with
    /// antithetic forward noise from `noise` (two model calls per time), and wraps `inner`.
    /// Errors on an empty or non-monotone time list, a batch that is not rows of `dim`, a time
    /// with `sigma(t) = 0` and any model error.
    pub fn estimate(
        inner: &'a dyn Denoiser<S>,
        schedule: &'a dyn NoiseSchedule,
        data: &S,
        dim: usize,
        times: &[f64],
        noise: &mut dyn NoiseSource<S>,
    ) -> Result<Self> {
        rows_of(data.numel(), dim)?;
        let mut means = Vec::with_capacity(times.len());
        for &t in times {
            let (a, s) = (schedule.alpha(t), schedule.sigma(t));
            if s.is_nan() || s <= 0.0 {
                return Err(CoreError::invalid(
                    "times",
                    format!("calibration needs sigma(t) > 0, got t = {t}"),
                ));
            }
            let eps = noise.standard_normal(data);
            let mut acc = vec![0.0; dim];
            for sign in [1.0, -1.0] {
                let x = data.lincomb(a, &eps, sign * s);
                let (_, eps_hat) = denoise(inner, schedule, &x, t)?;
                for (m, v) in acc.iter_mut().zip(row_mean(&eps_hat.to_host(), dim)) {
                    *m += 0.5 * v;
                }
            }
            means.push(acc);
        }
        Self::from_means(inner, schedule, dim, times.to_vec(), means)
    }

    /// Wraps `inner` with stored means: `means[k]` (length `dim`) is `eta` at `times[k]`.
    /// Errors on mismatched lengths, non-finite values or times that are not strictly monotone.
    pub fn from_means(
        inner: &'a dyn Denoiser<S>,
        schedule: &'a dyn NoiseSchedule,
        dim: usize,
        times: Vec<f64>,
        means: Vec<Vec<f64>>,
    ) -> Result<Self> {
        if times.is_empty() || times.len() != means.len() || dim == 0 {
            return Err(CoreError::invalid(
                "times/means",
                format!(
                    "need the same positive number of times and means, got {} and {}",
                    times.len(),
                    means.len()
                ),
            ));
        }
        if let Some(m) = means.iter().find(|m| m.len() != dim) {
            return Err(CoreError::ShapeMismatch {
                context: "calibration mean",
                expected: vec![dim],
                got: vec![m.len()],
            });
        }
        if times
            .iter()
            .chain(means.iter().flatten())
            .any(|v| !v.is_finite())
        {
            return Err(CoreError::NonFinite {
                context: "calibration times or means".into(),
            });
        }
        let (mut times, mut means) = (times, means);
        if times.len() > 1 && times[1] < times[0] {
            times.reverse();
            means.reverse();
        }
        if times.windows(2).any(|w| w[1] <= w[0]) {
            return Err(CoreError::invalid(
                "times",
                "calibration times must be strictly monotone",
            ));
        }
        Ok(Calibrated {
            inner,
            schedule,
            dim,
            times,
            means,
        })
    }

    /// The knot times (increasing).
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// `eta_t`: the stored means interpolated linearly in `t`, clamped to the first and last knot.
    pub fn mean_at(&self, t: f64) -> Vec<f64> {
        let ts = &self.times;
        let n = ts.len();
        if n == 1 || t <= ts[0] {
            return self.means[0].clone();
        }
        if t >= ts[n - 1] {
            return self.means[n - 1].clone();
        }
        let k = ts.partition_point(|&v| v <= t) - 1;
        let w = (t - ts[k]) / (ts[k + 1] - ts[k]);
        self.means[k]
            .iter()
            .zip(&self.means[k + 1])
            .map(|(a, b)| (1.0 - w) * a + w * b)
            .collect()
    }
}

impl<S: State> Denoiser<S> for Calibrated<'_, S> {
    /// `eps_hat(x, t) - eta_t` for every row (a host round trip).
    fn predict(&self, x: &S, t: f64) -> Result<Prediction<S>> {
        rows_of(x.numel(), self.dim)?;
        let (_, eps) = denoise(self.inner, self.schedule, x, t)?;
        let eta = self.mean_at(t);
        let mut v = eps.to_host();
        for row in v.chunks_mut(self.dim) {
            for (e, m) in row.iter_mut().zip(&eta) {
                *e -= m;
            }
        }
        Ok(Prediction::Epsilon(x.from_host_like(&v)))
    }
}

/// The denoising score matching loss in noise form at time `t`: the mean over the rows of `data`
/// (rows of `dim` values) of `||eps_hat(x_t, t) - eps||^2`, with antithetic forward noise from
/// `noise` (the same draws as [`Calibrated::estimate`] for the same seed).
pub fn dsm_loss<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    data: &S,
    dim: usize,
    t: f64,
    noise: &mut dyn NoiseSource<S>,
) -> Result<f64> {
    let rows = rows_of(data.numel(), dim)?;
    let (a, s) = (schedule.alpha(t), schedule.sigma(t));
    let eps = noise.standard_normal(data);
    let mut total = 0.0;
    for sign in [1.0, -1.0] {
        let x = data.lincomb(a, &eps, sign * s);
        let (_, eps_hat) = denoise(model, schedule, &x, t)?;
        let r = eps_hat.lincomb(1.0, &eps, -sign).rms();
        total += 0.5 * r * r * data.numel() as f64 / rows as f64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::HostNoise;
    use crate::schedule::VpLinear;
    use crate::target::GaussianMixture;
    use ndarray::Array2;

    const BIAS: [f64; 2] = [0.3, -0.2];

    fn setup() -> (GaussianMixture, VpLinear) {
        (
            GaussianMixture::ring(4, 2.0, 0.3).unwrap(),
            VpLinear::default(),
        )
    }

    /// The exact mixture denoiser with a constant bias added to its noise prediction.
    fn biased<'a>(
        exact: &'a dyn Denoiser<Array2<f64>>,
        s: &'a VpLinear,
    ) -> impl Fn(&Array2<f64>, f64) -> Result<Prediction<Array2<f64>>> + 'a {
        move |x: &Array2<f64>, t: f64| {
            let (_, eps) = denoise(exact, s, x, t)?;
            let mut e = eps;
            for mut row in e.rows_mut() {
                row[0] += BIAS[0];
                row[1] += BIAS[1];
            }
            Ok(Prediction::Epsilon(e))
        }
    }

    #[test]
    fn calibration_removes_a_constant_bias_and_the_dsm_loss_falls_by_its_square() {
        let (gmm, s) = setup();
        let exact = gmm.denoiser(&s);
        let model = biased(&exact, &s);
        let data = gmm.sample(2000, &mut HostNoise::new(1));
        let knots: Vec<f64> = (1..=10).map(|k| k as f64 / 10.0).collect();
        let cal =
            Calibrated::estimate(&model, &s, &data, 2, &knots, &mut HostNoise::new(2)).unwrap();
        // eta_t = E[E[eps | x_t]] + b = b. Its per-coordinate standard error is at most
        // 1 / sqrt(2 * 2000) = 0.016; allow 4 of them.
        for &t in &knots {
            let eta = cal.mean_at(t);
            for j in 0..2 {
                assert!((eta[j] - BIAS[j]).abs() < 0.064, "t={t}: eta {eta:?}");
            }
        }
        // |b|^2 = 0.13. Fresh data and noise, at knots and between them (interpolated eta).
        let b2 = BIAS[0] * BIAS[0] + BIAS[1] * BIAS[1];
        let fresh = gmm.sample(4000, &mut HostNoise::new(3));
        for (k, &t) in [0.1, 0.45, 0.7, 0.95].iter().enumerate() {
            let before =
                dsm_loss(&model, &s, &fresh, 2, t, &mut HostNoise::new(10 + k as u64)).unwrap();
            let after =
                dsm_loss(&cal, &s, &fresh, 2, t, &mut HostNoise::new(10 + k as u64)).unwrap();
            let unbiased =
                dsm_loss(&exact, &s, &fresh, 2, t, &mut HostNoise::new(10 + k as u64)).unwrap();
            // before - after = 2 eta.(mean residual) - |eta|^2 = |b|^2 up to MC error
            // (|2 eta.(mean residual - b)| + |eta - b|^2 < 0.03 at 4 standard errors).
            assert!(
                ((before - after) - b2).abs() < 0.03,
                "t={t}: fell by {} instead of {b2}",
                before - after
            );
            // And the calibrated loss is back at the unbiased model's loss.
            assert!(
                (after - unbiased).abs() < 0.03,
                "t={t}: {after} vs {unbiased}"
            );
        }
    }

    #[test]
    fn on_the_estimation_batch_the_fall_is_exactly_the_squared_mean() {
        // With antithetic noise the noise mean is exactly 0, so on the very samples eta was
        // estimated from, the DSM loss falls by exactly |eta|^2.
        let (gmm, s) = setup();
        let exact = gmm.denoiser(&s);
        let model = biased(&exact, &s);
        let data = gmm.sample(500, &mut HostNoise::new(4));
        let t = 0.37;
        let cal = Calibrated::estimate(&model, &s, &data, 2, &[t], &mut HostNoise::new(5)).unwrap();
        let eta = cal.mean_at(t);
        let eta2 = eta[0] * eta[0] + eta[1] * eta[1];
        let before = dsm_loss(&model, &s, &data, 2, t, &mut HostNoise::new(5)).unwrap();
        let after = dsm_loss(&cal, &s, &data, 2, t, &mut HostNoise::new(5)).unwrap();
        assert!(
            ((before - after) - eta2).abs() < 1e-10,
            "{} vs {eta2}",
            before - after
        );
        // A calibration with the sign flipped would raise the loss by 3 |eta|^2 instead.
        let flipped: Vec<Vec<f64>> = vec![eta.iter().map(|v| -v).collect()];
        let wrong = Calibrated::from_means(&model, &s, 2, vec![t], flipped).unwrap();
        let worse = dsm_loss(&wrong, &s, &data, 2, t, &mut HostNoise::new(5)).unwrap();
        assert!(((worse - before) - 3.0 * eta2).abs() < 1e-10);
    }

    #[test]
    fn calibrating_the_exact_model_changes_nothing_and_bad_inputs_are_errors() {
        let (gmm, s) = setup();
        let exact = gmm.denoiser(&s);
        let data = gmm.sample(2000, &mut HostNoise::new(6));
        let cal = Calibrated::estimate(
            &exact,
            &s,
            &data,
            2,
            &[0.8, 0.5, 0.2],
            &mut HostNoise::new(7),
        )
        .unwrap();
        assert_eq!(cal.times(), &[0.2, 0.5, 0.8]);
        for t in [0.2, 0.35, 0.8, 0.9] {
            assert!(cal.mean_at(t).iter().all(|v| v.abs() < 0.064), "t={t}");
        }
        let dummy: &dyn Denoiser<Array2<f64>> = &exact;
        assert!(Calibrated::estimate(dummy, &s, &data, 3, &[0.5], &mut HostNoise::new(0)).is_err());
        assert!(Calibrated::estimate(dummy, &s, &data, 2, &[0.0], &mut HostNoise::new(0)).is_err());
        assert!(
            Calibrated::from_means(dummy, &s, 2, vec![0.1, 0.1], vec![vec![0.0; 2]; 2]).is_err()
        );
        assert!(Calibrated::from_means(dummy, &s, 2, vec![0.1], vec![vec![0.0; 3]]).is_err());
        assert!(Calibrated::from_means(dummy, &s, 2, vec![], vec![]).is_err());
        // Interpolation between knots.
        let c = Calibrated::from_means(dummy, &s, 1, vec![0.2, 0.6], vec![vec![1.0], vec![3.0]])
            .unwrap();
        assert!((c.mean_at(0.3)[0] - 1.5).abs() < 1e-12);
        assert_eq!(c.mean_at(0.0)[0], 1.0);
        assert_eq!(c.mean_at(1.0)[0], 3.0);
    }
}
