//! The optimal denoiser of a finite data set: the exact posterior mean `E[x_0 | x_t]` when the data
//! distribution is the empirical measure `(1/N) sum_i delta_{y_i}`.
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Appendix B.3, Eq. (57) (the ideal denoiser of a finite
//! training set); Chen, Zhou, Mei, Shen, Chen & Wang (2023), "A Geometric Perspective on
//! Diffusion Models", arXiv:2305.19947 (the same denoiser read as one mean-shift step).
//!
//! Under `x_t = alpha y + sigma eps` the diffused density is the mixture
//! `p_t(x) = (1/N) sum_i N(x; alpha y_i, sigma^2 I)`, and
//! `D(x, t) = sum_i softmax_i(-|x - alpha y_i|^2 / (2 sigma^2)) y_i`,
//! computed with the log-sum-exp shift by the nearest point so that no weight under- or
//! overflows. At `sigma = 0` (or when `sigma^2` underflows) it is the limit: the data point
//! nearest to `x / alpha` (ties go to the lowest index). Sampling the PF-ODE with this denoiser
//! reproduces training points, the memorization baseline of the geometric-perspective paper.
//! Cost `O(N d)` per query row.

use super::check_cols;
use crate::error::{CoreError, Result};

use crate::schedule::NoiseSchedule;

use ndarray::{Array2, ArrayView1, ArrayView2};

/// A finite data set `y_1..y_N` (the rows of an `N x d` array) seen as the empirical measure.
#[derive(Debug, Clone)]
pub struct EmpiricalData {
    points: Array2<f64>,
}

/// Squared distances `|x - alpha y_i|^2` to every data point, with the index and value of the
/// smallest.
fn distances(points: &Array2<f64>, x: ArrayView1<'_, f64>, alpha: f64) -> (Vec<f64>, usize, f64) {
    let mut best = (0usize, f64::INFINITY);
    let d: Vec<f64> = points
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, y)| {
            let v: f64 = x
                .iter()
                .zip(y.iter())
                .map(|(a, b)| (a - alpha * b) * (a - alpha * b))
                .sum();
            if v < best.1 {
                best = (i, v);
            }
            v
        })
        .collect();
    (d, best.0, best.1)
}

