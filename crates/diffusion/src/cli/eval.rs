//! `diffusion eval`: compare samples with an analytic target.

use anyhow::{Context, Result};
use clap::Args;
use diffusion::core::metrics::{gaussian_w2, sliced_w2};
use diffusion::core::{Gaussian, GaussianMixture, HostNoise};
use diffusion::io::read_npy_2d;
use ndarray::Array2;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Samples as an (n, d) .npy array.
    #[arg(long)]
    pub samples: PathBuf,
    /// Target mixture as JSON (the format of `diffusion sample --target`).
    #[arg(long)]
    pub target: PathBuf,
    /// Seed for the exact reference samples and the projections.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of random projections of the sliced W2.
    #[arg(long, default_value_t = 256)]
    pub projections: usize,
}

/// Mean and covariance of rows, as a Gaussian (for the moment-matched W2).
pub fn fitted_gaussian(x: &Array2<f64>) -> Result<Gaussian> {
    let n = x.nrows() as f64;
    let d = x.ncols();
    let mean: Vec<f64> = (0..d).map(|j| x.column(j).sum() / n).collect();
    let cov = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| {
                    x.column(i)
                        .iter()
                        .zip(x.column(j))
                        .map(|(a, b)| (a - mean[i]) * (b - mean[j]))
                        .sum::<f64>()
                        / n
                })
                .collect()
        })
        .collect();
    Ok(Gaussian::new(mean, cov)?)
}

/// The distances `diffusion eval` and the demo print, as `key=value` pairs.
pub fn distances(
    x: &Array2<f64>,
    gmm: &GaussianMixture,
    seed: u64,
    projections: usize,
) -> Result<Vec<(&'static str, f64)>> {
    let n = x.nrows();
    let exact = gmm.sample(n, &mut HostNoise::new(seed ^ 0x5eed));
    let exact2 = gmm.sample(n, &mut HostNoise::new(seed ^ 0xf100));
    let sw = sliced_w2(&x.view(), &exact.view(), projections, seed)?;
    let floor = sliced_w2(&exact2.view(), &exact.view(), projections, seed)?;
    let (m, c) = gmm.moments();
    let truth = Gaussian::new(
        m.iter().copied().collect(),
        c.row_iter().map(|r| r.iter().copied().collect()).collect(),
    )?;
    let moment_w2 = gaussian_w2(&fitted_gaussian(x)?, &truth);
    Ok(vec![
        ("sliced_w2", sw),
        ("sliced_w2_floor", floor),
        ("moment_w2", moment_w2),
    ])
}

pub fn run(a: EvalArgs) -> Result<()> {
    let gmm = GaussianMixture::load(&a.target)
        .with_context(|| format!("reading --target {}", a.target.display()))?;
    let x = read_npy_2d(&a.samples)?;
    anyhow::ensure!(
        x.ncols() == gmm.dim(),
        "--samples {} has {} columns but the target has dimension {}",
        a.samples.display(),
        x.ncols(),
        gmm.dim()
    );
    anyhow::ensure!(
        x.iter().all(|v| v.is_finite()),
        "--samples {} contains NaN or infinite values",
        a.samples.display()
    );
    let metrics = distances(&x, &gmm, a.seed, a.projections)?;
    let line: Vec<String> = metrics.iter().map(|(k, v)| format!("{k}={v:.5}")).collect();
    println!("n={} {}", x.nrows(), line.join(" "));
    Ok(())
}
