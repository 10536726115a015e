//! The linear assignment problem, solved exactly in `O(n^2 m)` time by shortest augmenting paths
//! with dual potentials (the Hungarian method in the Jonker-Volgenant form).
//!
//! Paper: Kuhn (1955), "The Hungarian method for the assignment problem", Naval Research
//! Logistics Quarterly 2; Jonker & Volgenant (1987), "A shortest augmenting path algorithm for
//! dense and sparse linear assignment problems", Computing 38(4):325-340 (Dijkstra-like
//! augmentation on reduced costs `c_ij - u_i - v_j`, one row added per phase).
//!
//! Given an `n x m` cost matrix with `n <= m`, [`solve_assignment`] finds distinct columns
//! `col[i]` minimizing `sum_i c[i, col[i]]`. It also returns dual potentials `u` (rows) and
//! `v` (columns) with `u_i + v_j <= c_ij` everywhere, `v_j <= 0`, equality on the assignment and
//! `sum u + sum v = cost`: a certificate that the assignment is optimal (LP duality), which the
//! tests check on matrices too large to enumerate.

use crate::error::{CoreError, Result};
use ndarray::ArrayView2;

/// An optimal assignment of rows to distinct columns, with its dual certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// `cols[i]` is the column assigned to row `i` (all distinct).
    pub cols: Vec<usize>,
    /// The minimal total cost `sum_i c[i, cols[i]]`.
    pub cost: f64,
    /// Row potentials `u_i` of the dual problem.
    pub row_potentials: Vec<f64>,
    /// Column potentials `v_j <= 0` of the dual problem (`0` on unassigned columns).
    pub col_potentials: Vec<f64>,
}

