//! Align Your Steps: sampling schedules that minimize a KL upper bound (KLUB) between the true
//! generative SDE and the SDE its discretization solves.
//!
//! Paper: Sabour, Fidler & Kreis (2024), "Align Your Steps: Optimizing Sampling Schedules in
//! Diffusion Models", arXiv:2404.14507, Sec. 3.2-3.3, Eq. (10)-(12), Alg. 1, App. A.3 and B.1.
//! In EDM coordinates (`y = x / alpha`, noise level `s = sigma / alpha`) the generative SDE is
//! `dy = -2 (D(y; s) - y) / s ds + sqrt(2 s) dW`. Stochastic DDIM (`eta = 1`) on the levels
//! `s_0 > s_1 > ... > s_n` solves exactly the SDE whose denoiser is frozen at the start of each
//! step (`D(y_{s_i}; s_i)` on `[s_{i+1}, s_i]`). By Girsanov's theorem the KL divergence between
//! the two is at most
//! `KLUB = sum_i int_{s_{i+1}}^{s_i} s^{-3} E ||D(y_s; s) - D(y_{s_i}; s_i)||^2 ds`, the
//! expectation over the forward process: `y_s = x0 + s z1`, `y_{s_i} = y_s + sqrt(s_i^2 - s^2) z2` (Eq. 10 with
//! `sigma(t) = t`, `s(t) = 1`). The schedule minimizes the KLUB over the interior levels with the
//! ends fixed, by Alg. 1: sweep over the interior levels in order; for each, evaluate the two
//! intervals it bounds at `candidates` values around it (the current one included, so the KLUB
//! never rises) and move it to the best; repeat until nothing moves.
//!
//! Early stopping (Sec. 3.3, App. A.3): the KLUB bounds the path-space divergence, not the error of
//! the samples, and its minimizer over-resolves the low-noise end. The paper stops the first
//! optimization early, judged by a sample-quality proxy; [`optimize_ays`] takes such a proxy
//! (`validate`, lower is better), evaluates it after every sweep and returns the best grid,
//! stopping after `patience` sweeps without improvement. Without a proxy, `max_sweeps` is the
//! stopping rule. [`refine_ays`] is the paper's subdivision stage: it doubles the steps by
//! inserting the log-midpoint of every step and optimizes only the new levels (their neighbours
//! frozen, so no early stopping is needed).
//!
//! Implementation choices (deviations from the paper's Alg. 2 estimator): each interval's integral
//! uses Gauss-Legendre quadrature in `ln s` (`ds / s^3 = e^{-2u} du`) instead of importance-sampled
//! times, and the Monte Carlo expectation uses one fixed set of draws `(z1, z2)` per quadrature
//! node for the whole run (common random numbers), which makes the objective a deterministic
//! function of the levels. Candidates are equally spaced in `ln s` up to half-way to each
//! neighbour. The norm is the mean squared entry (the paper's squared norm divided by the number
//! of entries), which does not move the minimizer. A final step to noise level 0 (a grid ending
//! where `sigma = 0`) is kept as is: its KLUB is infinite for any schedule.

use crate::error::{Result, SolverError};
use diffusion_core::{denoise, Denoiser, NoiseSchedule, NoiseSource, State, TimeGrid};

/// Settings of [`optimize_ays`] and [`refine_ays`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AysOptions {
    /// Maximum number of sweeps over the interior levels.
    pub max_sweeps: usize,
    /// Gauss-Legendre nodes per interval.
    pub nodes: usize,
    /// Candidate values per level and sweep, the current one included (odd, at least 3; the
    /// paper uses 11).
    pub candidates: usize,
    /// With a validation proxy: stop after this many sweeps without a better proxy value.
    pub patience: usize,
}

impl Default for AysOptions {
    fn default() -> Self {
        AysOptions {
            max_sweeps: 12,
            nodes: 6,
            candidates: 11,
            patience: 3,
        }
    }
}

