//! `diffusion eval`: compare samples with an analytic target (`--samples` with `--target`),
//! FMNIST-FD of generated images (`--fmnist-fd`), or the PF-ODE likelihood of a trained run
//! (`--nll`). Every mode prints `key=value` lines.

use anyhow::{Context, Result};
use clap::Args;
use diffusion::core::metrics::{gaussian_w2, sliced_w2};
use diffusion::core::{Gaussian, GaussianMixture, HostNoise};
use diffusion::io::read_npy_2d;
use ndarray::Array2;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Samples as an (n, d) .npy array (compared with --target).
    #[arg(long, required_unless_present_any = ["fmnist_fd", "nll"])]
    pub samples: Option<PathBuf>,
    /// Target mixture as JSON (the format of `diffusion sample --target`).
    #[arg(long, required_unless_present_any = ["fmnist_fd", "nll"])]
    pub target: Option<PathBuf>,
    /// Seed for the exact reference samples and the projections (and, with --nll, for the data
    /// drawn from the toy, the Hutchinson probes and the dequantization).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of random projections of the sliced W2.
    #[arg(long, default_value_t = 256)]
    pub projections: usize,
    /// FMNIST-FD of these generated images: .npy of shape (n, 1, 28, 28), (n, 28, 28) or
    /// (n, 784), values in [-1, 1]. Prints the FD to the Fashion-MNIST test set in the features
    /// of the project's classifier (trained once and cached), its accuracy against --labels and
    /// its mean predictive entropy, and the classifier's own test accuracy.
    #[arg(long, value_name = "SAMPLES_NPY", conflicts_with_all = ["samples", "target", "nll"])]
    pub fmnist_fd: Option<PathBuf>,
    /// Class labels of the --fmnist-fd images (.npy, n integers in 0..10).
    #[arg(long, requires = "fmnist_fd")]
    pub labels: Option<PathBuf>,
    /// Classifier recipe for --fmnist-fd: `default` (about 90% test accuracy) or `tiny` (fast,
    /// for tests; its FDs are not comparable with the default's).
    #[arg(long, default_value = "default")]
    pub classifier: String,
    /// With --fmnist-fd: also the FDs of this many random splits of the images into halves
    /// (seeded by --seed), printed as their mean, standard deviation and range: the sampling
    /// noise of an FD of half as many images, to judge a difference between two FDs by.
    #[arg(long, default_value_t = 0, requires = "fmnist_fd")]
    pub fd_splits: usize,
    /// Negative log-likelihood (nats and bits/dim) through the probability-flow ODE of the run in
    /// this folder (`diffusion train --out`: config.toml and checkpoint.safetensors).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["samples", "target"])]
    pub nll: Option<PathBuf>,
    /// Data for --nll as .npy, one item per row (default: --n fresh samples of the run's toy, or
    /// the first --n Fashion-MNIST test images for an image run; image data is dequantized and
    /// bits/dim include the 8-bit offset).
    #[arg(long, requires = "nll")]
    pub data: Option<PathBuf>,
    /// Number of toy samples for --nll without --data.
    #[arg(long, default_value_t = 500)]
    pub n: usize,
    /// EMA decay of the weights for --nll (default: the run's `sample.ema`, else its first
    /// tracked decay, as `diffusion train` samples).
    #[arg(long)]
    pub ema: Option<f64>,
    /// Use the raw (not averaged) weights for --nll.
    #[arg(long, conflicts_with = "ema")]
    pub raw_weights: bool,
    /// Divergence for --nll: `auto` (exact up to 16 dimensions, else Hutchinson), `exact`,
    /// `hutchinson` (Rademacher probes) or `hutchinson-gaussian`.
    #[arg(long, default_value = "auto")]
    pub divergence: String,
    /// RK45 relative and absolute tolerance for --nll.
    #[arg(long, default_value_t = 1e-5)]
    pub tol: f64,
    /// Start time of the --nll integration (default: where sigma/alpha = 1e-3).
    #[arg(long)]
    pub t_start: Option<f64>,
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
    if a.fmnist_fd.is_some() {
        return fmnist::run(&a);
    }
    if a.nll.is_some() {
        return nll::run(&a);
    }
    let (Some(samples), Some(target)) = (&a.samples, &a.target) else {
        anyhow::bail!("eval needs --samples with --target, or --fmnist-fd, or --nll");
    };
    let gmm = GaussianMixture::load(target)
        .with_context(|| format!("reading --target {}", target.display()))?;
    let x = read_npy_2d(samples)?;
    anyhow::ensure!(
        x.ncols() == gmm.dim(),
        "--samples {} has {} columns but the target has dimension {}",
        samples.display(),
        x.ncols(),
        gmm.dim()
    );
    anyhow::ensure!(
        x.iter().all(|v| v.is_finite()),
        "--samples {} contains NaN or infinite values",
        samples.display()
    );
    let metrics = distances(&x, &gmm, a.seed, a.projections)?;
    let line: Vec<String> = metrics.iter().map(|(k, v)| format!("{k}={v:.5}")).collect();
    println!("n={} {}", x.nrows(), line.join(" "));
    Ok(())
}

#[cfg(not(feature = "tch"))]
mod nll {
    pub fn run(_a: &super::EvalArgs) -> anyhow::Result<()> {
        anyhow::bail!(
            "this `diffusion` was built without the `tch` feature, so it cannot evaluate networks"
        )
    }
}

#[cfg(not(feature = "tch"))]
mod fmnist {
    pub fn run(_a: &super::EvalArgs) -> anyhow::Result<()> {
        anyhow::bail!(
            "this `diffusion` was built without the `tch` feature, so it cannot compute FMNIST-FD"
        )
    }
}

#[cfg(feature = "tch")]
mod nll;

#[cfg(feature = "tch")]
mod fmnist;