impl EmpiricalData {
    /// Wraps `points` (one data point per row). Errors on an empty set, zero columns or
    /// non-finite values.
    pub fn new(points: Array2<f64>) -> Result<Self> {
        if points.nrows() == 0 || points.ncols() == 0 {
            return Err(CoreError::invalid(
                "points",
                format!(
                    "need at least one point of dimension >= 1, got {:?}",
                    points.shape()
                ),
            ));
        }
        if points.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite {
                context: "empirical data points".into(),
            });
        }
        Ok(EmpiricalData { points })
    }

    /// The dimension `d`.
    pub fn dim(&self) -> usize {
        self.points.ncols()
    }

    /// The number of data points `N`.
    pub fn n_points(&self) -> usize {
        self.points.nrows()
    }

    /// The data points, one per row.
    pub fn points(&self) -> &Array2<f64> {
        &self.points
    }

    /// For each row of `x`, the index of the nearest data point (lowest index on ties).
    pub fn nearest(&self, x: &ArrayView2<'_, f64>) -> Result<Vec<usize>> {
        check_cols(x, self.dim(), "empirical-data query")?;
        Ok(x.rows()
            .into_iter()
            .map(|r| distances(&self.points, r, 1.0).1)
            .collect())
    }

    /// `log p_t(x)` of each row under `(1/N) sum_i N(alpha y_i, sigma^2 I)` (needs `sigma(t) > 0`).
    pub fn log_density_t(
        &self,
        schedule: &dyn NoiseSchedule,
        t: f64,
        x: &ArrayView2<'_, f64>,
    ) -> Result<Vec<f64>> {
        check_cols(x, self.dim(), "empirical-data query")?;
        let (alpha, sigma) = (schedule.alpha(t), schedule.sigma(t));
        let inv = 0.5 / (sigma * sigma);
        if !(sigma > 0.0 && inv.is_finite()) {
            return Err(CoreError::invalid(
                "t",
                format!("the diffused empirical density needs sigma(t) > 0, got t = {t}"),
            ));
        }
        let norm = -(self.n_points() as f64).ln()
            - 0.5 * self.dim() as f64 * (2.0 * std::f64::consts::PI * sigma * sigma).ln();
        Ok(x.rows()
            .into_iter()
            .map(|r| {
                let (d, _, dmin) = distances(&self.points, r, alpha);
                let z: f64 = d.iter().map(|di| (-(di - dmin) * inv).exp()).sum();
                norm - dmin * inv + z.ln()
            })
            .collect())
    }

    /// The optimal denoiser `D(x, t) = E[x_0 | x_t = x]` of each row (Karras et al. 2022,
    /// Eq. 57); at `sigma(t) = 0` the data point nearest to `x / alpha`.
    pub fn denoise_t(
        &self,
        schedule: &dyn NoiseSchedule,
        t: f64,
        x: &ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>> {
        check_cols(x, self.dim(), "empirical-data query")?;
        let (alpha, sigma) = (schedule.alpha(t), schedule.sigma(t));
        if !(alpha.is_finite() && sigma.is_finite()) || sigma < 0.0 {
            return Err(CoreError::invalid(
                "t",
                format!("schedule gives alpha = {alpha}, sigma = {sigma} at t = {t}"),
            ));
        }
        let inv = 0.5 / (sigma * sigma);
        let hard = !inv.is_finite(); // sigma = 0 or sigma^2 underflows: the nearest point
        if hard && alpha <= 0.0 {
            return Err(CoreError::invalid(
                "t",
                format!("alpha(t) = {alpha} and sigma(t) = {sigma}: x_t holds no data"),
            ));
        }
        let mut out = Array2::zeros((x.nrows(), self.dim()));
        for (i, r) in x.rows().into_iter().enumerate() {
            let (d, nearest, dmin) = distances(&self.points, r, alpha);
            let mut row = out.row_mut(i);
            if hard {
                row.assign(&self.points.row(nearest));
                continue;
            }
            let mut z = 0.0;
            for (y, di) in self.points.rows().into_iter().zip(&d) {
                let w = (-(di - dmin) * inv).exp();
                if w > 0.0 {
                    z += w;
                    row.scaled_add(w, &y);
                }
            }
            // z >= 1: the nearest point has weight exp(0).
            row.mapv_inplace(|v| v / z);
        }
        Ok(out)
    }

    /// The optimal denoiser of this data set under `schedule`, usable by every sampler.
    pub fn denoiser<'a>(&'a self, schedule: &'a dyn NoiseSchedule) -> EmpiricalDenoiser<'a> {
        super::Analytic::new(self, schedule)
    }
}

impl super::RowDenoiser for EmpiricalData {
    fn dim(&self) -> usize {
        EmpiricalData::dim(self)
    }
    fn denoise_rows(
        &self,
        schedule: &dyn NoiseSchedule,
        t: f64,
        x: &ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>> {
        self.denoise_t(schedule, t, x)
    }
}

/// The optimal denoiser of an [`EmpiricalData`] set under a schedule (see [`super::Analytic`]).
pub type EmpiricalDenoiser<'a> = super::Analytic<'a, EmpiricalData>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::HostNoise;
    use crate::prediction::{Denoiser, Prediction};
    use crate::schedule::{Edm, VpLinear};
    use crate::target::GaussianMixture;
    use ndarray::{array, Array1};

    fn cloud(n: usize, d: usize, seed: u64) -> Array2<f64> {
        Array2::from_shape_vec((n, d), HostNoise::new(seed).normals(n * d)).unwrap()
    }

    /// A schedule with a constant `alpha = 0.5` and `sigma = t`, to see the division by alpha.
    #[derive(Debug)]
    struct HalfScale;
    impl NoiseSchedule for HalfScale {
        fn name(&self) -> String {
            "half-scale".into()
        }
        fn t_range(&self) -> (f64, f64) {
            (0.0, 10.0)
        }
        fn alpha(&self, _t: f64) -> f64 {
            0.5
        }
        fn sigma(&self, t: f64) -> f64 {
            t
        }
    }

    /// `log (1/N) sum_i N(x; alpha y_i, sigma^2 I)` written independently of the module (plain
    /// sum of densities, fine at the moderate sigma used with it).
    fn log_mixture(y: &Array2<f64>, alpha: f64, sigma: f64, x: &Array1<f64>) -> f64 {
        let d = y.ncols() as f64;
        let c = (2.0 * std::f64::consts::PI * sigma * sigma).powf(-d / 2.0);
        let p: f64 = y
            .rows()
            .into_iter()
            .map(|r| c * (-(x - &(&r * alpha)).mapv(|v| v * v).sum() / (2.0 * sigma * sigma)).exp())
            .sum();
        (p / y.nrows() as f64).ln()
    }

