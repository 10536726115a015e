//! The optimal denoiser of a finite training set (Karras et al. 2022, arXiv:2206.00364, App. B.3,
//! Eq. 57), read by Chen et al. 2023 ("A Geometric Perspective on Diffusion Models",
//! arXiv:2305.19947) as one mean-shift step: `D(x, t) = sum_i softmax_i(-|x - alpha y_i|^2 /
//! (2 sigma^2)) y_i`. Sampling the PF-ODE with it memorizes: every sample lands on a training
//! point. 32 training points drawn from the 8-Gaussian ring, 256 samples, DPM-Solver++(2M) on the
//! VP SDE with Karras steps down to noise level 0.002 (no final denoising step). Metric: the
//! largest distance of a sample (`x / alpha`) to its nearest training point; checks: at the final
//! time the denoiser returns exactly that nearest point, the samples spread over many training
//! points, and the ring's own (generalizing) denoiser stays away from them.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::VpLinear;
use diffusion::core::{EmpiricalData, HostNoise, NoiseSchedule, TimeGrid};
use diffusion_examples::{max_abs, ring_2d, sample_from_prior, Report};
use ndarray::{Array2, Axis};
use std::collections::HashSet;

#[derive(Parser)]
struct Args {
    /// Training points.
    #[arg(long, default_value_t = 32)]
    points: usize,
    /// Samples.
    #[arg(long, default_value_t = 256)]
    n: usize,
    /// Solver steps.
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Distance of each row of `x` to its nearest training point.
fn nearest_distances(data: &EmpiricalData, x: &Array2<f64>) -> Result<Vec<f64>> {
    let idx = data.nearest(&x.view())?;
    Ok(x.axis_iter(Axis(0))
        .zip(idx)
        .map(|(r, i)| {
            let y = data.points().row(i);
            r.iter()
                .zip(y.iter())
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect())
}

fn main() -> Result<()> {
    let a = Args::parse();
    let ring = ring_2d()?;
    let data = EmpiricalData::new(ring.sample(a.points, &mut HostNoise::new(a.seed ^ 0xda7a)))?;
    let vp = VpLinear::default();
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, a.steps, false)?;
    let t_end = *grid.times().last().expect("grid has times");
    let den = data.denoiser(&vp);
    let (out, nfe) = sample_from_prior("dpmpp-2m", &den, &vp, &grid, a.n, 2, a.seed)?;
    let y = out.mapv(|v| v / vp.alpha(t_end));
    let dist = nearest_distances(&data, &y)?;
    let max_dist = dist.iter().copied().fold(0.0, f64::max);
    // At the final time the denoiser is the nearest training point.
    let d_final = data.denoise_t(&vp, t_end, &out.view())?;
    let nearest = data.nearest(&y.view())?;
    let hard_err = max_abs(&(d_final - data.points().select(Axis(0), &nearest)));
    let distinct = nearest.iter().collect::<HashSet<_>>().len();
    // The ring's exact denoiser generalizes: its samples are new points.
    let ring_den = ring.denoiser(&vp);
    let (ring_out, _) = sample_from_prior("dpmpp-2m", &ring_den, &vp, &grid, a.n, 2, a.seed)?;
    let ring_dist = nearest_distances(&data, &ring_out.mapv(|v| v / vp.alpha(t_end)))?;
    let ring_mean = ring_dist.iter().sum::<f64>() / ring_dist.len() as f64;
    let mut r = Report::new(
        "empirical_denoiser",
        "max_dist_to_train",
        max_dist,
        nfe,
        0.02,
    );
    r.info("points", a.points as f64)
        .check_max("denoiser_vs_nearest", hard_err, 1e-9)
        .check_min(
            "distinct_points_hit",
            distinct as f64,
            (a.points / 2) as f64,
        )
        .check_min("ring_model_mean_dist", ring_mean, 0.05);
    r.finish()
}
