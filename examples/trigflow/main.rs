//! TrigFlow (Lu & Song 2024, arXiv:2410.11081, Sec. 3): `x_t = cos(t) x_0 + sin(t) sigma_d eps`,
//! `t in [0, pi/2]`. Metric: Heun on Karras noise levels against the exact PF-ODE of a Gaussian
//! target; checks: the SDE with the same marginals (`f = -tan t`, `g^2 = 2 sigma_d^2 tan t`)
//! reversed by Euler-Maruyama from t = 1.55 reaches the target law, and lambda's inverse, drift and
//! diffusion agree with the marginal coefficients.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::TrigFlow;
use diffusion_examples::{ScheduleArgs, ScheduleShowcase};

fn main() -> Result<()> {
    let a = ScheduleArgs::parse();
    let schedule = TrigFlow::new(1.0)?;
    // x_t = cos(t) x_0 + sin(t) sigma_d eps, sigma_d = 1.
    let formula = |t: f64| (t.cos(), t.sin());
    ScheduleShowcase {
        example: "trigflow",
        schedule: &schedule,
        noise_levels: (80.0, 0.002),
        steps: a.steps,
        sde_span: (1.55, 0.0),
        sde_steps: a.sde_steps,
        n: a.n,
        seed: a.seed,
        bound: 0.04,
        formula: &formula,
    }
    .run()?
    .finish()
}
