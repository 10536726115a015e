//! The sub-VP SDE (Song et al. 2021, arXiv:2011.13456, Sec. 3.4 and Eq. 34): VP's mean
//! coefficient with the smaller std `1 - alpha^2`. Metric: Heun on Karras noise levels against
//! the exact PF-ODE of a Gaussian target; checks: the reverse SDE by Euler-Maruyama reaches the
//! target law (W2 of the fitted Gaussian), and lambda's inverse, drift and diffusion agree with the
//! marginal coefficients.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::SubVp;
use diffusion_examples::{ScheduleArgs, ScheduleShowcase};

fn main() -> Result<()> {
    let a = ScheduleArgs::parse();
    let schedule = SubVp::default();
    // Song et al. Eq. 34: mean coefficient e^{-B/2}, std 1 - e^{-B}, B = int beta.
    let formula = |t: f64| {
        let b = 0.1 * t + 0.5 * (20.0 - 0.1) * t * t;
        ((-0.5 * b).exp(), 1.0 - (-b).exp())
    };
    ScheduleShowcase {
        example: "sub_vp",
        schedule: &schedule,
        noise_levels: (80.0, 0.002),
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
