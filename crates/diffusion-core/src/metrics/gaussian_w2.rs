//! Closed-form 2-Wasserstein distance between two Gaussians.
//!
//! Paper: Dowson & Landau (1982), "The Fréchet distance between multivariate normal
//! distributions", J. Multivariate Anal. 12(3): `W2^2 = |m1 - m2|^2 + tr(C1 + C2 - 2 (C2^{1/2} C1 C2^{1/2})^{1/2})`.

use crate::target::Gaussian;

/// `W2(N(m1, C1), N(m2, C2))`. Dimensions must agree (checked by the caller's construction).
pub fn gaussian_w2(p: &Gaussian, q: &Gaussian) -> f64 {
    let dm = p.mean() - q.mean();
    let s2 = q.cov_sqrt();
    let inner = &s2 * p.cov() * &s2;
    let inner = (&inner + inner.transpose()) * 0.5;
    let eig = nalgebra::SymmetricEigen::new(inner);
    let tr_sqrt: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0).sqrt()).sum();
    let w2sq = dm.norm_squared() + p.cov().trace() + q.cov().trace() - 2.0 * tr_sqrt;
    w2sq.max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_w2_matches_known_cases() {
        let a = Gaussian::isotropic(vec![0.0, 0.0], 1.0).unwrap();
        let b = Gaussian::isotropic(vec![3.0, 4.0], 1.0).unwrap();
        assert!((gaussian_w2(&a, &b) - 5.0).abs() < 1e-12);
        // Isotropic scales: W2^2 = d (s1 - s2)^2.
        let c = Gaussian::isotropic(vec![0.0, 0.0], 3.0).unwrap();
        assert!((gaussian_w2(&a, &c) - (2.0_f64 * 4.0).sqrt()).abs() < 1e-12);
        // 1-D: |m1-m2|^2 + (s1-s2)^2 holds for a rotated diagonal covariance too (commuting case).
        let d = Gaussian::new(vec![0.0, 0.0], vec![vec![2.0, 1.0], vec![1.0, 2.0]]).unwrap();
        let e = Gaussian::new(vec![0.0, 0.0], vec![vec![8.0, 4.0], vec![4.0, 8.0]]).unwrap();
        // eigenvalues (3, 1) and (12, 4): sum (sqrt12 - sqrt3)^2 + (2 - 1)^2 = 3 + 1.
        assert!((gaussian_w2(&d, &e) - 2.0).abs() < 1e-12);
        assert!(gaussian_w2(&d, &d) < 1e-7);
    }
}
