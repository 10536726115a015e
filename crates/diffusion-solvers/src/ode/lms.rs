//! Linear multistep (variable-step Adams-Bashforth) on the PF-ODE in EDM coordinates
//! (k-diffusion's `sample_lms`).
//!
//! Paper: Hairer, Norsett & Wanner (1993), "Solving Ordinary Differential Equations I", 2nd ed.,
//! Springer, Sec. III.5, Eq. (5.3) (explicit Adams methods on variable grids), applied to the
//! EDM probability-flow ODE `dy/drho = eps_hat` of Karras, Aittala, Aila & Laine (2022),
//! arXiv:2206.00364, Eq. (4), as k-diffusion does (Crowson, `sample_lms`,
//! `linear_multistep_coeff`). Step `i` uses the `m = min(i + 1, order)` newest slopes at noise
//! levels `rho_i, rho_{i-1}, ...`:
//! `y_{i+1} = y_i + sum_j c_j eps_{i-j}`, `c_j = int_{rho_i}^{rho_{i+1}} L_j(r) dr`, where `L_j`
//! is the Lagrange basis polynomial of node `rho_{i-j}`. k-diffusion integrates `L_j` with
//! adaptive quadrature (`epsrel = 1e-4`); here a 4-point Gauss-Legendre rule integrates these
//! polynomials of degree <= 3 exactly (up to rounding), so the coefficients are exact. The
//! newest slopes and their times live in the [`Cache`]'s noise history (`ensure_current_eps`:
//! no `x0_hat` pass), and the update goes straight into the state, two slopes a pass, the last
//! pass checking the result (`eps_history_update`). The step to noise level 0 is an ordinary
//! LMS step (the Lagrange integral to `rho = 0` is finite), as in k-diffusion.
//!
//! Declared order: `order` (the global order of the `order`-step Adams-Bashforth method). The
//! first `order - 1` steps bootstrap with lower order, as k-diffusion does; their error is
//! formally of order 1-2 in the step size but is multiplied by the slope's variation at the
//! highest noise levels, which is tiny (see the tests for the fitted slopes).

use super::{ensure_current_eps, eps_history_update, Level};
use crate::error::{Result, SolverError};
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// The largest supported number of steps (k-diffusion's default).
pub const MAX_LMS_ORDER: usize = 4;

/// Linear multistep (Adams-Bashforth in noise level) of order 1 to [`MAX_LMS_ORDER`]:
/// 1 evaluation per step.
#[derive(Debug, Clone, Copy)]
pub struct Lms {
    order: usize,
}

impl Default for Lms {
    fn default() -> Self {
        Lms {
            order: MAX_LMS_ORDER,
        }
    }
}

impl Lms {
    /// LMS using the `order` newest slopes (`1 <= order <= 4`; 1 is Euler).
    pub fn new(order: usize) -> Result<Self> {
        if !(1..=MAX_LMS_ORDER).contains(&order) {
            return Err(SolverError::InvalidParameter {
                name: "order",
                reason: format!("must be an integer from 1 to {MAX_LMS_ORDER}, got {order}"),
            });
        }
        Ok(Lms { order })
    }
}

/// Gauss-Legendre nodes and weights on `[-1, 1]` (4 points: exact for degree <= 7).
pub(crate) const GAUSS_LEGENDRE_4: [(f64, f64); 4] = [
    (-0.861_136_311_594_052_6, 0.347_854_845_137_453_85),
    (-0.339_981_043_584_856_3, 0.652_145_154_862_546_2),
    (0.339_981_043_584_856_3, 0.652_145_154_862_546_2),
    (0.861_136_311_594_052_6, 0.347_854_845_137_453_85),
];

/// `int_a^b L_j(r) dr` for every Lagrange basis polynomial `L_j` of the (distinct) `nodes`.
pub(crate) fn lagrange_integrals(nodes: &[f64], a: f64, b: f64) -> Vec<f64> {
    let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
    (0..nodes.len())
        .map(|j| {
            let basis = |r: f64| {
                nodes
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != j)
                    .map(|(_, &nk)| (r - nk) / (nodes[j] - nk))
                    .product::<f64>()
            };
            half * GAUSS_LEGENDRE_4
                .iter()
                .map(|&(xi, w)| w * basis(mid + half * xi))
                .sum::<f64>()
        })
        .collect()
}

impl<S: State> Solver<S> for Lms {
    fn name(&self) -> String {
        format!("lms(order={})", self.order)
    }
    fn order(&self) -> f64 {
        self.order as f64
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        _noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        let history = ensure_current_eps(step, &x, cache, self.order)?;
        let (from, to) = (Level::at(sch, step.t0), Level::at(sch, step.t1));
        let m = self.order.min(history + 1);
        let nodes: Vec<f64> = (0..m)
            .map(|j| sch.noise_ratio(cache.back_eps(j).expect("history").0))
            .collect();
        let c: Vec<f64> = lagrange_integrals(&nodes, from.rho, to.rho)
            .iter()
            .map(|cj| to.alpha * cj)
            .collect();
        Ok(eps_history_update(x, cache, to.alpha / from.alpha, &c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lagrange_integrals_are_exact_for_cubics() {
        // Integrating the interpolant of r^3 (4 nodes) over [a, b] must give (b^4 - a^4) / 4;
        // the coefficients of 1 and 2 nodes are the Euler and the two-step Adams ones.
        let nodes = [2.0, 3.5, 5.0, 9.0];
        let (a, b) = (2.0, 0.7);
        let c = lagrange_integrals(&nodes, a, b);
        let got: f64 = c.iter().zip(&nodes).map(|(c, n)| c * n.powi(3)).sum();
        assert!((got - (b.powi(4) - a.powi(4)) / 4.0).abs() < 1e-12, "{got}");
        assert!((lagrange_integrals(&[2.0], a, b)[0] - (b - a)).abs() < 1e-15);
        // Two nodes, uniform step -h: AB2 weights (3/2, -1/2) times the step.
        let c2 = lagrange_integrals(&[2.0, 3.0], 2.0, 1.0);
        assert!(
            (c2[0] + 1.5).abs() < 1e-14 && (c2[1] - 0.5).abs() < 1e-14,
            "{c2:?}"
        );
    }

    #[test]
    fn order_is_validated() {
        assert!(Lms::new(0).is_err());
        assert!(Lms::new(5).is_err());
        assert!(Lms::new(3).is_ok());
    }
}
