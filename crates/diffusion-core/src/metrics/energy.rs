//! The energy distance between two point clouds.
//!
//! Paper: Székely & Rizzo (2013), "Energy statistics: A class of statistics based on distances",
//! J. Statistical Planning and Inference 143(8):1249-1272; Rizzo & Székely (2016), "Energy
//! distance", WIREs Computational Statistics 8:27-38, Eq. (1):
//! `D^2(F, G) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|` (Euclidean norms, `X, X' ~ F`, `Y, Y' ~ G`).
//!
//! [`energy_distance2`] is the V-statistic of `D^2`, i.e. `D^2` between the two empirical
//! measures (all pairs, including `i = j`): `2/(n m) sum |x_i - y_j| - 1/n^2 sum |x_i - x_j|
//! - 1/m^2 sum |y_i - y_j|`. It is `>= 0`, zero exactly when the two empirical measures coincide,
//! invariant under rigid motions and homogeneous of degree 1 under scaling. In 1-D it equals `2 int (F_n - G_m)^2 dx` (twice Cramér's distance).
//! [`energy_distance`] is its square root `D`, a metric; it is what `scipy.stats.energy_distance`
//! returns for 1-D samples. Cost `O((n + m)^2 d)`.

use super::{check_clouds, sq_dist};
use crate::error::Result;
use ndarray::ArrayView2;

fn mean_pair_distance(a: &ArrayView2<'_, f64>, b: &ArrayView2<'_, f64>) -> f64 {
    let mut s = 0.0;
    for ai in a.rows() {
        for bj in b.rows() {
            s += sq_dist(ai, bj).sqrt();
        }
    }
    s / (a.nrows() * b.nrows()) as f64
}

fn mean_within_distance(a: &ArrayView2<'_, f64>) -> f64 {
    let n = a.nrows();
    let mut s = 0.0;
    for i in 0..n {
        for j in (i + 1)..n {
            s += sq_dist(a.row(i), a.row(j)).sqrt();
        }
    }
    2.0 * s / (n * n) as f64
}

/// The squared energy distance `D^2` between the empirical measures of the rows of `x` and `y`
/// (V-statistic; see the module documentation). Never negative up to rounding (clamped at 0).
pub fn energy_distance2(x: &ArrayView2<'_, f64>, y: &ArrayView2<'_, f64>) -> Result<f64> {
    check_clouds(x, y, "energy_distance")?;
    let d2 = 2.0 * mean_pair_distance(x, y) - mean_within_distance(x) - mean_within_distance(y);
    Ok(d2.max(0.0))
}

