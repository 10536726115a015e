//! Score calibration on a trained network (Pang et al. 2023, arXiv:2302.10688): an eps MLP is
//! trained briefly (300 updates) on the eight-Gaussians toy under the VP linear schedule, so its
//! noise prediction keeps a time-wise mean `eta_t = E[eps_hat(x_t, t)]` that the data score
//! cannot have; `diffusion_core::weighting::Calibrated` estimates it (antithetic noise, 4000
//! data samples) and subtracts it. Metric: the largest relative gap, over 8 times, between the
//! DSM loss drop on the estimation batch and `||eta_t||^2` (the paper's identity: exact for the
//! same batch and noise, up to f32 rounding); checks: on fresh data the calibrated model's DSM
//! loss is not higher (summed over the times), and `eta` is not negligible. Expected (seed 0,
//! dev profile, 2 CPU cores): gap 1.7e-5 (bound 1e-2), sum of `||eta_t||^2` 0.0071, fresh-data
//! loss drop 0.0042; about 2 s.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::VpLinear;
use diffusion::core::weighting::{dsm_loss, Calibrated};
use diffusion::core::{HostNoise, Toy2d};
use diffusion::models::{Output, Parameterization, TchDenoiser};
use diffusion_examples::models::{to_tensor, toy_samples, toy_toml, train, ModelArgs};
use diffusion_examples::Report;

fn main() -> Result<()> {
    let a = ModelArgs::parse();
    let toml = toy_toml(
        "kind = \"dsm\"\nschedule = \"vp-linear\"\ntarget = \"epsilon\"",
        a.steps.min(300),
    );
    let trainer = train(&toml)?;
    let sch = VpLinear::default();
    let den = TchDenoiser::new(trainer.net(), Parameterization::Raw(Output::Epsilon), &sch);
    let data = to_tensor(&toy_samples(Toy2d::EightGaussians, 4000, 11));
    let fresh = to_tensor(&toy_samples(Toy2d::EightGaussians, 4000, 12));
    let times: Vec<f64> = (0..8).map(|k| 0.05 + 0.12 * k as f64).collect();
    let mut gap: f64 = 0.0;
    let mut eta2_sum = 0.0;
    for (k, &t) in times.iter().enumerate() {
        let seed = 100 + k as u64;
        let cal = Calibrated::estimate(&den, &sch, &data, 2, &[t], &mut HostNoise::new(seed))?;
        let eta2: f64 = cal.mean_at(t).iter().map(|v| v * v).sum();
        let raw = dsm_loss(&den, &sch, &data, 2, t, &mut HostNoise::new(seed))?;
        let calibrated = dsm_loss(&cal, &sch, &data, 2, t, &mut HostNoise::new(seed))?;
        gap = gap.max(((raw - calibrated) - eta2).abs() / eta2.max(1e-12));
        eta2_sum += eta2;
    }
    let all = Calibrated::estimate(&den, &sch, &data, 2, &times, &mut HostNoise::new(7))?;
    let mut fresh_drop = 0.0;
    for (k, &t) in times.iter().enumerate() {
        let seed = 500 + k as u64;
        fresh_drop += dsm_loss(&den, &sch, &fresh, 2, t, &mut HostNoise::new(seed))?
            - dsm_loss(&all, &sch, &fresh, 2, t, &mut HostNoise::new(seed))?;
    }
    let mut r = Report::new("models_score_calibration", "relative_gap", gap, 16, 1e-2);
    r.info("eta2_sum", eta2_sum)
        .check_min("eta2_sum_min", eta2_sum, 1e-6)
        .check_min("fresh_loss_drop", fresh_drop, -0.1 * eta2_sum);
    r.finish()
}
