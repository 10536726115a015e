//! DPM-Solver-v3: the multistep ODE solver built on empirical model statistics, with
//! pseudo-order predictor and (pseudo-order) corrector.
//!
//! Paper: Zheng, Lu, Chen, Bao, Zhu & Zhu (2023), "DPM-Solver-v3: Improved Diffusion ODE Solver
//! with Empirical Model Statistics", arXiv:2310.13268, Sec. 3.3-3.4 (multistep predictor, the
//! UniC-style corrector, pseudo-order; equation numbers not re-checked here), following the
//! reference `dpm_solver_v3.py` (thu-ml/DPM-Solver-v3: `multistep_predictor_update`,
//! `multistep_corrector_update`, `sample`).
//!
//! With the EMS of [`Ems`] (`l`, `s`, `b` and their integrals `L, S, I, B, C` on a log-SNR grid)
//! and `f_i = (sigma_i eps_i - l_i x_i) / alpha_i`, `g_i = e^{S_s - S_i} f_i - e^{S_s} (B_i - B_s)`
//! for the points `i` used (base point `s`), one update to node `t` is
//!
//! `x_t = (alpha_t / alpha_s) e^{L_s - L_t} x_s - alpha_t e^{-L_t - S_s} (I_t - I_s) g_s
//!        - alpha_t e^{-L_t} (C_t - C_s - B_s (I_t - I_s))
//!        - sum_{k >= 1} alpha_t e^{L_s - L_t} E_k g^{(k)}`,
//!
//! `E_k = int_s^t e^{L + S - L_s - S_s} (lambda - lambda_s)^k / k!`, with the derivatives
//! `g^{(k)}` from the Taylor coefficients of the polynomial through the points (or, with
//! pseudo-order, from the leading divided differences alone), all per coordinate. The predictor
//! uses the newest points; the corrector, after the model is evaluated at the predicted point,
//! redoes the last update with that new point included (one order higher with pseudo-order) and
//! keeps `N = sigma eps - l x` of the new point, so it costs no evaluation. NFE = steps. Steps
//! must run between EMS nodes ([`Ems::grid`], [`Ems::snap`]) and end at `sigma > 0`.
//! With `l = 1, s = b = 0` ([`Ems::degenerate`]) the solver is DPM-Solver++ (up to the trapezoid
//! rule of the integrals).
//!
//! Host arithmetic: the EMS are per coordinate, which the scalar-coefficient [`State`] algebra
//! cannot express, so each step converts the state and the cached predictions to host vectors
//! (a device synchronization on GPU tensors).

use super::dpm_solver_v3_ems::Ems;
use super::solve_dense;
use crate::error::{Result, SolverError};
use crate::solver::{Cache, Eval, Solver, Step};
use diffusion_core::{BrownianPath, State};
use std::sync::Arc;

/// Which corrector DPM-Solver-v3 applies (the reference's `use_corrector` and `c_pseudo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V3Corrector {
    /// No corrector.
    None,
    /// A corrector of the predictor's order.
    SameOrder,
    /// A pseudo-order corrector one order higher (the reference default).
    PseudoOrder,
}

/// DPM-Solver-v3 with its EMS, predictor order (1..=3), pseudo-order predictor, corrector and
/// lower-order final steps.
#[derive(Debug, Clone)]
pub struct DpmSolverV3 {
    ems: Arc<Ems>,
    order: usize,
    predictor_pseudo: bool,
    corrector: V3Corrector,
    lower_order_final: bool,
}

/// A point of the multistep history on the host.
struct Point {
    node: usize,
    x: Vec<f64>,
    eps: Vec<f64>,
}

impl DpmSolverV3 {
    /// DPM-Solver-v3 of `order` (1..=3) with the reference defaults: no pseudo-order predictor,
    /// pseudo-order corrector, lower-order final steps.
    pub fn new(ems: Arc<Ems>, order: usize) -> Result<Self> {
        if !(1..=3).contains(&order) {
            return Err(SolverError::InvalidParameter {
                name: "order",
                reason: format!("DPM-Solver-v3 has orders 1..=3, got {order}"),
            });
        }
        Ok(DpmSolverV3 {
            ems,
            order,
            predictor_pseudo: false,
            corrector: V3Corrector::PseudoOrder,
            lower_order_final: true,
        })
    }

    /// With the given corrector.
    pub fn with_corrector(mut self, corrector: V3Corrector) -> Self {
        self.corrector = corrector;
        self
    }

    /// With (or without) the pseudo-order predictor.
    pub fn with_pseudo_predictor(mut self, on: bool) -> Self {
        self.predictor_pseudo = on;
        self
    }

    /// With (or without) lower-order final steps.
    pub fn with_lower_order_final(mut self, on: bool) -> Self {
        self.lower_order_final = on;
        self
    }