impl AysOptions {
    fn check(&self) -> Result<()> {
        let bad = |name, reason: String| Err(SolverError::InvalidParameter { name, reason });
        if self.max_sweeps == 0 {
            return bad("max_sweeps", "must be at least 1".into());
        }
        if !(1..=64).contains(&self.nodes) {
            return bad("nodes", format!("must lie in 1..=64, got {}", self.nodes));
        }
        if self.candidates < 3 || self.candidates % 2 == 0 {
            return bad(
                "candidates",
                format!("must be odd and at least 3, got {}", self.candidates),
            );
        }
        if self.patience == 0 {
            return bad("patience", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Gauss-Legendre nodes and weights on `[-1, 1]` (Newton's method on `P_n`).
fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut xs = vec![0.0; n];
    let mut ws = vec![0.0; n];
    for i in 0..n {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 1 { x } else { p1 };
            let pm = if n == 1 { 1.0 } else { p0 };
            dp = n as f64 * (x * pn - pm) / (x * x - 1.0);
            let dx = pn / dp;
            x -= dx;
            if dx.abs() < 1e-15 {
                break;
            }
        }
        xs[i] = x;
        ws[i] = 2.0 / ((1.0 - x * x) * dp * dp);
    }
    (xs, ws)
}

/// The KLUB of a model on a data batch, with frozen Monte Carlo draws (see the module docs).
pub struct Klub<'a, S> {
    model: &'a dyn Denoiser<S>,
    schedule: &'a dyn NoiseSchedule,
    data: &'a S,
    z1: Vec<S>,
    z2: Vec<S>,
    nodes: Vec<f64>,
    weights: Vec<f64>,
}

impl<S> std::fmt::Debug for Klub<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Klub")
            .field("schedule", &self.schedule.name())
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl<'a, S: State> Klub<'a, S> {
    /// Draws the Monte Carlo noise (two states shaped like `data` per quadrature node) once.
    /// `data` is a batch of clean samples from the data law, in the model's own coordinates.
    pub fn new(
        model: &'a dyn Denoiser<S>,
        schedule: &'a dyn NoiseSchedule,
        data: &'a S,
        nodes: usize,
        noise: &mut dyn NoiseSource<S>,
    ) -> Result<Self> {
        if !(1..=64).contains(&nodes) {
            return Err(SolverError::InvalidParameter {
                name: "nodes",
                reason: format!("must lie in 1..=64, got {nodes}"),
            });
        }
        let (xs, ws) = gauss_legendre(nodes);
        let z1 = (0..nodes).map(|_| noise.standard_normal(data)).collect();
        let z2 = (0..nodes).map(|_| noise.standard_normal(data)).collect();
        Ok(Klub {
            model,
            schedule,
            data,
            z1,
            z2,
            nodes: xs,
            weights: ws,
        })
    }

    /// The EDM denoiser `D(y; s)`: the model's `x0_hat` at `x = alpha y`, `t = t(s)`.
    fn denoise_edm(&self, y: &S, level: f64) -> Result<S> {
        let t = self.schedule.t_of_noise_ratio(level);
        let x = y.scale(self.schedule.alpha(t));
        Ok(denoise(self.model, self.schedule, &x, t)?.0)
    }

    /// `int_lo^hi s^{-3} E ||D(y_s; s) - D(y_hi; hi)||^2 ds` for noise levels `0 < lo < hi`.
    pub fn interval(&self, lo: f64, hi: f64) -> Result<f64> {
        if !(lo > 0.0 && lo < hi && hi.is_finite()) {
            return Err(SolverError::InvalidParameter {
                name: "levels",
                reason: format!("need 0 < lo < hi < inf, got {lo} and {hi}"),
            });
        }
        let (ua, ub) = (lo.ln(), hi.ln());
        let (mid, half) = (0.5 * (ua + ub), 0.5 * (ub - ua));
        let mut total = 0.0;
        for q in 0..self.nodes.len() {
            let s = (mid + half * self.nodes[q]).exp();
            let y = self.data.lincomb(1.0, &self.z1[q], s);
            let y_hi = y.lincomb(1.0, &self.z2[q], (hi * hi - s * s).max(0.0).sqrt());
            let d = self.denoise_edm(&y, s)?;
            let d_hi = self.denoise_edm(&y_hi, hi)?;
            let r = d.lincomb(1.0, &d_hi, -1.0).rms();
            total += half * self.weights[q] * r * r / (s * s);
        }
        Ok(total)
    }

    /// The KLUB of a strictly decreasing list of positive noise levels (the sum over its steps).
    pub fn total(&self, levels: &[f64]) -> Result<f64> {
        levels.windows(2).map(|w| self.interval(w[1], w[0])).sum()
    }
}

/// One sweep of [`optimize_ays`]: the KLUB after it and the validation proxy, if one was given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AysSweep {
    /// KLUB of the grid after the sweep (sweep 0: the initial grid).
    pub klub: f64,
    /// The validation proxy of that grid.
    pub validation: Option<f64>,
}

/// What [`optimize_ays`] found.
#[derive(Debug, Clone)]
pub struct AysResult {
    /// The selected grid on the schedule's time axis (same length and ends as the initial one).
    pub grid: TimeGrid,
    /// Its positive noise levels `sigma / alpha` (a final level 0, if any, left out).
    pub noise_levels: Vec<f64>,
    /// KLUB of the selected grid.
    pub klub: f64,
    /// The sweep the selected grid comes from (0: the initial grid).
    pub selected: usize,
    /// KLUB and proxy after every sweep, the initial grid first.
    pub history: Vec<AysSweep>,
}

/// The positive noise levels of a sampling grid and whether it ends at noise level 0.
fn grid_levels(schedule: &dyn NoiseSchedule, grid: &TimeGrid) -> Result<(Vec<f64>, bool)> {
    if !grid.is_decreasing() {
        return Err(SolverError::InvalidParameter {
            name: "grid",
            reason: "needs a sampling grid (decreasing times)".into(),
        });
    }
    let mut levels: Vec<f64> = grid
        .times()
        .iter()
        .map(|&t| schedule.noise_ratio(t))
        .collect();
    let zero_tail = *levels.last().expect("grids have 2+ times") <= 0.0;
    if zero_tail {
        levels.pop();
    }
    if levels.len() < 2 {
        return Err(SolverError::InvalidParameter {
            name: "grid",
            reason: "needs at least two positive noise levels".into(),
        });
    }
    Ok((levels, zero_tail))
}

/// The grid with the given positive levels: the ends of `like` kept exactly, interior levels
/// mapped to times, and the final zero-noise time of `like` appended when it has one.
fn grid_of(
    schedule: &dyn NoiseSchedule,
    like: &TimeGrid,
    levels: &[f64],
    zero_tail: bool,
) -> Result<TimeGrid> {
    let lt = like.times();
    let n = levels.len();
    let last_pos = if zero_tail {
        lt.len() - 2
    } else {
        lt.len() - 1
    };
    let mut out: Vec<f64> = levels
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            if i == 0 {
                lt[0]
            } else if i + 1 == n {
                lt[last_pos]
            } else {
                schedule.t_of_noise_ratio(s)
            }
        })
        .collect();
    if zero_tail {
        out.push(lt[lt.len() - 1]);
    }
    Ok(TimeGrid::new(out)?)
}

