//! Helpers shared by the oracle test files: the Gaussian target, exact PF-ODE errors, fitted
//! convergence slopes and the W2 distance of sampled laws.
#![allow(dead_code)] // each test file uses a subset

use diffusion_core::metrics::gaussian_w2;
use diffusion_core::{
    BrownianPath, Gaussian, GaussianMixture, HostNoise, IndependentIncrements, NoiseSchedule,
    State, TimeGrid,
};
use diffusion_solvers::{sample, NoObserver, Solver};
use ndarray::Array2;

/// The 2-d Gaussian target every oracle test samples.
pub fn target() -> Gaussian {
    Gaussian::new(vec![1.5, -0.5], vec![vec![0.4, 0.15], vec![0.15, 0.2]]).unwrap()
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

/// W2 between the Gaussian fitted to `out` (2 columns) and the target.
pub fn fitted_w2(out: &Array2<f64>) -> f64 {
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
    gaussian_w2(&Gaussian::new(mean, cov).unwrap(), &target())
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
