//! IR-SDE's mean-reverting SDE (Luo et al. 2023, arXiv:2301.11699, Eq. 2-4): `dx = theta_t (mu - x)
//! dt + sigma_t dW` with `sigma_t^2 / theta_t = 2 lambda^2`, the paper's cosine theta schedule and
//! `lambda = 10/255`. Metric: the largest z-score of Euler-Maruyama Monte-Carlo moments against the
//! closed-form marginal `N(mu + (x0 - mu) e^{-theta_bar}, lambda^2 (1 - e^{-2 theta_bar}))` at t =
//! 0.5 and t = 1; checks: the shape of the cosine theta against the reference formula, the terminal
//! data weight `e^{-theta_bar(1)} = eps`, a sign-flipped mean is rejected, and the solver view (`y
//! = x - mu` as a schedule) reproduces the exact PF-ODE with DPM-Solver++.

use anyhow::Result;
use clap::Parser;
use diffusion::core::process::MeanReverting;
use diffusion::core::{Gaussian, NoiseSchedule, TimeGrid};
use diffusion_examples::{mean_reverting_moments, pf_ode_run_of, scalar_z, Report};

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
    let mr = MeanReverting::default();
    let th = mr.theta_schedule();
    let (x0, mu) = (0.8, -0.3);
    let mut z: f64 = 0.0;
    let mut z_wrong: f64 = f64::INFINITY;
    for (i, &t) in [0.5, 1.0].iter().enumerate() {
        let steps = (a.steps as f64 * t).round() as usize;
        let mc = mean_reverting_moments(
            &|s| th.theta(s),
            &|s| mr.diffusion(s),
            (x0, mu),
            t,
            steps,
            a.paths,
            a.seed + i as u64,
        )?;
        let w = mr.alpha(t);
        let var = mr.std(t).powi(2);
        z = z.max(scalar_z(&mc, mu + (x0 - mu) * w, var)?);
        z_wrong = z_wrong.min(scalar_z(&mc, mu - (x0 - mu) * w, var)?);
    }
    // Solver view: y = x - mu on the schedule (alpha, sigma) = (e^{-theta_bar}, lambda sqrt(1 - e^{-2 theta_bar})),
    // data y0 = x0 - mu with x0 ~ N(m, C).
    let y_target = Gaussian::new(
        vec![1.0 - mu, -0.5 - mu],
        vec![vec![0.01, 0.004], vec![0.004, 0.006]],
    )?;
    let grid = TimeGrid::log_snr_uniform(&mr, 1.0, 0.01, 20)?;
    let view = pf_ode_run_of(&y_target, "dpmpp-2m", &mr, &grid, 256, a.seed)?;
    // The shape of the reference code's cosine theta: theta(t) / theta(1) =
    // (1 - cos^2(a t + b) / cos^2 b) / (1 - cos^2(a + b) / cos^2 b), a = pi / (2 (1 + s)), b = a s.
    let (ca, cb) = (
        std::f64::consts::PI / (2.0 * 1.008),
        std::f64::consts::PI / (2.0 * 1.008) * 0.008,
    );
    let raw = |t: f64| 1.0 - (ca * t + cb).cos().powi(2) / cb.cos().powi(2);
    let shape = (1..=20)
        .map(|i| {
            let t = i as f64 / 20.0;
            (th.theta(t) / th.theta(1.0) - raw(t) / raw(1.0)).abs()
        })
        .fold(0.0, f64::max);
    let mut r = Report::new("ir_sde", "mc_max_z", z, 0, 5.0);
    r.info("paths", a.paths as f64)
        .check_max("theta_shape_err", shape, 1e-12)
        .check_max("terminal_weight_err", (mr.alpha(1.0) - 0.005).abs(), 1e-12)
        .check_min("z_sign_flipped_mean", z_wrong, 20.0)
        .check_max("solver_view_rmse", view.error(), 2e-3);
    r.finish()
}
