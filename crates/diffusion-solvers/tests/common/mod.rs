//! Helpers shared by the oracle test files: the Gaussian target, exact PF-ODE errors, fitted
//! convergence slopes and the W2 distance of sampled laws.
#![allow(dead_code)] // each test file uses a subset

use diffusion_core::metrics::gaussian_w2;
use diffusion_core::schedule::{build as build_schedule, Edm, SCHEDULES};
use diffusion_core::{
    BrownianPath, CoreError, Counted, Denoiser, Gaussian, GaussianMixture, HostNoise,
    IndependentIncrements, NoiseSchedule, State, TimeGrid,
};
use diffusion_solvers::{registry, sample, NoObserver, Solver};
use ndarray::Array2;

/// The 2-d Gaussian target every oracle test samples.
pub fn target() -> Gaussian {
    Gaussian::new(vec![1.5, -0.5], vec![vec![0.4, 0.15], vec![0.15, 0.2]]).unwrap()
}

/// The registry's solver for `spec` on host arrays.
pub fn build(spec: &str) -> Box<dyn Solver<Array2<f64>>> {
    registry::build::<Array2<f64>>(spec).unwrap()
}

/// A Brownian path that refuses every query: proves that a solver drew no noise.
pub struct NoNoise;

impl BrownianPath<Array2<f64>> for NoNoise {
    fn increment(
        &mut self,
        t0: f64,
        t1: f64,
        _like: &Array2<f64>,
    ) -> diffusion_core::Result<Array2<f64>> {
        Err(CoreError::invalid(
            "t0/t1",
            format!("unexpected noise draw on [{t0}, {t1}]"),
        ))
    }
}

/// Written in EDM coordinates, each solver of `specs` must give the same `y = x / alpha` on every
/// registered schedule for the same noise-level grid and the same (normalized) noise, from `n`
/// samples. Grid A (sigma 14 -> 0.03) runs on the schedules reaching `headroom * 14`, grid B
/// (80 -> 0.002 -> 0) on those reaching `headroom * 80` and noise level 0. Each difference must be
/// below `tol`, and at least `min_schedules` schedules per solver must be checked on each grid.
pub fn assert_same_sampler_on_every_schedule(
    specs: &[&str],
    n: usize,
    headroom: f64,
    tol: f64,
    min_schedules: usize,
) {
    let edm = Edm::default();
    for (rho_max, rho_min, to_zero) in [(14.0, 0.03, false), (80.0, 0.002, true)] {
        let y0 = init(n, 5, &edm, rho_max);
        let mut checked = 0;
        for &spec in specs {
            let solver = build(spec);
            let solve = |sch: &dyn NoiseSchedule| {
                let grid = TimeGrid::karras(sch, rho_min, rho_max, 7.0, 25, to_zero).unwrap();
                let (t0, t1) = (grid.times()[0], grid.times()[grid.steps()]);
                let x0 = y0.scale(sch.alpha(t0));
                let mut noise = IndependentIncrements::seeded(4);
                run(solver.as_ref(), sch, &grid, x0, &mut noise).scale(1.0 / sch.alpha(t1))
            };
            let reference = solve(&edm);
            for (name, _) in SCHEDULES {
                let sch = build_schedule(name).unwrap();
                let (lo, hi) = sch.t_range();
                let (r_lo, r_hi) = (sch.noise_ratio(lo), sch.noise_ratio(hi));
                if r_hi < headroom * rho_max || r_lo > rho_min || (to_zero && r_lo > 0.0) {
                    continue;
                }
                let d = rms_diff(&solve(sch.as_ref()), &reference);
                assert!(d < tol, "{spec} on {name}: {d} away from EDM");
                checked += 1;
            }
        }
        assert!(
            checked >= min_schedules * specs.len(),
            "only {checked} schedule checks"
        );
    }
}

/// `n` samples of the exact marginal at `t` (the true trajectory's law).
pub fn init(n: usize, seed: u64, schedule: &dyn NoiseSchedule, t: f64) -> Array2<f64> {
    init_of(&target(), n, seed, schedule, t)
}

/// `n` samples of the marginal of `g` at `t`.
pub fn init_of(
    g: &Gaussian,
    n: usize,
    seed: u64,
    schedule: &dyn NoiseSchedule,
    t: f64,
) -> Array2<f64> {
    g.marginal(schedule, t).sample(n, &mut HostNoise::new(seed))
}

/// Root mean square of `a - b`.
pub fn rms_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.lincomb(1.0, b, -1.0).rms()
}