/// Solves the assignment problem for an `n x m` cost matrix with `n <= m`: every row gets a
/// distinct column and the total cost is minimal. Costs may be negative. `O(n^2 m)` time,
/// `O(m)` extra memory. Errors on `n > m` (transpose the matrix) and on non-finite costs.
pub fn solve_assignment(cost: &ArrayView2<'_, f64>) -> Result<Assignment> {
    let (n, m) = cost.dim();
    if n > m {
        return Err(CoreError::invalid(
            "cost",
            format!("need no more rows than columns, got {n} x {m} (transpose it)"),
        ));
    }
    if cost.iter().any(|c| !c.is_finite()) {
        return Err(CoreError::NonFinite {
            context: "assignment cost matrix".into(),
        });
    }
    // 1-based arrays; column 0 is the virtual column that holds the row being inserted.
    let mut u = vec![0.0_f64; n + 1];
    let mut v = vec![0.0_f64; m + 1];
    let mut row_of = vec![0usize; m + 1]; // row_of[j]: row assigned to column j (0 = free)
    let mut way = vec![0usize; m + 1]; // predecessor column on the shortest path
    let mut minv = vec![0.0_f64; m + 1];
    let mut used = vec![false; m + 1];
    for i in 1..=n {
        row_of[0] = i;
        let mut j0 = 0usize;
        minv.iter_mut().for_each(|x| *x = f64::INFINITY);
        used.iter_mut().for_each(|x| *x = false);
        loop {
            used[j0] = true;
            let i0 = row_of[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            for j in 1..=m {
                if !used[j] {
                    let cur = cost[[i0 - 1, j - 1]] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            if j1 == 0 {
                // Unreachable for n <= m and finite costs; a typed error rather than a panic.
                return Err(CoreError::NonFinite {
                    context: "assignment reduced costs".into(),
                });
            }
            for j in 0..=m {
                if used[j] {
                    u[row_of[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if row_of[j0] == 0 {
                break;
            }
        }
        // Augment along the path back to the virtual column.
        loop {
            let j1 = way[j0];
            row_of[j0] = row_of[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut cols = vec![0usize; n];
    for j in 1..=m {
        if row_of[j] != 0 {
            cols[row_of[j] - 1] = j - 1;
        }
    }
    let total = cols.iter().enumerate().map(|(i, &j)| cost[[i, j]]).sum();
    Ok(Assignment {
        cols,
        cost: total,
        row_potentials: u[1..].to_vec(),
        col_potentials: v[1..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::HostNoise;
    use ndarray::{array, Array2};

    /// Minimal cost over all injective row -> column maps, by enumeration.
    fn brute_force(c: &Array2<f64>) -> f64 {
        fn rec(c: &Array2<f64>, i: usize, used: &mut Vec<bool>, acc: f64, best: &mut f64) {
            if i == c.nrows() {
                *best = best.min(acc);
                return;
            }
            for j in 0..c.ncols() {
                if !used[j] {
                    used[j] = true;
                    rec(c, i + 1, used, acc + c[[i, j]], best);
                    used[j] = false;
                }
            }
        }
        let mut best = f64::INFINITY;
        rec(c, 0, &mut vec![false; c.ncols()], 0.0, &mut best);
        best
    }

    fn random_cost(n: usize, m: usize, seed: u64) -> Array2<f64> {
        Array2::from_shape_vec((n, m), HostNoise::new(seed).normals(n * m)).unwrap()
    }

    fn check_certificate(c: &Array2<f64>, a: &Assignment) {
        let tol = 1e-9;
        let mut seen = vec![false; c.ncols()];
        for &j in &a.cols {
            assert!(!seen[j], "column {j} assigned twice");
            seen[j] = true;
        }
        for i in 0..c.nrows() {
            for j in 0..c.ncols() {
                let slack = c[[i, j]] - a.row_potentials[i] - a.col_potentials[j];
                assert!(slack > -tol, "dual infeasible at ({i},{j}): {slack}");
            }
            let j = a.cols[i];
            let slack = c[[i, j]] - a.row_potentials[i] - a.col_potentials[j];
            assert!(
                slack.abs() < tol,
                "complementary slackness at ({i},{j}): {slack}"
            );
        }
        assert!(a.col_potentials.iter().all(|v| *v <= tol));
        let dual: f64 = a.row_potentials.iter().chain(&a.col_potentials).sum();
        assert!((dual - a.cost).abs() < tol, "duality gap {}", dual - a.cost);
    }

    #[test]
    fn matches_brute_force_on_random_square_and_rectangular_costs() {
        for n in 1..=7 {
            for m in [n, n + 1] {
                for seed in 0..6 {
                    let c = random_cost(n, m, 1000 * n as u64 + 10 * m as u64 + seed);
                    let a = solve_assignment(&c.view()).unwrap();
                    let best = brute_force(&c);
                    assert!(
                        (a.cost - best).abs() < 1e-12,
                        "n={n} m={m} seed={seed}: {} vs {best}",
                        a.cost
                    );
                    check_certificate(&c, &a);
                }
            }
        }
    }

    #[test]
    fn known_cases() {
        // Classic 3x3: rows 0 -> 1, 1 -> 0, 2 -> 2 with cost 1 + 2 + 2 = 5.
        let c = array![[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]];
        let a = solve_assignment(&c.view()).unwrap();
        assert_eq!(a.cols, vec![1, 0, 2]);
        assert_eq!(a.cost, 5.0);
        // A permutation matrix of zeros in a sea of ones is recovered exactly.
        let perm = [3, 0, 4, 1, 2];
        let mut c = Array2::from_elem((5, 5), 1.0);
        for (i, &j) in perm.iter().enumerate() {
            c[[i, j]] = 0.0;
        }
        let a = solve_assignment(&c.view()).unwrap();
        assert_eq!(a.cols, perm.to_vec());
        assert_eq!(a.cost, 0.0);
        // Negative costs (maximizing the weights by negation): the diagonal -1 - 7 beats -2 - 3.
        let c = array![[-1.0, -2.0], [-3.0, -7.0]];
        let a = solve_assignment(&c.view()).unwrap();
        assert_eq!(a.cols, vec![0, 1]);
        assert_eq!(a.cost, -8.0);
        // Rectangular: the cheapest entry (row 0, column 2) is not in the optimum: 5 + 2 < 1 + 7.
        let c = array![[5.0, 9.0, 1.0], [7.0, 8.0, 2.0]];
        let a = solve_assignment(&c.view()).unwrap();
        assert_eq!(a.cols, vec![0, 2]);
        assert_eq!(a.cost, 7.0);
        // Empty problem.
        let e = Array2::<f64>::zeros((0, 3));
        assert_eq!(solve_assignment(&e.view()).unwrap().cost, 0.0);
    }

    #[test]
    fn dual_certificate_holds_on_larger_problems() {
        for (n, m, seed) in [(40, 40, 1), (30, 55, 2), (80, 80, 3)] {
            let c = random_cost(n, m, seed).mapv(|v| v.abs() * 10.0);
            let a = solve_assignment(&c.view()).unwrap();
            check_certificate(&c, &a);
        }
        // Integer costs with many ties.
        let mut noise = HostNoise::new(9);
        let c = Array2::from_shape_fn((25, 25), |_| (noise.uniform() * 4.0).floor());
        let a = solve_assignment(&c.view()).unwrap();
        check_certificate(&c, &a);
    }

    #[test]
    fn rejects_bad_input() {
        let tall = Array2::<f64>::zeros((3, 2));
        assert!(solve_assignment(&tall.view()).is_err());
        let nan = array![[0.0, f64::NAN], [1.0, 2.0]];
        assert!(solve_assignment(&nan.view()).is_err());
        let inf = array![[0.0, f64::INFINITY], [1.0, 2.0]];
        assert!(solve_assignment(&inf.view()).is_err());
    }
}
