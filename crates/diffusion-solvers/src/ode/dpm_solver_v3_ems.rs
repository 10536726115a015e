//! Empirical model statistics (EMS) of DPM-Solver-v3: the per-coordinate coefficients
//! `l_lambda`, `s_lambda`, `b_lambda` on a uniform log-SNR grid, their running integrals, and their
//! Monte-Carlo estimation from a model.
//!
//! Paper: Zheng, Lu, Chen, Bao, Zhu & Zhu (2023), "DPM-Solver-v3: Improved Diffusion ODE Solver
//! with Empirical Model Statistics", arXiv:2310.13268, Sec. 3.1-3.2 and App. C.1.1 (equation
//! numbers not re-checked here); the integrals follow the reference `dpm_solver_v3.py`
//! (thu-ml/DPM-Solver-v3, `DPM_Solver_v3.__init__`, `weighted_cumsumexp_trapezoid`).
//!
//! With `lambda = ln(alpha / sigma)` and the noise prediction `eps`, the PF-ODE is
//! `dx/dlambda = (d ln alpha / dlambda) x - sigma eps`. DPM-Solver-v3 writes
//! `N = sigma eps - l x` and `f = N / alpha`, so that `d(x / alpha)/dlambda = -l (x / alpha) - f`,
//! and models `f` along a trajectory by `f' ~ s f + b`. The statistics minimize the first-order
//! discretization error:
//! - `l_lambda = argmin E || grad_x N ||_F^2`, per coordinate `l_i = E[sigma d eps_i / d x_i]`
//!   (estimated with Rademacher probes `v`: `E[v_i (J v)_i]`, `J v` by central differences);
//! - `(s_lambda, b_lambda) = argmin E || f' - s f - b ||^2` per coordinate (least squares over the
//!   samples), with `f' = d f(x_lambda, lambda) / dlambda` the total derivative along the exact
//!   ODE path, by central differences along the path (`x +- delta dx/dlambda`), including the
//!   `l'_lambda x` term (central differences of the estimated `l` over the grid).
//!
//! The samples are `x_lambda = alpha x0 + sigma eps` from given data `x0`, with the same `x0` and
//! `eps` at every grid point (common random numbers, so the statistics are smooth in `lambda`).
//! The running integrals are trapezoid sums on the grid, as in the reference:
//! `L = int l`, `S = int s`, `I = int e^{L + S}`, `B = int e^{-S} b`, `C = int e^{L + S} B`.
//! Coordinates: every sample has `dim` entries and the statistics are per entry of one sample;
//! a batch state of `n` samples (row-major, `n * dim` entries) uses entry `k % dim`.

use crate::error::{Result, SolverError};
use crate::ode::evaluate;
use diffusion_core::{CoreError, Denoiser, HostNoise, NoiseSchedule, NoiseSource, State, TimeGrid};

/// EMS on a uniform log-SNR grid, with their running integrals.
#[derive(Debug, Clone)]
pub struct Ems {
    dim: usize,
    lambdas: Vec<f64>,
    times: Vec<f64>,
    alphas: Vec<f64>,
    sigmas: Vec<f64>,
    l: Vec<f64>,
    s: Vec<f64>,
    b: Vec<f64>,
    big_l: Vec<f64>,
    big_s: Vec<f64>,
    big_i: Vec<f64>,
    big_b: Vec<f64>,
    big_c: Vec<f64>,
}

/// Options of [`estimate_ems`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmsOptions {
    /// Number of log-SNR intervals of the grid (the reference ships 1200 for CIFAR-10; a few
    /// hundred suffice for low-dimensional targets).
    pub intervals: usize,
    /// Seed of the noise `eps` and of the Rademacher probes.
    pub seed: u64,
    /// Step in `lambda` of the path derivative.
    pub lambda_step: f64,
    /// Relative step in `x` of the Jacobian-vector product.
    pub x_step: f64,
}

impl Default for EmsOptions {
    fn default() -> Self {
        EmsOptions {
            intervals: 400,
            seed: 0,
            lambda_step: 1e-3,
            x_step: 1e-4,
        }
    }
}

