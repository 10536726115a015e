//! Small dense linear algebra shared by the augmented-space processes: the matrix exponential,
//! Van Loan's block exponential for the covariance of a linear SDE, a semidefinite Cholesky factor,
//! and the action of a `2 x 2` matrix on (position, velocity) state pairs.
//!
//! Paper: Higham (2005), "The Scaling and Squaring Method for the Matrix Exponential Revisited",
//! SIAM J. Matrix Anal. Appl. 26(4):1179-1193, Sec. 2 (here a fixed diagonal `[6/6]` Padé approximant
//! after scaling to `||A/2^s||_1 <= 1/2`, whose truncation error is below `1e-16` there);
//! Van Loan (1978), "Computing Integrals Involving the Matrix Exponential", IEEE Trans. Automatic
//! Control 23(3):395-404, Theorem 1: `exp([[-F, Q], [0, F^T]] tau) = [[., E12], [0, E22]]` gives
//! `Phi = exp(F tau) = E22^T` and `Sigma = int_0^tau exp(F u) Q exp(F^T u) du = Phi E12`.
//! The covariance is computed over `tau / 2^m` (with `||F||_1 tau / 2^m <= 1`, so `exp(-F tau)`
//! never grows) and doubled back with `(Phi, Sigma) -> (Phi^2, Phi Sigma Phi^T + Sigma)`, which
//! stays accurate at large `tau` where the one-shot block exponential cancels catastrophically.

use crate::error::{CoreError, Result};
use crate::state::{Phase, State};
use nalgebra::{DMatrix, Matrix2};

fn check_square(a: &DMatrix<f64>, name: &'static str) -> Result<()> {
    if a.nrows() != a.ncols() {
        return Err(CoreError::ShapeMismatch {
            context: name,
            expected: vec![a.nrows(), a.nrows()],
            got: vec![a.nrows(), a.ncols()],
        });
    }
    if a.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            context: format!("{name}: matrix entries"),
        });
    }
    Ok(())
}

