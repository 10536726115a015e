//! DDPM end to end on a network (Ho et al. 2020, arXiv:2006.11239, Alg. 1 and 2): a residual MLP
//! trained with `L_simple` (eps target, VP linear schedule, `t ~ U(1e-3, 1)`) on the
//! eight-Gaussians toy through `TrainConfig` + `Trainer`, then sampled by DDPM ancestral steps
//! (the `ddpm` solver, posterior variance) on 100 uniform steps from `t = 1` to `1e-3`.
//! Metric: sliced W2 between 2000 samples and fresh data; check: well below the moment-matched
//! Gaussian baseline. Expected (seed 0, dev profile, 2 CPU cores): sliced_w2 about 0.1
//! (bound 0.25), baseline about 1.0; about 5 s.

use anyhow::Result;
use clap::Parser;
use diffusion::core::{TimeGrid, Toy2d};
use diffusion_examples::models::{gaussian_baseline, swd, toy_samples, toy_toml, train_and_sample, ModelArgs};
use diffusion_examples::Report;

fn main() -> Result<()> {
    let a = ModelArgs::parse();
    let toml = toy_toml("kind = \"dsm\"\nschedule = \"vp-linear\"\ntarget = \"epsilon\"", a.steps);
    let grid = TimeGrid::uniform(1.0, 1e-3, 100)?;
    let (_, x) = train_and_sample(&toml, "ddpm", &grid, a.n, a.seed)?;
    let data = toy_samples(Toy2d::EightGaussians, a.n, 99);
    let w = swd(&x, &data)?;
    let base = gaussian_baseline(&data, 1)?;
    let mut r = Report::new("models_ddpm", "sliced_w2", w, 100, 0.25);
    r.info("train_steps", a.steps as f64)
        .check_max("ratio_to_gaussian_baseline", w / base, 0.3)
        .info("baseline", base);
    r.finish()
}
