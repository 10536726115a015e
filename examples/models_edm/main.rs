//! The EDM recipe on a network (Karras et al. 2022, arXiv:2206.00364, Table 1 and Alg. 1): a
//! preconditioned MLP trained with the EDM loss (`sigma_data = 2`, `ln sigma ~ N(-0.6, 1.6^2)`)
//! on the eight-Gaussians toy, sampled with Heun on 18 Karras steps (`sigma` 40 to 0.002, rho 7,
//! then 0). Metric: sliced W2 to fresh data; check: well below the moment-matched Gaussian
//! baseline. Expected (seed 0, dev profile, 2 CPU cores): sliced_w2 about 0.1 (bound 0.25);
//! about 5 s.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::Edm;
use diffusion::core::{TimeGrid, Toy2d};
use diffusion_examples::models::{gaussian_baseline, swd, toy_samples, toy_toml, train_and_sample, ModelArgs};
use diffusion_examples::Report;

fn main() -> Result<()> {
    let a = ModelArgs::parse();
    let toml = toy_toml(
        "kind = \"edm\"\nsigma_data = 2.0\np_mean = -0.6\np_std = 1.6\nsigma_max = 80.0",
        a.steps,
    );
    let grid = TimeGrid::karras(&Edm::default(), 0.002, 40.0, 7.0, 18, true)?;
    let (_, x) = train_and_sample(&toml, "heun", &grid, a.n, a.seed)?;
    let data = toy_samples(Toy2d::EightGaussians, a.n, 99);
    let w = swd(&x, &data)?;
    let base = gaussian_baseline(&data, 1)?;
    let mut r = Report::new("models_edm", "sliced_w2", w, 35, 0.25);
    r.check_max("ratio_to_gaussian_baseline", w / base, 0.3)
        .info("baseline", base);
    r.finish()
}