    /// The predictor order of step `index` of `n_steps` (warm-up and lower-order final steps).
    fn predictor_order(&self, index: usize, n_steps: usize) -> usize {
        let mut p = (index + 1).min(self.order);
        if self.lower_order_final {
            p = p.min(n_steps - index);
        }
        p.max(1)
    }

    /// The EMS value `v` (per coordinate) tiled over a state of `len` entries.
    fn at(&self, v: &[f64], k: usize) -> f64 {
        v[k % self.ems.dim()]
    }

    /// One multistep update from `points[0]` to node `i_t` using all `points` (the reference's
    /// predictor and corrector share it: the corrector passes `[s, t, older...]`).
    fn update(&self, points: &[&Point], i_t: usize, pseudo: bool) -> Result<Vec<f64>> {
        let ems = &self.ems;
        let dim = ems.dim();
        let base = points[0];
        let i_s = base.node;
        if i_t <= i_s {
            return Err(SolverError::InvalidParameter {
                name: "grid",
                reason: "DPM-Solver-v3 steps towards larger log-SNR (decreasing noise)".into(),
            });
        }
        let (a_s, _) = ems.coeffs(i_s);
        let (a_t, _) = ems.coeffs(i_t);
        let len = base.x.len();
        // g_i for every point.
        let gs: Vec<Vec<f64>> = points
            .iter()
            .map(|p| {
                let (a_i, s_i) = ems.coeffs(p.node);
                let l_i = ems.l(p.node);
                (0..len)
                    .map(|k| {
                        let d = k % dim;
                        let [_, ss, _, bs, _] = ems.integrals(i_s, d);
                        let [_, si, _, bi, _] = ems.integrals(p.node, d);
                        let f = (s_i * p.eps[k] - self.at(l_i, k) * p.x[k]) / a_i;
                        (ss - si).exp() * f - ss.exp() * (bi - bs)
                    })
                    .collect()
            })
            .collect();
        let mut out: Vec<f64> = (0..len)
            .map(|k| {
                let d = k % dim;
                let [ls, ss, is, bs, cs] = ems.integrals(i_s, d);
                let [lt, _, it, _, ct] = ems.integrals(i_t, d);
                a_t / a_s * (ls - lt).exp() * base.x[k]
                    - a_t * (-lt - ss).exp() * (it - is) * gs[0][k]
                    - a_t * (-lt).exp() * (ct - cs - bs * (it - is))
            })
            .collect();
        let n = points.len() - 1;
        if n > 0 {
            let lams: Vec<f64> = points.iter().map(|p| ems.lambdas()[p.node]).collect();
            let derivs = derivatives(&lams, &gs, pseudo)?;
            for (k_order, g_k) in derivs.iter().enumerate() {
                let order = k_order + 1;
                let coef: Vec<f64> = (0..dim)
                    .map(|d| {
                        let [ls, ..] = ems.integrals(i_s, d);
                        let [lt, ..] = ems.integrals(i_t, d);
                        a_t * (ls - lt).exp() * ems.high_order_coefficient(i_s, i_t, order, d)
                    })
                    .collect();
                for (k, o) in out.iter_mut().enumerate() {
                    *o -= coef[k % dim] * g_k[k];
                }
            }
        }
        Ok(out)
    }
}

/// `g^{(1)}, ..., g^{(n)}` at `lams[0]` from the values `gs` at `lams` (`n + 1` points): the
/// Taylor coefficients of the interpolating polynomial times `k!`, or with `pseudo` the leading
/// divided differences times `k!` (the reference's `compute_high_order_derivatives`).
fn derivatives(lams: &[f64], gs: &[Vec<f64>], pseudo: bool) -> Result<Vec<Vec<f64>>> {
    let n = lams.len() - 1;
    let len = gs[0].len();
    let fact = |k: usize| (1..=k).map(|i| i as f64).product::<f64>();
    if pseudo {
        let mut table: Vec<Vec<Vec<f64>>> = vec![gs.to_vec()];
        for i in 1..=n {
            let prev = &table[i - 1];
            let row: Vec<Vec<f64>> = (0..=n - i)
                .map(|j| {
                    let den = lams[j] - lams[i + j];
                    (0..len)
                        .map(|k| (prev[j][k] - prev[j + 1][k]) / den)
                        .collect()
                })
                .collect();
            table.push(row);
        }
        return Ok((1..=n)
            .map(|i| table[i][0].iter().map(|v| v * fact(i)).collect())
            .collect());
    }
    // R c = g_j - g_0 with R[j][i] = (lams[j + 1] - lams[0])^(i + 1): invert R once.
    let r: Vec<Vec<f64>> = (1..=n)
        .map(|j| {
            (1..=n)
                .map(|i| (lams[j] - lams[0]).powi(i as i32))
                .collect()
        })
        .collect();
    let inv: Vec<Vec<f64>> = (0..n)
        .map(|c| {
            let e: Vec<f64> = (0..n).map(|i| if i == c { 1.0 } else { 0.0 }).collect();
            solve_dense(r.clone(), e)
        })
        .collect::<Result<_>>()?;
    // inv[c] is column c of R^{-1}: coefficient i = sum_c inv[c][i] (g_{c+1} - g_0).
    Ok((0..n)
        .map(|i| {
            (0..len)
                .map(|k| {
                    let c: f64 = (0..n).map(|c| inv[c][i] * (gs[c + 1][k] - gs[0][k])).sum();
                    c * fact(i + 1)
                })
                .collect()
        })
        .collect())
}

