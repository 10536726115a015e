//! DDPM ancestral sampling (Ho, Jain & Abbeel 2020, arXiv:2006.11239, Algorithm 2) in its
//! continuous-time form (the posterior `q(x_s | x_t, x0_hat)` on any grid, variance beta-tilde or
//! the upper bound beta). Metric: W2 between the Gaussian fitted to the samples and the exact
//! Gaussian target (printed with the noise floor of exact samples); checks: strong order 1 along
//! a Brownian tree, on the integer times of the original 1000-step linear-beta table the sampler
//! is Algorithm 2 written out literally (both variances), and on any grid the beta-tilde variant
//! is DDIM with eta = 1 step for step.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::{BetaSchedule, DdpmDiscrete, VpLinear};
use diffusion::core::{
    denoise, BrownianPath, GaussianMixture, IndependentIncrements, NoiseSchedule, State, TimeGrid,
};
use diffusion::solvers::registry;
use diffusion_examples::{gaussian_2d, karras_to_zero, rms_diff, solve, SdeShowcase};
use ndarray::Array2;

#[derive(Parser)]
struct Args {
    /// Posterior variance: 0 beta-tilde (Ho et al.'s sigma_t^2 = beta-tilde_t), 1 beta_t.
    #[arg(long, default_value_t = 0)]
    variance: u8,
    /// Solver steps (= NFE).
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Samples.
    #[arg(long, default_value_t = 5000)]
    n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The largest distance between the registry's `ddpm` on the integer times of DDPM's own
/// 1000-step table and Algorithm 2 written out:
/// `x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(1 - beta_t) + sigma_t z`.
fn algorithm_2_gap(seed: u64) -> Result<f64> {
    let sch = DdpmDiscrete::new(
        BetaSchedule::Linear {
            beta_start: 1e-4,
            beta_end: 0.02,
        },
        1000,
        false,
    )?;
    let (betas, abar) = (sch.betas(), sch.alphas_cumprod());
    let times: Vec<f64> = (0..1000).rev().map(|i| i as f64).collect();
    let grid = TimeGrid::new(times.clone())?;
    let g = gaussian_2d()?;
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&sch);
    let x_start = g
        .marginal(&sch, 999.0)
        .sample(32, &mut diffusion::core::HostNoise::new(seed));
    let mut gap: f64 = 0.0;
    for (spec, upper) in [("ddpm", false), ("ddpm:variance=1", true)] {
        let s = registry::build::<Array2<f64>>(spec)?;
        let mut noise = IndependentIncrements::seeded(seed + 1);
        let got = solve(s.as_ref(), &den, &sch, &grid, x_start.clone(), &mut noise)?;
        let mut noise = IndependentIncrements::seeded(seed + 1);
        let mut x = x_start.clone();
        for w in times.windows(2) {
            let i = w[0] as usize;
            let (_, eps) = denoise(&den, &sch, &x, w[0])?;
            let var = if upper {
                betas[i]
            } else {
                betas[i] * (1.0 - abar[i - 1]) / (1.0 - abar[i])
            };
            let z = noise.normalized(w[0], w[1], &x)?;
            x = x
                .lincomb(1.0, &eps, -betas[i] / (1.0 - abar[i]).sqrt())
                .scale(1.0 / (1.0 - betas[i]).sqrt())
                .lincomb(1.0, &z, var.sqrt());
        }
        gap = gap.max(rms_diff(&got, &x));
    }
    Ok(gap)
}

/// The distance between `ddpm` and `ddim:eta=1` from the same start with the same noise.
fn ddim_eta_one_gap(schedule: &dyn NoiseSchedule, seed: u64) -> Result<f64> {
    let grid = karras_to_zero(schedule, 30)?;
    let g = gaussian_2d()?;
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(schedule);
    let x = g
        .marginal(schedule, grid.times()[0])
        .sample(64, &mut diffusion::core::HostNoise::new(seed));
    let run = |spec: &str| -> Result<Array2<f64>> {
        let s = registry::build::<Array2<f64>>(spec)?;
        let mut noise = IndependentIncrements::seeded(seed + 2);
        solve(s.as_ref(), &den, schedule, &grid, x.clone(), &mut noise)
    };
    Ok(rms_diff(&run("ddpm")?, &run("ddim:eta=1")?))
}

fn main() -> Result<()> {
    let a = Args::parse();
    let vp = VpLinear::default();
    let spec = format!("ddpm:variance={}", a.variance);
    let mut r = SdeShowcase {
        example: "ddpm",
        solver: &spec,
        schedule: &vp,
        steps: a.steps,
        n: a.n,
        seed: a.seed,
        bound: 0.06,
        ladder: &[32, 64, 128, 256],
    }
    .run()?;
    r.check_max("algorithm_2_gap", algorithm_2_gap(a.seed)?, 1e-10)
        .check_max("ddim_eta1_gap", ddim_eta_one_gap(&vp, a.seed)?, 1e-10);
    r.finish()
}
