//! The rectified-flow / flow-matching linear interpolant `x_t = (1 - t) x_0 + t eps` (Liu et al.
//! 2022, arXiv:2209.03003, Eq. 1; Lipman et al. 2022, arXiv:2210.02747, Eq. 20-23, sigma_min = 0),
//! time reversed so that t = 0 is data. Metric: Heun on Karras noise levels (the straight-path
//! ODE) against the exact PF-ODE of a Gaussian target; checks: the SDE with the same marginals
//! (`f = -1/(1 - t)`, `g^2 = 2t/(1 - t)`) reversed by Euler-Maruyama from t = 0.99 reaches the
//! target law, and lambda's inverse, drift and diffusion agree with the marginal coefficients.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::RectifiedFlow;
use diffusion_examples::{ScheduleArgs, ScheduleShowcase};

fn main() -> Result<()> {
    let a = ScheduleArgs::parse();
    let schedule = RectifiedFlow::new();
    // x_t = (1 - t) x_0 + t eps.
    let formula = |t: f64| (1.0 - t, t);
    ScheduleShowcase {
        example: "rectified_flow",
        schedule: &schedule,
        noise_levels: (80.0, 0.002),
        steps: a.steps,
        sde_span: (0.99, 0.0),
        sde_steps: a.sde_steps,
        n: a.n,
        seed: a.seed,
        bound: 0.04,
        formula: &formula,
    }
    .run()?
    .finish()
}
