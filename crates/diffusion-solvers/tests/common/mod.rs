//! Shared helpers of the oracle tests: the Gaussian target, its exact PF-ODE flow, errors and
//! fitted convergence slopes.
#![allow(dead_code)]

use diffusion_core::metrics::gaussian_w2;
use diffusion_core::{
    Gaussian, GaussianMixture, HostNoise, IndependentIncrements, NoiseSchedule, State, TimeGrid,
};
use diffusion_solvers::{sample, NoObserver, Solver};
use ndarray::Array2;

/// A correlated 2-D Gaussian target.
pub fn target() -> Gaussian {
    Gaussian::new(vec![1.5, -0.5], vec![vec![0.4, 0.15], vec![0.15, 0.2]]).unwrap()
}

/// `n` exact samples of the target's marginal at `t`.
pub fn init(
    g: &Gaussian,
    n: usize,
    seed: u64,
    schedule: &dyn NoiseSchedule,
    t: f64,
) -> Array2<f64> {
    g.marginal(schedule, t).sample(n, &mut HostNoise::new(seed))
}

/// RMS of `a - b`.
pub fn rms_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.lincomb(1.0, b, -1.0).rms()
}

/// RMS error of `solver` on `grid` against the exact PF-ODE flow of the target.
pub fn grid_error(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
) -> f64 {
    let g = target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(schedule);
    let (t0, t1) = (grid.times()[0], *grid.times().last().unwrap());
    let x = init(&g, 64, 1, schedule, t0);
    let mut noise = IndependentIncrements::seeded(0);
    let out = sample(
        solver,
        &den,
        schedule,
        grid,
        x.clone(),
        &mut noise,
        &mut NoObserver,
    )
    .unwrap();
    let exact = g.pf_ode_flow(schedule, t0, t1, &x.view()).unwrap();
    rms_diff(&out, &exact)
}

/// [`grid_error`] on `steps` log-SNR-uniform steps from `t0` to `t1`.
pub fn ode_error(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    t0: f64,
    t1: f64,
    steps: usize,
) -> f64 {
    let grid = TimeGrid::log_snr_uniform(schedule, t0, t1, steps).unwrap();
    grid_error(solver, schedule, &grid)
}

/// Least-squares slope of `-ln(err)` against `ln(n)`.
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

/// W2 between the target and the Gaussian fitted to `n` samples produced by `solver` on `grid`.
pub fn law_w2(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    n: usize,
    seed: u64,
) -> f64 {
    let g = target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(schedule);
    let x = init(&g, n, seed, schedule, grid.times()[0]);
    let mut noise = IndependentIncrements::seeded(seed + 100);
    let out = sample(solver, &den, schedule, grid, x, &mut noise, &mut NoObserver).unwrap();
    let d = out.ncols();
    let mean: Vec<f64> = (0..d).map(|j| out.column(j).mean().unwrap()).collect();
    let cov: Vec<Vec<f64>> = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| {
                    out.column(i)
                        .iter()
                        .zip(out.column(j))
                        .map(|(a, b)| (a - mean[i]) * (b - mean[j]))
                        .sum::<f64>()
                        / n as f64
                })
                .collect()
        })
        .collect();
    gaussian_w2(&Gaussian::new(mean, cov).unwrap(), &g)
}