fn norm1(a: &DMatrix<f64>) -> f64 {
    a.column_iter()
        .map(|c| c.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

/// `(a + a^T) / 2`.
pub(crate) fn symmetrize(a: &DMatrix<f64>) -> DMatrix<f64> {
    (a + a.transpose()) * 0.5
}

/// The matrix exponential `exp(A)` of a square matrix by scaling and squaring with a `[6/6]` Padé
/// approximant (Higham 2005). Errors on a non-square or non-finite matrix, or one whose norm is
/// too large to scale (`||A||_1 > 2^1000`).
pub fn expm(a: &DMatrix<f64>) -> Result<DMatrix<f64>> {
    check_square(a, "expm")?;
    let n = a.nrows();
    let norm = norm1(a);
    let s = if norm > 0.5 {
        (norm / 0.5).log2().ceil() as i32
    } else {
        0
    };
    if s > 1000 {
        return Err(CoreError::invalid(
            "expm",
            format!("matrix norm {norm} is too large to exponentiate"),
        ));
    }
    let scaled = a * 0.5_f64.powi(s);
    // Padé [6/6] coefficients c_k = (2q-k)! q! / ((2q)! k! (q-k)!), q = 6, by their recurrence.
    let mut c = [1.0_f64; 7];
    for k in 1..=6 {
        c[k] = c[k - 1] * (7 - k) as f64 / (k as f64 * (13 - k) as f64);
    }
    let id = DMatrix::<f64>::identity(n, n);
    let mut num = id.clone();
    let mut den = id.clone();
    let mut power = id;
    for (k, &ck) in c.iter().enumerate().skip(1) {
        power = &power * &scaled;
        num += &power * ck;
        den += &power * if k % 2 == 1 { -ck } else { ck };
    }
    let mut x = den
        .lu()
        .solve(&num)
        .ok_or_else(|| CoreError::invalid("expm", "singular Padé denominator"))?;
    for _ in 0..s {
        x = &x * &x;
    }
    Ok(x)
}

/// The transition of the linear SDE `dz = F z du + G dW` over a span `tau >= 0` of its own time
/// `u`: `(Phi, Sigma)` with `Phi = exp(F tau)` and `Sigma = int_0^tau exp(F u) Q exp(F^T u) du`,
/// `Q = G G^T` (Van Loan's block exponential, computed over `tau / 2^m` and doubled back).
pub fn van_loan(
    f: &DMatrix<f64>,
    q: &DMatrix<f64>,
    tau: f64,
) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
    check_square(f, "van_loan drift matrix")?;
    check_square(q, "van_loan noise covariance")?;
    let k = f.nrows();
    if q.nrows() != k {
        return Err(CoreError::ShapeMismatch {
            context: "van_loan noise covariance",
            expected: vec![k, k],
            got: vec![q.nrows(), q.ncols()],
        });
    }
    if !(tau.is_finite() && tau >= 0.0) {
        return Err(CoreError::invalid(
            "tau",
            format!("must be finite and >= 0, got {tau}"),
        ));
    }
    if tau == 0.0 {
        return Ok((DMatrix::identity(k, k), DMatrix::zeros(k, k)));
    }
    let growth = norm1(f) * tau;
    let m = if growth > 1.0 {
        growth.log2().ceil() as i32
    } else {
        0
    };
    if m > 200 {
        return Err(CoreError::invalid(
            "tau",
            format!("||F|| tau = {growth} is too large"),
        ));
    }
    let h = tau * 0.5_f64.powi(m);
    let mut block = DMatrix::<f64>::zeros(2 * k, 2 * k);
    block.view_mut((0, 0), (k, k)).copy_from(&(-f * h));
    block.view_mut((0, k), (k, k)).copy_from(&(q * h));
    block
        .view_mut((k, k), (k, k))
        .copy_from(&(f.transpose() * h));
    let e = expm(&block)?;
    let mut phi = e.view((k, k), (k, k)).transpose();
    let mut sigma = symmetrize(&(&phi * e.view((0, k), (k, k))));
    for _ in 0..m {
        sigma = symmetrize(&(&phi * &sigma * phi.transpose() + &sigma));
        phi = &phi * &phi;
    }
    Ok((phi, sigma))
}

/// A lower-triangular `L` with `L L^T = A` for a symmetric positive semi-definite `A`: pivots below
/// `1e-14 * max(diag)` are treated as exact zeros (their column of `L` is zero), so degenerate
/// covariances such as CLD's at `t = 0` factor without NaN. Errors if a pivot is clearly negative
/// (`< -1e-9 * max(diag)`), i.e. `A` is not PSD.
pub fn psd_cholesky(a: &DMatrix<f64>) -> Result<DMatrix<f64>> {
    check_square(a, "psd_cholesky")?;
    let n = a.nrows();
    let scale = (0..n).map(|i| a[(i, i)].abs()).fold(0.0, f64::max);
    let mut l = DMatrix::<f64>::zeros(n, n);
    for j in 0..n {
        let d = a[(j, j)] - (0..j).map(|k| l[(j, k)] * l[(j, k)]).sum::<f64>();
        if d <= 1e-14 * scale {
            if d < -1e-9 * scale {
                return Err(CoreError::invalid(
                    "covariance",
                    format!("is not positive semi-definite (pivot {d} at {j})"),
                ));
            }
            continue;
        }
        let ljj = d.sqrt();
        l[(j, j)] = ljj;
        for i in (j + 1)..n {
            let s = a[(i, j)] - (0..j).map(|k| l[(i, k)] * l[(j, k)]).sum::<f64>();
            l[(i, j)] = s / ljj;
        }
    }
    Ok(l)
}

/// `[x'; v'] = M [x; v]` coordinate-wise: `x' = m00 x + m01 v`, `v' = m10 x + m11 v`.
pub(crate) fn mat2_apply<S: State>(m: &Matrix2<f64>, x: &S, v: &S) -> Phase<S> {
    Phase::new(
        x.lincomb(m[(0, 0)], v, m[(0, 1)]),
        x.lincomb(m[(1, 0)], v, m[(1, 1)]),
    )
}

/// The `2 x 2` matrix held in a `DMatrix` (which must be `2 x 2`).
pub(crate) fn to_matrix2(a: &DMatrix<f64>) -> Matrix2<f64> {
    Matrix2::new(a[(0, 0)], a[(0, 1)], a[(1, 0)], a[(1, 1)])
}

/// A `DMatrix` copy of a `2 x 2` matrix.
pub(crate) fn from_matrix2(a: &Matrix2<f64>) -> DMatrix<f64> {
    DMatrix::from_row_slice(2, 2, &[a[(0, 0)], a[(0, 1)], a[(1, 0)], a[(1, 1)]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_abs(a: &DMatrix<f64>) -> f64 {
        a.iter().fold(0.0, |m, v| m.max(v.abs()))
    }

    #[test]
    fn expm_matches_closed_forms() {
        // Rotation generator: exp([[0, -w], [w, 0]]) = [[cos w, -sin w], [sin w, cos w]].
        let w = 7.3;
        let a = DMatrix::from_row_slice(2, 2, &[0.0, -w, w, 0.0]);
        let e = expm(&a).unwrap();
        let want = DMatrix::from_row_slice(2, 2, &[w.cos(), -w.sin(), w.sin(), w.cos()]);
        assert!(max_abs(&(e - want)) < 1e-13);
        // Jordan block: exp([[l, 1], [0, l]] t) = e^{lt} [[1, t], [0, 1]].
        let (l, t) = (-3.0_f64, 2.5_f64);
        let j = DMatrix::from_row_slice(2, 2, &[l * t, t, 0.0, l * t]);
        let want = DMatrix::from_row_slice(2, 2, &[1.0, t, 0.0, 1.0]) * (l * t).exp();
        assert!(max_abs(&(expm(&j).unwrap() - &want)) < 1e-12 * max_abs(&want));
        // exp(A) exp(-A) = I for a generic 3x3.
        let g = DMatrix::from_row_slice(3, 3, &[0.3, -1.2, 2.0, 0.7, -0.4, 0.1, -2.2, 1.5, 0.9]);
        let p = expm(&g).unwrap() * expm(&(-&g)).unwrap();
        assert!(max_abs(&(p - DMatrix::identity(3, 3))) < 1e-12);
        assert!(expm(&DMatrix::zeros(2, 3)).is_err());
        assert!(expm(&DMatrix::from_element(1, 1, f64::NAN)).is_err());
    }

    #[test]
    fn van_loan_matches_scalar_ou_and_is_stable_at_large_tau() {
        // dz = -a z du + sqrt(q) dW: Phi = e^{-a tau}, Sigma = q (1 - e^{-2 a tau}) / (2a).
        let (a, q) = (1.7, 0.6);
        let f = DMatrix::from_element(1, 1, -a);
        let qm = DMatrix::from_element(1, 1, q);
        for &tau in &[1e-6, 0.3, 4.0, 200.0] {
            let (phi, sig) = van_loan(&f, &qm, tau).unwrap();
            assert!((phi[(0, 0)] - (-a * tau).exp()).abs() < 1e-14);
            let want = q * -(-2.0 * a * tau).exp_m1() / (2.0 * a);
            assert!(
                (sig[(0, 0)] - want).abs() < 1e-12 * want,
                "tau {tau}: {} vs {want}",
                sig[(0, 0)]
            );
        }
        assert!(van_loan(&f, &qm, -1.0).is_err());
    }

    #[test]
    fn psd_cholesky_factors_degenerate_covariances() {
        let a = DMatrix::from_row_slice(2, 2, &[0.0, 0.0, 0.0, 2.0]);
        let l = psd_cholesky(&a).unwrap();
        assert!(max_abs(&(&l * l.transpose() - &a)) < 1e-15);
        let b = DMatrix::from_row_slice(2, 2, &[4.0, 1.0, 1.0, 3.0]);
        let l = psd_cholesky(&b).unwrap();
        assert!(max_abs(&(&l * l.transpose() - &b)) < 1e-14);
        assert_eq!(l[(0, 1)], 0.0);
        assert!(psd_cholesky(&DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, -1.0])).is_err());
    }
}
