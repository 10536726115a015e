//! PFGM++ (Xu et al. 2023, arXiv:2302.04265, Sec. 3-4 and App. B): data of dimension N embedded
//! in N + D dimensions with the heavy-tailed kernel `p_r(x | y) ∝ (|x - y|^2 + r^2)^{-(N + D)/2}`,
//! `r = sigma sqrt(D)`. Metric: the Kolmogorov-Smirnov distance of sampled perturbation radii to
//! the analytic radius law `P(R <= rho) = I_{rho^2/(rho^2 + r^2)}(N/2, D/2)` (bound: the critical
//! value at level 0.001). Checks: the same radii against a 20% larger sigma are rejected, and the
//! large-D limit: at D = 1e6 the perturbation is Gaussian `N(0, sigma^2 I)` (second moment,
//! excess kurtosis, log-density), while at D = 10 it is heavy-tailed.

use anyhow::Result;
use clap::Parser;
use diffusion::core::process::Pfgmpp;
use diffusion::core::HostNoise;
use diffusion_examples::{ks_critical, ks_statistic, Report};
use ndarray::Array2;

#[derive(Parser)]
struct Args {
    /// Data dimension N.
    #[arg(long, default_value_t = 8)]
    dim: usize,
    /// Augmented dimension D.
    #[arg(long, default_value_t = 16.0)]
    aug: f64,
    /// Noise level sigma.
    #[arg(long, default_value_t = 0.8)]
    sigma: f64,
    /// Sampled radii.
    #[arg(long, default_value_t = 4000)]
    n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Second moment and excess kurtosis of all entries of `x`.
fn moments(x: &Array2<f64>) -> (f64, f64) {
    let m2 = x.mapv(|v| v * v).mean().unwrap_or(0.0);
    let m4 = x.mapv(|v| v.powi(4)).mean().unwrap_or(0.0);
    (m2, m4 / (m2 * m2) - 3.0)
}

fn main() -> Result<()> {
    let a = Args::parse();
    let p = Pfgmpp::new(a.dim, a.aug)?;
    let mut noise = HostNoise::new(a.seed);
    let radii = (0..a.n)
        .map(|_| Ok(p.sample_radius(a.sigma, &mut noise)?))
        .collect::<Result<Vec<f64>>>()?;
    let ks = ks_statistic(&radii, |x| Ok(p.radius_cdf(x, a.sigma)?))?;
    let crit = ks_critical(a.n);
    let ks_off = ks_statistic(&radii, |x| Ok(p.radius_cdf(x, 1.2 * a.sigma)?))?;
    // Large-D limit: N = 4, sigma = 0.7, 20k rows (standard error of the pooled second moment
    // sigma^2 sqrt(2 / 80000) = 0.5%, of the excess kurtosis about 0.02).
    let sigma = 0.7;
    let y = Array2::<f64>::zeros((20_000, 4));
    let (m2, kurt) = moments(&Pfgmpp::new(4, 1e6)?.perturb_rows(&y, sigma, &mut noise)?);
    let (_, kurt_heavy) = moments(&Pfgmpp::new(4, 10.0)?.perturb_rows(&y, sigma, &mut noise)?);
    let (xx, s) = ([0.3, -0.5], 0.8);
    let gauss = -(0.09 + 0.25) / (2.0 * s * s) - (2.0 * std::f64::consts::PI * s * s).ln();
    let log_gap = (Pfgmpp::new(2, 1e6)?.log_kernel(&xx, &[0.0, 0.0], s)? - gauss).abs();
    let mut r = Report::new("pfgmpp", "ks", ks, 0, crit);
    r.info("n_dim", a.dim as f64)
        .info("d_aug", a.aug)
        .check_min("ks_at_1.2_sigma", ks_off, 2.0 * crit)
        .check_max(
            "large_d_var_ratio_err",
            (m2 / (sigma * sigma) - 1.0).abs(),
            0.02,
        )
        .check_max("large_d_excess_kurtosis", kurt.abs(), 0.15)
        .check_max("large_d_log_density_gap", log_gap, 1e-4)
        .check_min("d10_excess_kurtosis", kurt_heavy, 0.5);
    r.finish()
}