/// Moves level `i` to the best of `count` candidates between its neighbours (the current value
/// included); returns whether it moved. `intervals[k]` is the KLUB of the step `k -> k + 1`.
fn improve_level<S: State>(
    klub: &Klub<'_, S>,
    levels: &mut [f64],
    intervals: &mut [f64],
    i: usize,
    count: usize,
) -> Result<bool> {
    let (hi, lo) = (levels[i - 1], levels[i + 1]);
    let u = levels[i].ln();
    let (down, up) = (0.5 * (u - lo.ln()), 0.5 * (hi.ln() - u));
    let half = (count - 1) / 2;
    let mut best = (
        intervals[i - 1] + intervals[i],
        levels[i],
        intervals[i - 1],
        intervals[i],
    );
    for k in 1..=half {
        let f = k as f64 / half as f64;
        for cand in [(u - f * down).exp(), (u + f * up).exp()] {
            if !(cand > lo && cand < hi) {
                continue;
            }
            let a = klub.interval(cand, hi)?;
            let b = klub.interval(lo, cand)?;
            if a + b < best.0 {
                best = (a + b, cand, a, b);
            }
        }
    }
    let moved = best.1 != levels[i];
    levels[i] = best.1;
    intervals[i - 1] = best.2;
    intervals[i] = best.3;
    Ok(moved)
}