    #[test]
    fn tiny_sigma_returns_the_nearest_training_point() {
        // VP at t = 1e-6: sigma = 3.2e-4, alpha = 1 - 5e-8. A competing point's weight is
        // exp(-gap / (2 sigma^2)) with gap = d2 - d1; queries with gap >= 1e-3 get weights below
        // exp(-5000), so D must equal the nearest point to rounding.
        let y = cloud(20, 2, 1);
        let data = EmpiricalData::new(y.clone()).unwrap();
        let s = VpLinear::default();
        let t = 1e-6;
        let alpha = s.alpha(t);
        let q = cloud(60, 2, 2);
        let den = data.denoise_t(&s, t, &q.view()).unwrap();
        let mut checked = 0;
        for (i, r) in q.rows().into_iter().enumerate() {
            let (mut d, k, _) = distances(&y, r, alpha);
            d.sort_by(f64::total_cmp);
            if d[1] - d[0] < 1e-3 {
                continue;
            }
            checked += 1;
            for j in 0..2 {
                assert!((den[[i, j]] - y[[k, j]]).abs() < 1e-12, "query {i}");
            }
        }
        assert!(checked > 50, "{checked}");
        // At sigma = 0 exactly (EDM t = 0) it is the nearest point, also for ties-free queries
        // sitting on the data.
        let den0 = data.denoise_t(&Edm::default(), 0.0, &y.view()).unwrap();
        assert_eq!(den0, y);
        assert_eq!(
            data.nearest(&y.view()).unwrap(),
            (0..20).collect::<Vec<_>>()
        );
    }

    #[test]
    fn sigma_zero_divides_by_alpha_before_matching() {
        // x = (1.4, 0) is nearest to y_0 = (1, 0) but x / alpha = (2.8, 0) is nearest to (3, 0).
        let data = EmpiricalData::new(array![[1.0, 0.0], [3.0, 0.0]]).unwrap();
        let x = array![[1.4, 0.0]];
        let den = data.denoise_t(&HalfScale, 0.0, &x.view()).unwrap();
        assert_eq!(den, array![[3.0, 0.0]]);
        assert_eq!(data.nearest(&x.view()).unwrap(), vec![0]);
        // Slightly above sigma = 0 the soft version agrees.
        let soft = data.denoise_t(&HalfScale, 0.01, &x.view()).unwrap();
        assert!((soft[[0, 0]] - 3.0).abs() < 1e-12);
    }

    #[test]
    fn equals_the_mixture_denoiser_of_point_masses() {
        // The empirical measure is the mixture of N(y_i, 0) with weights 1/N (exactly), and
        // approximately the mixture of N(y_i, tau^2 I) with tau^2 = 1e-8: the mixture denoiser
        // then moves each term by alpha tau^2 / (alpha^2 tau^2 + sigma^2) |x - alpha y_i| < 1e-5.
        let y = cloud(7, 3, 3);
        let data = EmpiricalData::new(y.clone()).unwrap();
        let n = y.nrows();
        let means: Vec<Vec<f64>> = y.rows().into_iter().map(|r| r.to_vec()).collect();
        let cov = |v: f64| vec![vec![v, 0.0, 0.0], vec![0.0, v, 0.0], vec![0.0, 0.0, v]];
        let exact = GaussianMixture::new(vec![1.0 / n as f64; n], means.clone(), vec![cov(0.0); n])
            .unwrap();
        let tiny =
            GaussianMixture::new(vec![1.0 / n as f64; n], means, vec![cov(1e-8); n]).unwrap();
        let q = cloud(10, 3, 4) * 1.5;
        let schedules: [&dyn NoiseSchedule; 2] = [&VpLinear::default(), &Edm::default()];
        for s in schedules {
            for &t in &[0.05, 0.3, 0.9] {
                let ours = data.denoise_t(s, t, &q.view()).unwrap();
                let a = exact.denoise_t(s, t, &q.view()).unwrap();
                let b = tiny.denoise_t(s, t, &q.view()).unwrap();
                for ((u, v), w) in ours.iter().zip(a.iter()).zip(b.iter()) {
                    assert!((u - v).abs() < 1e-10, "{} t={t}: {u} vs {v}", s.name());
                    assert!((u - w).abs() < 1e-5, "{} t={t}: {u} vs {w}", s.name());
                }
                // The log-densities agree with the mixture's too.
                let la = exact.log_density_t(s, t, &q.view()).unwrap();
                let lo = data.log_density_t(s, t, &q.view()).unwrap();
                for (u, v) in lo.iter().zip(&la) {
                    assert!((u - v).abs() < 1e-9 * (1.0 + v.abs()), "{u} vs {v}");
                }
            }
        }
    }