/// Runs `solver` with the exact denoiser of the target from `x` over `grid`.
pub fn run(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    x: Array2<f64>,
    noise: &mut dyn BrownianPath<Array2<f64>>,
) -> Array2<f64> {
    let gmm = GaussianMixture::from_gaussian(target());
    let den = gmm.denoiser(schedule);
    sample(solver, &den, schedule, grid, x, noise, &mut NoObserver).unwrap()
}

/// RMS error of `solver` on `grid` against the exact PF-ODE flow of the target, from 64 exact
/// samples at the grid's first time.
pub fn grid_error(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
) -> f64 {
    let (t0, t1) = (grid.times()[0], *grid.times().last().unwrap());
    let x = init(64, 1, schedule, t0);
    let out = run(
        solver,
        schedule,
        grid,
        x.clone(),
        &mut IndependentIncrements::seeded(0),
    );
    let exact = target().pf_ode_flow(schedule, t0, t1, &x.view()).unwrap();
    rms_diff(&out, &exact)
}

/// [`grid_error`] with `steps` log-SNR-uniform steps from `t0` to `t1`.
pub fn ode_error(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    t0: f64,
    t1: f64,
    steps: usize,
) -> f64 {
    grid_error(
        solver,
        schedule,
        &TimeGrid::log_snr_uniform(schedule, t0, t1, steps).unwrap(),
    )
}

/// [`ode_error`] of `s` (the registry's `spec`) on `sch` from `t0` to `t1` for each of `ns`
/// steps; asserts that their fitted slope is within 0.3 of the declared order. Returns the errors.
pub fn assert_declared_order(
    spec: &str,
    s: &dyn Solver<Array2<f64>>,
    sch: &dyn NoiseSchedule,
    (t0, t1): (f64, f64),
    ns: &[usize],
) -> Vec<f64> {
    let errs: Vec<f64> = ns.iter().map(|&n| ode_error(s, sch, t0, t1, n)).collect();
    let slope = fitted_slope(ns, &errs);
    eprintln!(
        "{spec} on {}: slope {slope:.3}, errors {errs:?}",
        sch.name()
    );
    assert!(
        (slope - s.order()).abs() <= 0.3,
        "{spec} on {}: slope {slope:.3} vs order {}, errors {errs:?}",
        sch.name(),
        s.order()
    );
    errs
}

/// The least-squares slope of `-ln(error)` against `ln(steps)`.
pub fn fitted_slope(ns: &[usize], errs: &[f64]) -> f64 {
    let xs: Vec<f64> = ns.iter().map(|&n| (n as f64).ln()).collect();
    let ys: Vec<f64> = errs.iter().map(|e| e.ln()).collect();
    let (mx, my) = (
        xs.iter().sum::<f64>() / xs.len() as f64,
        ys.iter().sum::<f64>() / ys.len() as f64,
    );
    let num: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    -num / den
}

/// The Gaussian fitted to the rows of `out` (2 columns): sample mean and covariance (divisor n).
pub fn fitted_gaussian(out: &Array2<f64>) -> Gaussian {
    let n = out.nrows() as f64;
    let mean: Vec<f64> = (0..2).map(|j| out.column(j).mean().unwrap()).collect();
    let cov: Vec<Vec<f64>> = (0..2)
        .map(|i| {
            (0..2)
                .map(|j| {
                    out.column(i)
                        .iter()
                        .zip(out.column(j))
                        .map(|(a, b)| (a - mean[i]) * (b - mean[j]))
                        .sum::<f64>()
                        / n
                })
                .collect()
        })
        .collect();
    Gaussian::new(mean, cov).unwrap()
}

/// Self-convergence: the RMS distances of `solve(n)` to `reference` for each of `ns`, and the
/// fitted slope of those errors ([`fitted_slope`]).
pub fn slope_against(
    ns: &[usize],
    reference: &Array2<f64>,
    solve: impl Fn(usize) -> Array2<f64>,
) -> (f64, Vec<f64>) {
    let errs: Vec<f64> = ns.iter().map(|&n| rms_diff(&solve(n), reference)).collect();
    (fitted_slope(ns, &errs), errs)
}

/// W2 between the Gaussian fitted to `out` (2 columns) and the target.
pub fn fitted_w2(out: &Array2<f64>) -> f64 {
    gaussian_w2(&fitted_gaussian(out), &target())
}