/// The energy distance `D = sqrt(D^2)` between the empirical measures of `x` and `y`.
pub fn energy_distance(x: &ArrayView2<'_, f64>, y: &ArrayView2<'_, f64>) -> Result<f64> {
    Ok(energy_distance2(x, y)?.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::HostNoise;
    use ndarray::{array, Array2};

    fn cloud(n: usize, d: usize, seed: u64) -> Array2<f64> {
        Array2::from_shape_vec((n, d), HostNoise::new(seed).normals(n * d)).unwrap()
    }

    /// `2 int (F - G)^2 dx` for two 1-D empirical CDFs, by sweeping the merged sorted values.
    fn twice_cramer(a: &[f64], b: &[f64]) -> f64 {
        let mut pts: Vec<(f64, f64)> = a
            .iter()
            .map(|&v| (v, 1.0 / a.len() as f64))
            .chain(b.iter().map(|&v| (v, -1.0 / b.len() as f64)))
            .collect();
        pts.sort_by(|p, q| p.0.total_cmp(&q.0));
        let (mut diff, mut acc) = (0.0, 0.0);
        for w in pts.windows(2) {
            diff += w[0].1;
            acc += diff * diff * (w[1].0 - w[0].0);
        }
        2.0 * acc
    }

    #[test]
    fn hand_computed_cases() {
        // {0} vs {1}: 2 * 1 - 0 - 0 = 2.
        let d2 = energy_distance2(&array![[0.0]].view(), &array![[1.0]].view()).unwrap();
        assert!((d2 - 2.0).abs() < 1e-15);
        // {0, 2} vs {1}: 2 * (1 + 1) / 2 - (0 + 2 + 2 + 0) / 4 - 0 = 1.
        let d2 = energy_distance2(&array![[0.0], [2.0]].view(), &array![[1.0]].view()).unwrap();
        assert!((d2 - 1.0).abs() < 1e-15);
        // 2-D: x = {(0,0), (3,4)}, y = {(0,4)}: cross distances 4 and 3, within-x 5:
        // 2 * 7 / 2 - 2 * 5 / 4 = 4.5.
        let x = array![[0.0, 0.0], [3.0, 4.0]];
        let y = array![[0.0, 4.0]];
        let d2 = energy_distance2(&x.view(), &y.view()).unwrap();
        assert!((d2 - 4.5).abs() < 1e-14, "{d2}");
        assert!((energy_distance(&x.view(), &y.view()).unwrap() - 4.5_f64.sqrt()).abs() < 1e-14);
    }

    #[test]
    fn one_dimensional_energy_is_twice_cramer() {
        for seed in 0..4 {
            let a = cloud(37, 1, seed);
            let b = cloud(53, 1, 50 + seed).mapv(|v| 1.5 * v + 0.3);
            let d2 = energy_distance2(&a.view(), &b.view()).unwrap();
            let av: Vec<f64> = a.iter().copied().collect();
            let bv: Vec<f64> = b.iter().copied().collect();
            let c = twice_cramer(&av, &bv);
            assert!((d2 - c).abs() < 1e-12, "{d2} vs {c}");
        }
    }

    #[test]
    fn invariances_and_metric_properties() {
        let x = cloud(40, 2, 1);
        let y = cloud(30, 2, 2) * 1.3 + 0.4;
        let z = cloud(35, 2, 3) - 0.7;
        let d = energy_distance(&x.view(), &y.view()).unwrap();
        assert!(d > 0.1);
        // Symmetry.
        assert!((d - energy_distance(&y.view(), &x.view()).unwrap()).abs() < 1e-12);
        // Identical sets, and the same multiset repeated (same empirical measure).
        assert_eq!(energy_distance2(&x.view(), &x.view()).unwrap(), 0.0);
        let xx = ndarray::concatenate![ndarray::Axis(0), x, x];
        assert!(energy_distance2(&x.view(), &xx.view()).unwrap() < 1e-12);
        // Rigid motion (rotation by 0.7 rad and a translation) applied to both sets.
        let (c, s) = (0.7_f64.cos(), 0.7_f64.sin());
        let rot = array![[c, s], [-s, c]];
        let move_ = |m: &Array2<f64>| m.dot(&rot) + array![5.0, -2.0];
        let dr = energy_distance(&move_(&x).view(), &move_(&y).view()).unwrap();
        assert!((dr - d).abs() < 1e-12, "{dr} vs {d}");
        // Degree-1 homogeneity of D^2 under scaling: D^2(cX, cY) = c D^2(X, Y).
        let d2 = energy_distance2(&x.view(), &y.view()).unwrap();
        let d2s = energy_distance2(&(&x * 3.0).view(), &(&y * 3.0).view()).unwrap();
        assert!((d2s - 3.0 * d2).abs() < 1e-12);
        // Triangle inequality of D.
        let dxz = energy_distance(&x.view(), &z.view()).unwrap();
        let dyz = energy_distance(&y.view(), &z.view()).unwrap();
        assert!(d <= dxz + dyz + 1e-12 && dxz <= d + dyz + 1e-12 && dyz <= d + dxz + 1e-12);
        // Moving one set further away increases the distance.
        let far = energy_distance(&x.view(), &(&y + 2.0).view()).unwrap();
        assert!(far > d);
    }

    #[test]
    fn rejects_bad_input() {
        let a = cloud(3, 2, 1);
        assert!(energy_distance(&a.view(), &cloud(3, 1, 2).view()).is_err());
        assert!(energy_distance(&a.view(), &Array2::zeros((0, 2)).view()).is_err());
        let mut nan = a.clone();
        nan[[0, 0]] = f64::NAN;
        assert!(energy_distance(&a.view(), &nan.view()).is_err());
    }
}
