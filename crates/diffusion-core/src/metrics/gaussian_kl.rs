//! Closed-form Kullback-Leibler divergence between two multivariate Gaussians.
//!
//! Paper: Rasmussen & Williams (2006), "Gaussian Processes for Machine Learning", MIT Press,
//! Appendix A.5, Eq. (A.23):
//! `KL(N0 || N1) = 1/2 [ tr(S1^{-1} S0) + (m1 - m0)^T S1^{-1} (m1 - m0) - d + ln det S1 - ln det S0 ]`.
//!
//! The inverse and log-determinant of `S1` come from the eigen-decomposition that
//! [`Gaussian`] already stores, so no Cholesky factorization is repeated.

use crate::error::{CoreError, Result};
use crate::target::Gaussian;
use nalgebra::DMatrix;

/// `KL(p || q)` in nats. Errors when the dimensions differ or `q`'s covariance is singular;
/// returns `+inf` when only `p`'s covariance is singular (then `p` has no density relative to
/// `q`).
pub fn gaussian_kl(p: &Gaussian, q: &Gaussian) -> Result<f64> {
    if p.dim() != q.dim() {
        return Err(CoreError::ShapeMismatch {
            context: "gaussian_kl (both Gaussians need one dimension)",
            expected: vec![p.dim()],
            got: vec![q.dim()],
        });
    }
    let (lq, uq) = q.eig();
    if lq.iter().any(|v| *v <= 0.0) {
        return Err(CoreError::invalid(
            "q",
            "covariance is singular; KL(p || q) is undefined or infinite",
        ));
    }
    let (lp, _) = p.eig();
    if lp.iter().any(|v| *v <= 0.0) {
        return Ok(f64::INFINITY);
    }
    let d = p.dim() as f64;
    let inv = lq.map(|v| 1.0 / v);
    let q_prec = uq * DMatrix::from_diagonal(&inv) * uq.transpose();
    let trace = (&q_prec * p.cov()).trace();
    let dm = q.mean() - p.mean();
    let maha = dm.dot(&(&q_prec * &dm));
    let logdet_q: f64 = lq.iter().map(|v| v.ln()).sum();
    let logdet_p: f64 = lp.iter().map(|v| v.ln()).sum();
    Ok((0.5 * (trace + maha - d + logdet_q - logdet_p)).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::HostNoise;

    fn kl_1d(m0: f64, s0: f64, m1: f64, s1: f64) -> f64 {
        (s1 / s0).ln() + (s0 * s0 + (m0 - m1).powi(2)) / (2.0 * s1 * s1) - 0.5
    }

    #[test]
    fn one_dimensional_formula() {
        for &(m0, s0, m1, s1) in &[
            (0.0, 1.0, 0.0, 1.0),
            (0.0, 1.0, 1.0, 1.0),
            (1.0, 0.5, -2.0, 2.0),
            (3.0, 2.0, 0.0, 0.3),
        ] {
            let p = Gaussian::isotropic(vec![m0], s0).unwrap();
            let q = Gaussian::isotropic(vec![m1], s1).unwrap();
            let kl = gaussian_kl(&p, &q).unwrap();
            let want = kl_1d(m0, s0, m1, s1);
            assert!((kl - want).abs() < 1e-12 * (1.0 + want), "{kl} vs {want}");
        }
        // Asymmetric: KL(N(0,1) || N(0,4)) != KL(N(0,4) || N(0,1)).
        let a = Gaussian::isotropic(vec![0.0], 1.0).unwrap();
        let b = Gaussian::isotropic(vec![0.0], 2.0).unwrap();
        let (ab, ba) = (gaussian_kl(&a, &b).unwrap(), gaussian_kl(&b, &a).unwrap());
        assert!((ab - (2.0_f64.ln() + 1.0 / 8.0 - 0.5)).abs() < 1e-12);
        assert!((ba - (-(2.0_f64.ln()) + 2.0 - 0.5)).abs() < 1e-12);
    }

    #[test]
    fn multivariate_known_cases() {
        // Diagonal covariances: KL is the sum of the coordinates' 1-D divergences.
        let p = Gaussian::new(
            vec![1.0, -1.0, 0.5],
            vec![
                vec![0.25, 0.0, 0.0],
                vec![0.0, 4.0, 0.0],
                vec![0.0, 0.0, 1.0],
            ],
        )
        .unwrap();
        let q = Gaussian::new(
            vec![0.0, 0.0, 2.0],
            vec![
                vec![1.0, 0.0, 0.0],
                vec![0.0, 1.0, 0.0],
                vec![0.0, 0.0, 9.0],
            ],
        )
        .unwrap();
        let want =
            kl_1d(1.0, 0.5, 0.0, 1.0) + kl_1d(-1.0, 2.0, 0.0, 1.0) + kl_1d(0.5, 1.0, 2.0, 3.0);
        let kl = gaussian_kl(&p, &q).unwrap();
        assert!((kl - want).abs() < 1e-12, "{kl} vs {want}");
        // A common rotation leaves KL unchanged: rotate the diagonal 2-D case by 30 degrees.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let rot = |m: [f64; 2], v: [f64; 2]| -> Gaussian {
            let mean = vec![c * m[0] - s * m[1], s * m[0] + c * m[1]];
            let cov = vec![
                vec![c * c * v[0] + s * s * v[1], c * s * (v[0] - v[1])],
                vec![c * s * (v[0] - v[1]), s * s * v[0] + c * c * v[1]],
            ];
            Gaussian::new(mean, cov).unwrap()
        };
        let p = rot([1.0, 2.0], [0.5, 3.0]);
        let q = rot([-1.0, 0.0], [2.0, 0.7]);
        let want = kl_1d(1.0, 0.5_f64.sqrt(), -1.0, 2.0_f64.sqrt())
            + kl_1d(2.0, 3.0_f64.sqrt(), 0.0, 0.7_f64.sqrt());
        let kl = gaussian_kl(&p, &q).unwrap();
        assert!((kl - want).abs() < 1e-12, "{kl} vs {want}");
        assert!(gaussian_kl(&p, &p).unwrap() < 1e-12);
    }

    #[test]
    fn non_commuting_case_matches_monte_carlo() {
        // KL(p || q) = E_p[log p - log q]. With 200k samples the standard error (from the sample
        // variance, printed on failure) is about 0.004; the tolerance 0.03 is over 6 of them.
        let p = Gaussian::new(vec![0.5, -0.5], vec![vec![1.0, 0.6], vec![0.6, 0.8]]).unwrap();
        let q = Gaussian::new(vec![0.0, 0.3], vec![vec![0.7, -0.2], vec![-0.2, 1.5]]).unwrap();
        let kl = gaussian_kl(&p, &q).unwrap();
        let x = p.sample(200_000, &mut HostNoise::new(3));
        let lp = p.log_density(&x.view()).unwrap();
        let lq = q.log_density(&x.view()).unwrap();
        let diffs: Vec<f64> = lp.iter().zip(&lq).map(|(a, b)| a - b).collect();
        let n = diffs.len() as f64;
        let mc = diffs.iter().sum::<f64>() / n;
        let se = (diffs.iter().map(|d| (d - mc).powi(2)).sum::<f64>() / (n * (n - 1.0))).sqrt();
        assert!(
            (kl - mc).abs() < 0.03 && se < 0.005,
            "{kl} vs {mc} (se {se})"
        );
    }

    #[test]
    fn errors_and_degenerate_covariances() {
        let a = Gaussian::isotropic(vec![0.0, 0.0], 1.0).unwrap();
        let b = Gaussian::isotropic(vec![0.0], 1.0).unwrap();
        assert!(gaussian_kl(&a, &b).is_err());
        let singular = Gaussian::new(vec![0.0, 0.0], vec![vec![1.0, 0.0], vec![0.0, 0.0]]).unwrap();
        assert!(gaussian_kl(&a, &singular).is_err());
        assert_eq!(gaussian_kl(&singular, &a).unwrap(), f64::INFINITY);
    }
}
