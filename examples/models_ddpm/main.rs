//! DDPM end to end on a network (Ho et al. 2020, arXiv:2006.11239, Alg. 1 and 2): a residual MLP
//! trained with `L_simple` (eps target, VP linear schedule, `t ~ U(1e-3, 1)`) on the
//! eight-Gaussians toy through `TrainConfig` + `Trainer`, then sampled by DDPM ancestral steps
//! (the `ddpm` solver, posterior variance) on 100 uniform steps from `t = 1` to `1e-3`.
//! Metric: sliced W2 between 2000 samples and fresh data (1200 updates); check: at most half the
//! moment-matched Gaussian baseline. Expected (seed 0, dev profile, 2 CPU cores): sliced_w2 0.184
//! (bound 0.3), at the two-sample floor 0.185 of 2000 points; baseline 0.566; about 3 s.

use anyhow::Result;
use clap::Parser;
use diffusion::core::TimeGrid;
use diffusion_examples::models::{toy_law_report, toy_toml, train_and_sample, ModelArgs};

fn main() -> Result<()> {
    let a = ModelArgs::parse();
    let toml = toy_toml(
        "kind = \"dsm\"\nschedule = \"vp-linear\"\ntarget = \"epsilon\"",
        a.steps,
    );
    let grid = TimeGrid::uniform(1.0, 1e-3, 100)?;
    let (_, x) = train_and_sample(&toml, "ddpm", &grid, a.n, a.seed)?;
    let mut r = toy_law_report("models_ddpm", &x, 100, 0.3, 0.5)?;
    r.info("train_steps", a.steps as f64);
    r.finish()
}