/// The uniform log-SNR grid between `t_start` and `t_end` (`intervals + 1` nodes, increasing
/// `lambda`), with the schedule's coefficients at each node.
struct Nodes {
    lambdas: Vec<f64>,
    times: Vec<f64>,
    alphas: Vec<f64>,
    sigmas: Vec<f64>,
}

fn nodes(
    schedule: &dyn NoiseSchedule,
    t_start: f64,
    t_end: f64,
    intervals: usize,
) -> Result<Nodes> {
    let (l0, l1) = (schedule.lambda(t_start), schedule.lambda(t_end));
    if !(l0.is_finite() && l1.is_finite() && l0 < l1) {
        return Err(SolverError::InvalidParameter {
            name: "t_start/t_end",
            reason: format!(
                "EMS need finite log-SNR with lambda(t_start) < lambda(t_end), got {l0} and {l1}"
            ),
        });
    }
    if intervals < 2 {
        return Err(SolverError::InvalidParameter {
            name: "intervals",
            reason: format!("need at least 2, got {intervals}"),
        });
    }
    let lambdas: Vec<f64> = (0..=intervals)
        .map(|j| l0 + (l1 - l0) * j as f64 / intervals as f64)
        .collect();
    let times: Vec<f64> = lambdas
        .iter()
        .enumerate()
        .map(|(j, &l)| match j {
            0 => t_start,
            j if j == intervals => t_end,
            _ => schedule.t_of_lambda(l),
        })
        .collect();
    let alphas = times.iter().map(|&t| schedule.alpha(t)).collect();
    let sigmas = times.iter().map(|&t| schedule.sigma(t)).collect();
    Ok(Nodes {
        lambdas,
        times,
        alphas,
        sigmas,
    })
}

/// Cumulative trapezoid sums of `values` (per coordinate, `dim` per node) over `lambdas`.
fn cumulative(lambdas: &[f64], values: &[f64], dim: usize) -> Vec<f64> {
    let mut out = vec![0.0; values.len()];
    for j in 1..lambdas.len() {
        let w = 0.5 * (lambdas[j] - lambdas[j - 1]);
        for d in 0..dim {
            out[j * dim + d] =
                out[(j - 1) * dim + d] + w * (values[j * dim + d] + values[(j - 1) * dim + d]);
        }
    }
    out
}