impl<S: State> Solver<S> for DpmSolverV3 {
    fn name(&self) -> String {
        let c = match self.corrector {
            V3Corrector::None => "none",
            V3Corrector::SameOrder => "same",
            V3Corrector::PseudoOrder => "pseudo",
        };
        format!(
            "dpm-solver-v3:order={},corrector={c},pseudo_predictor={},lower_order_final={}",
            self.order, self.predictor_pseudo, self.lower_order_final
        )
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
        let ems = &self.ems;
        let i0 = ems.node_of(step.schedule, step.t0)?;
        let i1 = ems.node_of(step.schedule, step.t1)?;
        let e = step.eval(&x, step.t0)?;
        let mut cur = Point {
            node: i0,
            x: x.to_host(),
            eps: e.eps.to_host(),
        };
        let history: Vec<Point> = (0..cache.len())
            .map(|j| {
                let h = cache.back(j).expect("within length");
                let node = ems.node_of(step.schedule, h.t)?;
                let (a, s) = ems.coeffs(node);
                Ok(Point {
                    node,
                    x: h.x0.lincomb(a, &h.eps, s).to_host(),
                    eps: h.eps.to_host(),
                })
            })
            .collect::<Result<_>>()?;
        // Corrector: redo the previous update with the new point, keeping N = sigma eps - l x.
        if self.corrector != V3Corrector::None && step.index >= 1 && !history.is_empty() {
            let pseudo = self.corrector == V3Corrector::PseudoOrder;
            let c_order = self.predictor_order(step.index - 1, step.n_steps) + usize::from(pseudo);
            if c_order > 1 && history.len() + 1 >= c_order {
                let mut pts: Vec<&Point> = vec![&history[0], &cur];
                pts.extend(history[1..].iter().take(c_order - 2));
                let x_new = self.update(&pts, i0, pseudo)?;
                let (_, s0) = ems.coeffs(i0);
                let l0 = ems.l(i0);
                let eps_new: Vec<f64> = (0..x_new.len())
                    .map(|k| {
                        let lk = self.at(l0, k);
                        (s0 * cur.eps[k] - lk * cur.x[k] + lk * x_new[k]) / s0
                    })
                    .collect();
                cur = Point {
                    node: i0,
                    x: x_new,
                    eps: eps_new,
                };
            }
        }
        let p_order = self
            .predictor_order(step.index, step.n_steps)
            .min(history.len() + 1);
        let mut pts: Vec<&Point> = vec![&cur];
        pts.extend(history.iter().take(p_order - 1));
        let x1 = self.update(&pts, i1, self.predictor_pseudo)?;
        // Cache the (possibly corrected) point as (x0, eps) with x = alpha x0 + sigma eps.
        let (a0, s0) = ems.coeffs(i0);
        let xs = x.from_host_like(&cur.x);
        let eps = x.from_host_like(&cur.eps);
        let x0 = xs.lincomb(1.0 / a0, &eps, -s0 / a0);
        cache.push(Eval { t: e.t, x0, eps }, 3);
        Ok(x.from_host_like(&x1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_of_a_cubic_are_exact() {
        // g(lambda) = 1 + 2 u + 3 u^2 + 4 u^3 with u = lambda - 0.5: g' = 2, g'' = 6, g''' = 24.
        let lams = [0.5, 0.2, 0.0, -0.4];
        let g = |l: f64| {
            let u = l - 0.5;
            1.0 + 2.0 * u + 3.0 * u * u + 4.0 * u * u * u
        };
        let gs: Vec<Vec<f64>> = lams.iter().map(|&l| vec![g(l)]).collect();
        let d = derivatives(&lams, &gs, false).unwrap();
        for (got, want) in d.iter().zip([2.0, 6.0, 24.0]) {
            assert!((got[0] - want).abs() < 1e-9, "{d:?}");
        }
        // Pseudo-order: the first divided difference over two points is the secant slope.
        let d = derivatives(&lams[..2], &gs[..2], true).unwrap();
        assert!((d[0][0] - (g(0.5) - g(0.2)) / 0.3).abs() < 1e-12);
    }
}