    #[test]
    fn satisfies_tweedie_against_a_finite_difference_score() {
        // D(x) = (x + sigma^2 grad log p_t(x)) / alpha, with the gradient of an independently
        // written log-mixture by central differences (h = 1e-5: error ~ h^2 |f'''| < 1e-8).
        let y = cloud(12, 2, 5);
        let data = EmpiricalData::new(y.clone()).unwrap();
        let s = VpLinear::default();
        let q = cloud(6, 2, 6);
        for &t in &[0.1, 0.4, 1.0] {
            let (alpha, sigma) = (s.alpha(t), s.sigma(t));
            let den = data.denoise_t(&s, t, &q.view()).unwrap();
            for (i, r) in q.rows().into_iter().enumerate() {
                let h = 1e-5;
                for j in 0..2 {
                    let mut xp = r.to_owned();
                    let mut xm = r.to_owned();
                    xp[j] += h;
                    xm[j] -= h;
                    let grad = (log_mixture(&y, alpha, sigma, &xp)
                        - log_mixture(&y, alpha, sigma, &xm))
                        / (2.0 * h);
                    let tweedie = (r[j] + sigma * sigma * grad) / alpha;
                    assert!(
                        (den[[i, j]] - tweedie).abs() < 1e-6,
                        "t={t} row {i}: {} vs {tweedie}",
                        den[[i, j]]
                    );
                }
            }
        }
    }

    #[test]
    fn large_sigma_gives_the_data_mean() {
        // At sigma = 1e6 the weights differ from uniform by |x|^2-terms / sigma^2 ~ 1e-11.
        let y = cloud(9, 2, 7);
        let data = EmpiricalData::new(y.clone()).unwrap();
        let den = data
            .denoise_t(&Edm::new(1e7).unwrap(), 1e6, &array![[3.0, -2.0]].view())
            .unwrap();
        let mean = y.mean_axis(ndarray::Axis(0)).unwrap();
        for j in 0..2 {
            assert!((den[[0, j]] - mean[j]).abs() < 1e-9);
        }
    }

    #[test]
    fn denoiser_trait_on_f64_and_f32_states_and_errors() {
        let y = cloud(5, 2, 8);
        let data = EmpiricalData::new(y).unwrap();
        let s = VpLinear::default();
        let q = cloud(4, 2, 9);
        let want = data.denoise_t(&s, 0.5, &q.view()).unwrap();
        match data.denoiser(&s).predict(&q, 0.5).unwrap() {
            Prediction::Sample(x) => assert_eq!(x, want),
            other => panic!("expected a sample prediction, got {}", other.kind()),
        }
        let q32 = q.mapv(|v| v as f32);
        match data.denoiser(&s).predict(&q32, 0.5).unwrap() {
            Prediction::Sample(x) => {
                for (u, v) in x.iter().zip(want.iter()) {
                    assert!((*u as f64 - v).abs() < 1e-5);
                }
            }
            other => panic!("expected a sample prediction, got {}", other.kind()),
        }
        // A flat state of 8 values is read as 4 rows of dimension 2; 7 values are an error.
        let flat = ndarray::Array1::from_iter(q.iter().copied());
        assert!(data.denoiser(&s).predict(&flat, 0.5).is_ok());
        let odd = ndarray::Array1::<f64>::zeros(7);
        assert!(data.denoiser(&s).predict(&odd, 0.5).is_err());
        assert!(data
            .denoise_t(&s, 0.5, &Array2::zeros((2, 3)).view())
            .is_err());
        assert!(data.log_density_t(&s, 0.0, &q.view()).is_err());
        assert!(EmpiricalData::new(Array2::zeros((0, 2))).is_err());
        assert!(EmpiricalData::new(array![[f64::NAN, 0.0]]).is_err());
    }
}