/// A validation proxy for [`optimize_ays`]: a sample-quality error of a grid, lower is better.
pub type Proxy<'a> = &'a mut dyn FnMut(&TimeGrid) -> Result<f64>;

/// Optimizes the interior noise levels of the sampling grid `init` for `model` by minimizing the
/// KLUB on the data batch `data` (Alg. 1; see the module docs). The first and last positive levels
/// are kept, and so is a final step to noise level 0. With `validate` (a sample-quality proxy of a
/// grid, lower is better) the best grid by the proxy is returned, the initial one included;
/// without it, the grid after the last sweep.
///
/// Errors: an increasing grid, invalid options, a failing proxy, and model errors.
pub fn optimize_ays<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    data: &S,
    init: &TimeGrid,
    options: &AysOptions,
    noise: &mut dyn NoiseSource<S>,
    mut validate: Option<Proxy<'_>>,
) -> Result<AysResult> {
    options.check()?;
    let (mut levels, zero_tail) = grid_levels(schedule, init)?;
    let klub = Klub::new(model, schedule, data, options.nodes, noise)?;
    let n = levels.len();
    let mut intervals = (0..n - 1)
        .map(|i| klub.interval(levels[i + 1], levels[i]))
        .collect::<Result<Vec<f64>>>()?;
    let mut proxy = |grid: &TimeGrid| -> Result<Option<f64>> {
        match validate.as_mut() {
            Some(v) => v(grid).map(Some),
            None => Ok(None),
        }
    };
    let first = AysSweep {
        klub: intervals.iter().sum(),
        validation: proxy(init)?,
    };
    let mut history = vec![first];
    let mut best = (0, init.clone(), levels.clone(), first);
    let mut stale = 0;
    for sweep in 1..=options.max_sweeps {
        let mut moved = false;
        for i in 1..n - 1 {
            moved |= improve_level(&klub, &mut levels, &mut intervals, i, options.candidates)?;
        }
        if !moved {
            break;
        }
        let grid = grid_of(schedule, init, &levels, zero_tail)?;
        let rec = AysSweep {
            klub: intervals.iter().sum(),
            validation: proxy(&grid)?,
        };
        history.push(rec);
        let better = match (rec.validation, best.3.validation) {
            (Some(v), Some(b)) => v < b,
            _ => true,
        };
        if better {
            best = (sweep, grid, levels.clone(), rec);
            stale = 0;
        } else {
            stale += 1;
            if stale >= options.patience {
                break;
            }
        }
    }
    Ok(AysResult {
        grid: best.1,
        noise_levels: best.2,
        klub: best.3.klub,
        selected: best.0,
        history,
    })
}

