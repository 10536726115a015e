//! Grad-TTS's mean-shifted VP SDE (Popov et al. 2021, arXiv:2105.06337, Eq. 1-4 with Sigma = I):
//! `dx = (1/2) beta_t (mu - x) dt + sqrt(beta_t) dW`, beta from 0.05 to 20. Metric: the largest
//! z-score of Euler-Maruyama Monte-Carlo moments against the closed-form marginal `N(e^{-B/2} x0 +
//! (1 - e^{-B/2}) mu, 1 - e^{-B})` at t = 0.3 and t = 1; checks: beta, the mean weight and the
//! variance against the paper's formulas, the process equals the mean-reverting SDE with theta =
//! beta/2, lambda = 1, the terminal law is N(mu, I) up to e^{-B(1)/2}, and a marginal that forgets
//! mu (plain VP) is rejected.

use anyhow::Result;
use clap::Parser;
use diffusion::core::process::MeanShiftedVp;
use diffusion::core::NoiseSchedule;
use diffusion_examples::{mean_reverting_moments, scalar_z, Report};

#[derive(Parser)]
struct Args {
    /// Monte-Carlo paths.
    #[arg(long, default_value_t = 20000)]
    paths: usize,
    /// Euler-Maruyama steps per unit time.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let p = MeanShiftedVp::default();
    let vp = p.schedule();
    let (x0, mu) = (2.0, 0.5);
    let mut z: f64 = 0.0;
    let mut z_no_mu: f64 = f64::INFINITY;
    for (i, &t) in [0.3, 1.0].iter().enumerate() {
        let steps = (a.steps as f64 * t).round() as usize;
        let mc = mean_reverting_moments(
            &|s| 0.5 * p.beta(s),
            &|s| p.diffusion(s),
            (x0, mu),
            t,
            steps,
            a.paths,
            a.seed + i as u64,
        )?;
        let w = vp.alpha(t);
        let var = p.std(t).powi(2);
        z = z.max(scalar_z(&mc, w * x0 + (1.0 - w) * mu, var)?);
        z_no_mu = z_no_mu.min(scalar_z(&mc, w * x0, var)?);
    }
    let mr = p.as_mean_reverting();
    let equiv = (1..=20)
        .map(|i| {
            let t = i as f64 / 20.0;
            (mr.alpha(t) - vp.alpha(t))
                .abs()
                .max((mr.sigma(t) - vp.sigma(t)).abs())
                .max((mr.diffusion(t) - p.diffusion(t)).abs())
        })
        .fold(0.0, f64::max);
    // The paper's beta_t = beta_0 + (beta_1 - beta_0) t and B(t) = beta_0 t + (beta_1 - beta_0) t^2 / 2.
    let formula = (0..=20)
        .map(|i| {
            let t = i as f64 / 20.0;
            let big_b = 0.05 * t + 0.5 * 19.95 * t * t;
            (p.beta(t) - (0.05 + 19.95 * t))
                .abs()
                .max((p.std(t).powi(2) - (1.0 - (-big_b).exp())).abs())
                .max((vp.alpha(t) - (-0.5 * big_b).exp()).abs())
        })
        .fold(0.0, f64::max);
    let mut r = Report::new("grad_tts", "mc_max_z", z, 0, 5.0);
    r.info("paths", a.paths as f64)
        .check_max("paper_formula_err", formula, 1e-12)
        .check_max("mean_reverting_equivalence", equiv, 1e-12)
        .check_max("terminal_data_weight", vp.alpha(1.0), 0.007)
        .check_min("z_without_mu", z_no_mu, 20.0);
    r.finish()
}