impl Ems {
    /// EMS from given statistics: `l`, `s`, `b` hold `dim` values per node of the uniform
    /// log-SNR grid from `t_start` to `t_end` (`nodes = l.len() / dim`).
    pub fn from_statistics(
        schedule: &dyn NoiseSchedule,
        t_start: f64,
        t_end: f64,
        dim: usize,
        l: Vec<f64>,
        s: Vec<f64>,
        b: Vec<f64>,
    ) -> Result<Self> {
        if dim == 0
            || l.len() % dim != 0
            || l.len() != s.len()
            || l.len() != b.len()
            || l.len() < 3 * dim
        {
            return Err(CoreError::ShapeMismatch {
                context: "EMS l, s, b",
                expected: vec![l.len() / dim.max(1), dim],
                got: vec![l.len(), s.len(), b.len()],
            }
            .into());
        }
        if l.iter().chain(&s).chain(&b).any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite {
                context: "EMS statistics".into(),
            }
            .into());
        }
        let n = nodes(schedule, t_start, t_end, l.len() / dim - 1)?;
        let big_l = cumulative(&n.lambdas, &l, dim);
        let big_s = cumulative(&n.lambdas, &s, dim);
        let e_ls: Vec<f64> = big_l
            .iter()
            .zip(&big_s)
            .map(|(a, b)| (a + b).exp())
            .collect();
        let big_i = cumulative(&n.lambdas, &e_ls, dim);
        let e_b: Vec<f64> = big_s.iter().zip(&b).map(|(s, b)| (-s).exp() * b).collect();
        let big_b = cumulative(&n.lambdas, &e_b, dim);
        let e_lsb: Vec<f64> = e_ls.iter().zip(&big_b).map(|(e, b)| e * b).collect();
        let big_c = cumulative(&n.lambdas, &e_lsb, dim);
        Ok(Ems {
            dim,
            lambdas: n.lambdas,
            times: n.times,
            alphas: n.alphas,
            sigmas: n.sigmas,
            l,
            s,
            b,
            big_l,
            big_s,
            big_i,
            big_b,
            big_c,
        })
    }

    /// The degenerate statistics `l = 1`, `s = b = 0`, under which DPM-Solver-v3 is
    /// DPM-Solver++ (paper App. A.2; the reference's `degenerated=True`).
    pub fn degenerate(
        schedule: &dyn NoiseSchedule,
        t_start: f64,
        t_end: f64,
        intervals: usize,
        dim: usize,
    ) -> Result<Self> {
        let k = (intervals + 1) * dim;
        Self::from_statistics(
            schedule,
            t_start,
            t_end,
            dim,
            vec![1.0; k],
            vec![0.0; k],
            vec![0.0; k],
        )
    }

    /// Entries per sample.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of grid nodes.
    pub fn len(&self) -> usize {
        self.lambdas.len()
    }

    /// `false`: a grid has at least three nodes.
    pub fn is_empty(&self) -> bool {
        self.lambdas.is_empty()
    }

    /// The node times (from `t_start` to `t_end`).
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// The node log-SNRs (increasing).
    pub fn lambdas(&self) -> &[f64] {
        &self.lambdas
    }

    /// `l` at node `i` (`dim` values).
    pub fn l(&self, i: usize) -> &[f64] {
        &self.l[i * self.dim..(i + 1) * self.dim]
    }

    /// `s` at node `i`.
    pub fn s(&self, i: usize) -> &[f64] {
        &self.s[i * self.dim..(i + 1) * self.dim]
    }

    /// `b` at node `i`.
    pub fn b(&self, i: usize) -> &[f64] {
        &self.b[i * self.dim..(i + 1) * self.dim]
    }

    /// `(alpha, sigma)` at node `i`.
    pub(crate) fn coeffs(&self, i: usize) -> (f64, f64) {
        (self.alphas[i], self.sigmas[i])
    }

    /// `(L, S, I, B, C)` at node `i`, coordinate `d`.
    pub(crate) fn integrals(&self, i: usize, d: usize) -> [f64; 5] {
        let k = i * self.dim + d;
        [
            self.big_l[k],
            self.big_s[k],
            self.big_i[k],
            self.big_b[k],
            self.big_c[k],
        ]
    }

    /// `int_{lambda_s}^{lambda_t} e^{L + S - L_s - S_s} (lambda - lambda_s)^n / n! dlambda` by the
    /// trapezoid rule on the nodes `i_s..=i_t`, coordinate `d` (the reference's
    /// `compute_exponential_coefficients_high_order`).
    pub(crate) fn high_order_coefficient(&self, i_s: usize, i_t: usize, n: usize, d: usize) -> f64 {
        let base = self.big_l[i_s * self.dim + d] + self.big_s[i_s * self.dim + d];
        let fact: f64 = (1..=n).map(|k| k as f64).product();
        let f = |j: usize| {
            let k = j * self.dim + d;
            (self.big_l[k] + self.big_s[k] - base).exp()
                * (self.lambdas[j] - self.lambdas[i_s]).powi(n as i32)
                / fact
        };
        (i_s + 1..=i_t)
            .map(|j| 0.5 * (self.lambdas[j] - self.lambdas[j - 1]) * (f(j) + f(j - 1)))
            .sum()
    }

    /// The node whose time is `t` under `schedule` (within `1e-6` in log-SNR), or an error
    /// naming [`Ems::snap`].
    pub fn node_of(&self, schedule: &dyn NoiseSchedule, t: f64) -> Result<usize> {
        let l = schedule.lambda(t);
        let (l0, l1) = (self.lambdas[0], self.lambdas[self.lambdas.len() - 1]);
        let pos = (l - l0) / (l1 - l0) * (self.lambdas.len() - 1) as f64;
        let i = pos.round();
        if l.is_finite() && i >= 0.0 && (i as usize) < self.lambdas.len() {
            let i = i as usize;
            if (self.lambdas[i] - l).abs() <= 1e-6 * (1.0 + l.abs()) {
                return Ok(i);
            }
        }
        Err(SolverError::InvalidParameter {
            name: "grid",
            reason: format!(
                "t = {t} (lambda = {l}) is not a node of the EMS grid; DPM-Solver-v3 steps \
                 between EMS nodes (build the grid with Ems::grid or Ems::snap)"
            ),
        })
    }

    /// `steps` steps uniform in log-SNR over the whole EMS range, snapped to nodes (the
    /// reference's `skip_type='logSNR'` with `convert_to_indexes`).
    pub fn grid(&self, steps: usize) -> Result<TimeGrid> {
        let n = self.lambdas.len() - 1;
        if steps == 0 || steps > n {
            return Err(SolverError::InvalidParameter {
                name: "steps",
                reason: format!("need 1..={n} steps on this EMS grid, got {steps}"),
            });
        }
        let idx: Vec<usize> = (0..=steps)
            .map(|k| ((n * k) as f64 / steps as f64).round() as usize)
            .collect();
        Ok(TimeGrid::new(idx.iter().map(|&i| self.times[i]).collect())?)
    }

    /// `grid` with every time moved to the nearest node in log-SNR; errors if two times land on
    /// the same node or a time lies outside the EMS range.
    pub fn snap(&self, schedule: &dyn NoiseSchedule, grid: &TimeGrid) -> Result<TimeGrid> {
        let n = (self.lambdas.len() - 1) as f64;
        let (l0, l1) = (self.lambdas[0], self.lambdas[self.lambdas.len() - 1]);
        let mut times = Vec::with_capacity(grid.times().len());
        for &t in grid.times() {
            let pos = ((schedule.lambda(t) - l0) / (l1 - l0) * n).round();
            if !(pos >= 0.0 && pos <= n) {
                return Err(SolverError::InvalidParameter {
                    name: "grid",
                    reason: format!("t = {t} lies outside the EMS range"),
                });
            }
            times.push(self.times[pos as usize]);
        }
        Ok(TimeGrid::new(times)?)
    }
}

