//! The VE SDE (Song et al. 2021, arXiv:2011.13456, Sec. 3.4; the continuous limit of SMLD):
//! `sigma(t) = sigma_min (sigma_max / sigma_min)^t`, alpha = 1. Metric: Heun on Karras noise
//! levels against the exact PF-ODE of a Gaussian target; checks: the reverse SDE by
//! Euler-Maruyama reaches the target law (W2 of the fitted Gaussian; the sigma_min = 0.01 left at
//! t = 0 is part of the law), and lambda's inverse, drift and diffusion agree with the marginal
//! coefficients.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::Ve;
use diffusion_examples::{ScheduleArgs, ScheduleShowcase};

fn main() -> Result<()> {
    let a = ScheduleArgs::parse();
    let schedule = Ve::default();
    // sigma(t) = sigma_min (sigma_max / sigma_min)^t, alpha = 1.
    let formula = |t: f64| (1.0, 0.01 * (50.0f64 / 0.01).powf(t));
    ScheduleShowcase {
        example: "ve",
        schedule: &schedule,
        noise_levels: (50.0, 0.01),
        steps: a.steps,
        sde_span: (1.0, 0.0),
        sde_steps: a.sde_steps,
        n: a.n,
        seed: a.seed,
        bound: 0.04,
        formula: &formula,
    }
    .run()?
    .finish()
}
