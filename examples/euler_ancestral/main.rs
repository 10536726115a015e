//! Euler ancestral (k-diffusion `sample_euler_ancestral`: an Euler step of the EDM PF-ODE,
//! Karras et al. 2022, arXiv:2206.00364, to the DDIM-eta noise level of Song et al. 2021,
//! arXiv:2010.02502, Eq. 16, then fresh noise); metric: W2 between the Gaussian fitted to the
//! samples and the exact Gaussian target (printed with the noise floor of exact samples), with
//! strong order 1 along a Brownian tree as a check.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::VpLinear;
use diffusion_examples::SdeShowcase;

#[derive(Parser)]
struct Args {
    /// Noise amount eta (1: ancestral, 0: Euler).
    #[arg(long, default_value_t = 1.0)]
    eta: f64,
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

fn main() -> Result<()> {
    let a = Args::parse();
    let spec = format!("euler-ancestral:eta={}", a.eta);
    SdeShowcase {
        example: "euler_ancestral",
        solver: &spec,
        schedule: &VpLinear::default(),
        steps: a.steps,
        n: a.n,
        seed: a.seed,
        bound: 0.06,
        ladder: &[32, 64, 128, 256],
    }
    .run()?
    .finish()
}
