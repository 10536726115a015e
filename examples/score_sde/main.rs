//! Score SDE reverse-time sampling (Song et al. 2021, arXiv:2011.13456, Eq. 6) with
//! Euler-Maruyama along a Brownian tree, VP SDE, 8-Gaussian ring; metric: sliced W2 to exact
//! samples (printed with the two-sample noise floor of the same size).

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::VpLinear, TimeGrid};
use diffusion_examples::{law_distance, report, ring_2d, Outcome};

#[derive(Parser)]
struct Args {
    /// Solver steps (= NFE).
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Samples.
    #[arg(long, default_value_t = 2000)]
    n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let vp = VpLinear::default();
    let grid = TimeGrid::uniform(1.0, 0.0, a.steps)?;
    let (sw, nfe, floor) = law_distance("euler-maruyama", &ring_2d()?, &vp, &grid, a.n, a.seed)?;
    report(
        "score_sde",
        &Outcome {
            metric: "sliced_w2",
            value: sw,
            nfe,
            expected_max: 0.12,
        },
        &format!("floor={floor:.4} schedule=vp-linear grid=uniform-t"),
    )
}