/// RMS error against the exact PF-ODE flow of the target from `t0` to `t1` of `solve`, run with
/// the target's exact denoiser (counted) from 64 exact samples at `t0`; with `solve`'s statistics
/// and the number of denoiser calls.
pub fn counted_flow_error<T>(
    schedule: &dyn NoiseSchedule,
    (t0, t1): (f64, f64),
    solve: impl FnOnce(&dyn Denoiser<Array2<f64>>, Array2<f64>) -> (Array2<f64>, T),
) -> (f64, T, usize) {
    let g = target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(schedule);
    let counted = Counted::new(&den);
    let x = init_of(&g, 64, 3, schedule, t0);
    let (out, stats) = solve(&counted, x.clone());
    let exact = g.pf_ode_flow(schedule, t0, t1, &x.view()).unwrap();
    (rms_diff(&out, &exact), stats, counted.calls())
}

/// W2 of the law `solver` reaches over `grid` from `n` exact samples at the grid's first time,
/// with independent-increment noise.
pub fn law_w2(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    n: usize,
    seed: u64,
) -> f64 {
    let x = init(n, seed, schedule, grid.times()[0]);
    let mut noise = IndependentIncrements::seeded(seed + 100);
    fitted_w2(&run(solver, schedule, grid, x, &mut noise))
}

/// A [`BrownianPath`] that probes a sampler that is affine in its input and its noises (every
/// sampler here on a Gaussian target, whose denoiser is affine): query `q` returns, in rows
/// `1 + d + q d + i` (`i < d`), the unit vector `e_i` (times `sqrt|dt|`, so normalized
/// increments are exactly `e_i`), zeros elsewhere. It counts its queries.
pub struct ProbePath {
    /// Queries answered so far.
    pub queries: usize,
    dim: usize,
}

impl BrownianPath<Array2<f64>> for ProbePath {
    fn increment(
        &mut self,
        t0: f64,
        t1: f64,
        like: &Array2<f64>,
    ) -> diffusion_core::Result<Array2<f64>> {
        let (q, d) = (self.queries, self.dim);
        self.queries += 1;
        let mut out = Array2::zeros(like.raw_dim());
        let dt = t1 - t0;
        for i in 0..d {
            let row = 1 + d + q * d + i;
            if row < out.nrows() {
                out[[row, i]] = dt.signum() * dt.abs().sqrt();
            }
        }
        Ok(out)
    }
}

/// The exact law of `solver`'s output over `grid` when its input has the exact marginal law at
/// the grid's first time and its noises are standard normal: run on probe rows (the mean, the
/// input directions, every noise direction of every noise query) and add up the covariances.
/// No sampling error, so weak convergence orders can be fitted. Needs a solver whose noise
/// queries do not depend on the state's values.
pub fn exact_law(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
) -> Gaussian {
    let start = target().marginal(schedule, grid.times()[0]);
    let d = start.dim();
    let root = start.cov_sqrt();
    let inputs = |extra: usize| {
        let mut x = Array2::zeros((1 + d + extra * d, d));
        for r in 0..=d {
            for j in 0..d {
                x[[r, j]] = start.mean()[j] + if r > 0 { root[(j, r - 1)] } else { 0.0 };
            }
        }
        for r in 1 + d..x.nrows() {
            for j in 0..d {
                x[[r, j]] = start.mean()[j];
            }
        }
        x
    };
    let mut counter = ProbePath { queries: 0, dim: d };
    run(solver, schedule, grid, inputs(0), &mut counter);
    let n_queries = counter.queries;
    let mut probe = ProbePath { queries: 0, dim: d };
    let out = run(solver, schedule, grid, inputs(n_queries), &mut probe);
    assert_eq!(
        probe.queries, n_queries,
        "noise queries depend on the state"
    );
    let mean: Vec<f64> = (0..d).map(|j| out[[0, j]]).collect();
    let mut cov = vec![vec![0.0; d]; d];
    for r in 1..out.nrows() {
        for a in 0..d {
            for b in 0..d {
                cov[a][b] += (out[[r, a]] - mean[a]) * (out[[r, b]] - mean[b]);
            }
        }
    }
    Gaussian::new(mean, cov).unwrap()
}

/// W2 between the [`exact_law`] of `solver` over `grid` and the target.
pub fn exact_law_w2(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
) -> f64 {
    gaussian_w2(&exact_law(solver, schedule, grid), &target())
}

/// W2 between the [`exact_law`] of `solver` over `grid` and the exact marginal at the grid's
/// last time.
pub fn exact_law_w2_at_end(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
) -> f64 {
    let end = grid.times()[grid.steps()];
    gaussian_w2(
        &exact_law(solver, schedule, grid),
        &target().marginal(schedule, end),
    )
}
