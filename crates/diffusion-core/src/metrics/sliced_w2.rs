//! Sliced 2-Wasserstein distance between two point clouds.
//!
//! Paper: Rabin, Peyré, Delon & Bernot (2011), "Wasserstein Barycenter and its Application to
//! Texture Mixing", SSVM 2011 (the sliced Wasserstein distance); Bonneel, Rabin, Peyré & Pfister
//! (2015), "Sliced and Radon Wasserstein Barycenters of Measures", JMIV 51, Eq. (1).
//! `SW2(X, Y)^2 = E_theta[ W2(theta^T X, theta^T Y)^2 ]` over uniform directions on the sphere,
//! estimated with `n_proj` seeded directions; each 1-D W2 compares sorted quantiles exactly.

use crate::error::{CoreError, Result};
use crate::noise::HostNoise;
use ndarray::ArrayView2;

/// Exact W2 between two 1-D empirical distributions (quantile functions compared on the merged
/// grid of both sample sizes, so unequal sizes are handled exactly).
pub fn w2_1d(mut a: Vec<f64>, mut b: Vec<f64>) -> Result<f64> {
    if a.is_empty() || b.is_empty() {
        return Err(CoreError::invalid(
            "samples",
            "need at least one point on each side",
        ));
    }
    if a.iter().chain(b.iter()).any(|v| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            context: "w2_1d samples".into(),
        });
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut pos, mut acc) = (0.0_f64, 0.0_f64);
    while i < a.len() && j < b.len() {
        let ea = (i + 1) as f64 / na;
        let eb = (j + 1) as f64 / nb;
        let next = ea.min(eb);
        acc += (next - pos) * (a[i] - b[j]).powi(2);
        pos = next;
        if ea <= next {
            i += 1;
        }
        if eb <= next {
            j += 1;
        }
    }
    Ok(acc.max(0.0).sqrt())
}

/// Sliced W2 between the rows of `x` and `y` with `n_proj` random directions drawn from `seed`.
pub fn sliced_w2(
    x: &ArrayView2<'_, f64>,
    y: &ArrayView2<'_, f64>,
    n_proj: usize,
    seed: u64,
) -> Result<f64> {
    if x.ncols() != y.ncols() {
        return Err(CoreError::ShapeMismatch {
            context: "sliced_w2 (both clouds need one dimension)",
            expected: vec![x.nrows(), x.ncols()],
            got: y.shape().to_vec(),
        });
    }
    if n_proj == 0 {
        return Err(CoreError::invalid("n_proj", "must be at least 1"));
    }
    let d = x.ncols();
    let mut noise = HostNoise::new(seed);
    let mut total = 0.0;
    for _ in 0..n_proj {
        let mut dir = noise.normals(d);
        let norm = dir.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
        dir.iter_mut().for_each(|v| *v /= norm);
        let proj = |m: &ArrayView2<'_, f64>| -> Vec<f64> {
            m.rows()
                .into_iter()
                .map(|r| r.iter().zip(&dir).map(|(a, b)| a * b).sum())
                .collect()
        };
        total += w2_1d(proj(x), proj(y))?.powi(2);
    }
    Ok((total / n_proj as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn w2_1d_of_shifted_sets_is_the_shift() {
        let a = vec![0.0, 1.0, 2.0, 3.0];
        let b: Vec<f64> = a.iter().map(|v| v + 0.5).collect();
        assert!((w2_1d(a.clone(), b).unwrap() - 0.5).abs() < 1e-15);
        assert_eq!(w2_1d(a.clone(), a.clone()).unwrap(), 0.0);
        // Unequal sizes: {0,1} vs {0, 0, 1, 1} are the same distribution.
        assert!(w2_1d(vec![0.0, 1.0], vec![1.0, 0.0, 1.0, 0.0]).unwrap() < 1e-15);
        // {0} vs {0, 2}: half the mass moves by 2, W2 = sqrt(0.5 * 4).
        assert!((w2_1d(vec![0.0], vec![0.0, 2.0]).unwrap() - 2.0_f64.sqrt()).abs() < 1e-15);
        assert!(w2_1d(vec![], vec![1.0]).is_err());
        assert!(w2_1d(vec![f64::NAN], vec![1.0]).is_err());
    }

    #[test]
    fn sliced_w2_of_a_translation_is_the_mean_projected_shift() {
        // A translation by v moves every projection by theta.v; E[(theta.v)^2] = |v|^2 / d.
        let x = HostNoise::new(1).normals(2000 * 2);
        let x = Array2::from_shape_vec((2000, 2), x).unwrap();
        let y = x.mapv(|v| v) + ndarray::array![3.0, 4.0];
        let sw = sliced_w2(&x.view(), &y.view(), 4000, 7).unwrap();
        let expected = (25.0_f64 / 2.0).sqrt();
        assert!((sw - expected).abs() < 0.06, "{sw} vs {expected}");
        assert_eq!(sliced_w2(&x.view(), &x.view(), 10, 1).unwrap(), 0.0);
        let z = Array2::<f64>::zeros((3, 3));
        assert!(sliced_w2(&x.view(), &z.view(), 10, 1).is_err());
    }
}