/// The paper's subdivision stage: doubles the steps of the sampling grid `grid` by inserting the
/// log-midpoint `sqrt(s_i s_{i+1})` of every step between positive levels, then moves each new
/// level towards the KLUB minimizer between its (frozen) neighbours for up to `max_sweeps`
/// candidate rounds. A final step to noise level 0 stays one step. Returns the new grid and its
/// KLUB.
pub fn refine_ays<S: State>(
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    data: &S,
    grid: &TimeGrid,
    options: &AysOptions,
    noise: &mut dyn NoiseSource<S>,
) -> Result<(TimeGrid, f64)> {
    options.check()?;
    let (coarse, zero_tail) = grid_levels(schedule, grid)?;
    let mut levels = Vec::with_capacity(2 * coarse.len() - 1);
    for w in coarse.windows(2) {
        levels.push(w[0]);
        levels.push((w[0] * w[1]).sqrt());
    }
    levels.push(coarse[coarse.len() - 1]);
    let klub = Klub::new(model, schedule, data, options.nodes, noise)?;
    let n = levels.len();
    let mut intervals = (0..n - 1)
        .map(|i| klub.interval(levels[i + 1], levels[i]))
        .collect::<Result<Vec<f64>>>()?;
    for _ in 0..options.max_sweeps {
        let mut moved = false;
        for i in (1..n - 1).step_by(2) {
            moved |= improve_level(&klub, &mut levels, &mut intervals, i, options.candidates)?;
        }
        if !moved {
            break;
        }
    }
    let gt = grid.times();
    let mut times: Vec<f64> = levels
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            if i % 2 == 0 {
                gt[i / 2]
            } else {
                schedule.t_of_noise_ratio(s)
            }
        })
        .collect();
    if zero_tail {
        times.push(gt[gt.len() - 1]);
    }
    Ok((TimeGrid::new(times)?, intervals.iter().sum()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn klub_matches_the_gaussian_closed_form() {
        // App. A.3: for data N(0, c^2 I), E ||D(y_s; s) - D(y_hi; hi)||^2 per entry is
        // c^4 (1/(s^2 + c^2) - 1/(hi^2 + c^2)); its integral against s^-3 is closed form.
        use diffusion_core::schedule::{Edm, VpLinear};
        use diffusion_core::{Gaussian, GaussianMixture, HostNoise};
        let c: f64 = 0.5;
        let g = GaussianMixture::from_gaussian(Gaussian::isotropic(vec![0.0, 0.0], c).unwrap());
        let data = g.sample(4000, &mut HostNoise::new(1));
        let f = |s: f64| -c * c / (2.0 * s * s) - s.ln() + 0.5 * (s * s + c * c).ln();
        let exact = |lo: f64, hi: f64| {
            f(hi) - f(lo) - c.powi(4) / (hi * hi + c * c) * (0.5 / (lo * lo) - 0.5 / (hi * hi))
        };
        // The same KLUB on EDM and on VP (the model runs in the schedule's own coordinates).
        let (edm, vp) = (Edm::default(), VpLinear::default());
        for s in [&edm as &dyn NoiseSchedule, &vp] {
            let den = g.denoiser(s);
            let k = Klub::new(&den, s, &data, 8, &mut HostNoise::new(2)).unwrap();
            for (lo, hi) in [(0.1, 0.2), (0.2, 0.5), (0.5, 3.0), (0.01, 0.05)] {
                let (got, want) = (k.interval(lo, hi).unwrap(), exact(lo, hi));
                // Monte Carlo error ~1.5% (8000 entries per node, 8 nodes); quadrature error
                // is far below that.
                assert!(
                    (got / want - 1.0).abs() < 0.05,
                    "{}: [{lo}, {hi}]: {got} vs {want}",
                    s.name()
                );
            }
            let total = k.total(&[0.5, 0.2, 0.1]).unwrap();
            assert!((total / (exact(0.2, 0.5) + exact(0.1, 0.2)) - 1.0).abs() < 0.05);
            assert!(k.interval(0.2, 0.1).is_err());
        }
    }

    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        for n in 1..=10 {
            let (x, w) = gauss_legendre(n);
            assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-13, "n={n}");
            // Exact for degree 2n - 1: int_{-1}^{1} x^{2n-2} = 2 / (2n - 1).
            let deg = 2 * n - 2;
            let q: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(deg as i32)).sum();
            assert!((q - 2.0 / (deg as f64 + 1.0)).abs() < 1e-12, "n={n}: {q}");
        }
    }
}