/// Estimates the EMS of `model` under `schedule` from data samples `data` (a batch state whose
/// entries are `dim` coordinates per sample), on the uniform log-SNR grid from `t_start` to
/// `t_end` (see the module documentation). `5 * (intervals + 1)` model evaluations on the batch.
pub fn estimate_ems<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    data: &S,
    dim: usize,
    t_start: f64,
    t_end: f64,
    options: &EmsOptions,
) -> Result<Ems> {
    let total = data.numel();
    if dim == 0 || total % dim != 0 || total / dim < 2 {
        return Err(CoreError::ShapeMismatch {
            context: "EMS data (at least two samples of `dim` entries)",
            expected: vec![total / dim.max(1), dim],
            got: vec![total],
        }
        .into());
    }
    let n = nodes(schedule, t_start, t_end, options.intervals)?;
    let (lo, hi) = (n.lambdas[0], n.lambdas[n.lambdas.len() - 1]);
    let mut noise = HostNoise::new(options.seed);
    let eps0: S = noise.standard_normal(data);
    let probe_host: Vec<f64> = noise
        .normals(total)
        .into_iter()
        .map(|z| if z < 0.0 { -1.0 } else { 1.0 })
        .collect();
    let probe = data.from_host_like(&probe_host);
    let eps_at =
        |x: &S, t: f64| -> Result<Vec<f64>> { Ok(evaluate(model, schedule, x, t)?.eps.to_host()) };
    let ln_alpha = |l: f64| schedule.alpha(schedule.t_of_lambda(l)).ln();
    let dl = options.lambda_step;
    let nodes_count = n.lambdas.len();
    // Per node: x, sigma eps, d(sigma eps)/dlambda and dx/dlambda along the path, and l.
    let mut xs = Vec::with_capacity(nodes_count);
    let mut ns = Vec::with_capacity(nodes_count);
    let mut dns = Vec::with_capacity(nodes_count);
    let mut vs = Vec::with_capacity(nodes_count);
    let mut dlog_alpha = Vec::with_capacity(nodes_count);
    let mut l = vec![0.0; nodes_count * dim];
    for j in 0..nodes_count {
        let (t, a, s) = (n.times[j], n.alphas[j], n.sigmas[j]);
        let lam = n.lambdas[j];
        let x = data.lincomb(a, &eps0, s);
        let e = eps_at(&x, t)?;
        // l_i = E[sigma v_i (J v)_i], J v by central differences.
        let dx = options.x_step * (1.0 + x.rms());
        let ep = eps_at(&x.axpy(dx, &probe), t)?;
        let em = eps_at(&x.axpy(-dx, &probe), t)?;
        let mut acc = vec![0.0; dim];
        for k in 0..total {
            acc[k % dim] += s * probe_host[k] * (ep[k] - em[k]) / (2.0 * dx);
        }
        let per = (total / dim) as f64;
        for d in 0..dim {
            l[j * dim + d] = acc[d] / per;
        }
        // Path derivative: a stencil inside [lo, hi] (central, or one-sided at the ends).
        let (offs, w): ([f64; 2], [f64; 3]) = if lam - dl < lo {
            ([1.0, 2.0], [-1.5, 2.0, -0.5])
        } else if lam + dl > hi {
            ([-1.0, -2.0], [1.5, -2.0, 0.5])
        } else {
            ([-1.0, 1.0], [0.0, -0.5, 0.5])
        };
        let la = [
            ln_alpha(lam),
            ln_alpha(lam + offs[0] * dl),
            ln_alpha(lam + offs[1] * dl),
        ];
        let dla = (w[0] * la[0] + w[1] * la[1] + w[2] * la[2]) / dl;
        let xh = x.to_host();
        let se: Vec<f64> = e.iter().map(|v| s * v).collect();
        let v: Vec<f64> = xh.iter().zip(&se).map(|(x, n)| dla * x - n).collect();
        let vel = x.from_host_like(&v);
        let mut dn: Vec<f64> = se.iter().map(|n| w[0] * n).collect();
        for (o, wk) in offs.iter().zip(&w[1..]) {
            let tk = schedule.t_of_lambda(lam + o * dl);
            let ek = eps_at(&x.axpy(o * dl, &vel), tk)?;
            let sk = schedule.sigma(tk);
            for (acc, e) in dn.iter_mut().zip(&ek) {
                *acc += wk * sk * e;
            }
        }
        dn.iter_mut().for_each(|v| *v /= dl);
        xs.push(xh);
        ns.push(se);
        dns.push(dn);
        vs.push(v);
        dlog_alpha.push(dla);
    }
    // l' by central differences over the grid (one-sided at the ends).
    let h = n.lambdas[1] - n.lambdas[0];
    let dl_grid = |j: usize, d: usize| -> f64 {
        let at = |i: usize| l[i * dim + d];
        if j == 0 {
            (at(1) - at(0)) / h
        } else if j == nodes_count - 1 {
            (at(j) - at(j - 1)) / h
        } else {
            (at(j + 1) - at(j - 1)) / (2.0 * h)
        }
    };
    // s, b: per coordinate least squares of f' on f.
    let mut s_out = vec![0.0; nodes_count * dim];
    let mut b_out = vec![0.0; nodes_count * dim];
    for j in 0..nodes_count {
        let a = n.alphas[j];
        let mut sums = vec![[0.0f64; 5]; dim]; // sum f, f', f^2, f f', count
        for k in 0..total {
            let d = k % dim;
            let lk = l[j * dim + d];
            let f = (ns[j][k] - lk * xs[j][k]) / a;
            let fp = (dns[j][k] - dl_grid(j, d) * xs[j][k] - lk * vs[j][k]) / a - f * dlog_alpha[j];
            let acc = &mut sums[d];
            acc[0] += f;
            acc[1] += fp;
            acc[2] += f * f;
            acc[3] += f * fp;
            acc[4] += 1.0;
        }
        for d in 0..dim {
            let [sf, sfp, sff, sffp, c] = sums[d];
            let (mf, mfp) = (sf / c, sfp / c);
            let var = sff / c - mf * mf;
            let cov = sffp / c - mf * mfp;
            let slope = if var > 1e-14 * (1.0 + mf * mf) {
                cov / var
            } else {
                0.0
            };
            s_out[j * dim + d] = slope;
            b_out[j * dim + d] = mfp - slope * mf;
        }
    }
    Ems::from_statistics(schedule, t_start, t_end, dim, l, s_out, b_out)
}
