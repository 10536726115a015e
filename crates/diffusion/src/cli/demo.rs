//! `diffusion demo`: a short, real end-to-end run on the CPU.
//!
//! 1. Analytic: builds a 2-D Gaussian-mixture target with full covariances, samples it under the
//!    VP SDE with several solvers at a few model-evaluation budgets using the exact denoiser,
//!    prints each run's sliced W2 to exact samples (with the two-sample noise floor for scale),
//!    and writes a PNG.
//! 2. Trained (feature `tch`, skipped with `--no-train`): trains a small MLP on a 2-D toy
//!    (~30 s), samples it with several solvers, prints the same table and writes a PNG; then,
//!    when Fashion-MNIST is installed, trains a tiny U-Net for a minute or two and writes a grid
//!    of its samples.

use super::eval::distances;
use super::progress::bar;
use super::sample::{brownian, prior};
use anyhow::Result;
use clap::Args;
use diffusion::core::{
    schedule::VpLinear, Counted, GaussianMixture, HostNoise, NoiseSchedule, TimeGrid,
};
use diffusion::plot::{scatter_panels, Series};
use diffusion::solvers::{registry, sample};
use ndarray::Array2;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output folder for the PNG and the target JSON.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Samples per run.
    #[arg(long, default_value_t = 4000)]
    pub n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Only the analytic part (no training).
    #[arg(long)]
    pub no_train: bool,
}

/// The demo's target: five anisotropic components with unequal weights.
pub fn demo_target() -> Result<GaussianMixture> {
    let rot = |a: f64, s1: f64, s2: f64| -> Vec<Vec<f64>> {
        let (c, s) = (a.cos(), a.sin());
        vec![
            vec![c * c * s1 + s * s * s2, c * s * (s1 - s2)],
            vec![c * s * (s1 - s2), s * s * s1 + c * c * s2],
        ]
    };
    Ok(GaussianMixture::new(
        vec![0.3, 0.2, 0.2, 0.15, 0.15],
        vec![
            vec![0.0, 2.5],
            vec![2.4, 0.6],
            vec![1.5, -2.0],
            vec![-1.5, -2.0],
            vec![-2.4, 0.6],
        ],
        vec![
            rot(0.0, 0.30, 0.02),
            rot(1.26, 0.25, 0.03),
            rot(2.51, 0.2, 0.05),
            rot(0.63, 0.2, 0.05),
            rot(1.88, 0.25, 0.03),
        ],
    )?)
}

pub fn run(a: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let gmm = demo_target()?;
    std::fs::create_dir_all(&a.out)?;
    let target_path = a.out.join("target.json");
    std::fs::write(&target_path, serde_json::to_string_pretty(&gmm.to_spec())?)?;
    let sch = VpLinear::default();
    let den = gmm.denoiser(&sch);
    let x_t = prior(&sch, sch.t_range().1, a.n, 2, a.seed);
    let exact = gmm.sample(a.n, &mut HostNoise::new(a.seed ^ 0x5eed));
    // (solver, steps, plotted): budgets of about 10, 20 and 50 model evaluations per sample.
    let runs: &[(&str, usize, bool)] = &[
        ("euler", 10, true),
        ("ddim:eta=1", 10, true),
        ("dpmpp-2m", 10, true),
        ("euler-maruyama", 10, true),
        ("heun", 10, true),
        ("dpmpp-2m", 20, true),
        ("euler", 50, false),
        ("heun", 25, true),
        ("dpmpp-2m", 50, true),
        ("euler-maruyama", 50, false),
    ];
    let total: u64 = runs.iter().map(|r| r.1 as u64).sum();
    let pb = bar(total, "demo");
    let mut rows = Vec::new();
    let mut panels: Vec<(String, Array2<f64>)> = Vec::new();
    for &(spec, steps, plotted) in runs {
        let solver = registry::build::<Array2<f64>>(spec)?;
        let grid = TimeGrid::karras(&sch, 0.002, sch.noise_ratio(1.0), 7.0, steps, true)?;
        let counted = Counted::new(&den);
        let mut noise = brownian("tree", &sch, a.seed)?;
        let mut obs = |i: usize, _t: f64, _x: &Array2<f64>| {
            if i > 0 {
                pb.inc(1)
            }
        };
        let out = sample(
            solver.as_ref(),
            &counted,
            &sch,
            &grid,
            x_t.clone(),
            noise.as_mut(),
            &mut obs,
        )?;
        let m = distances(&out, &gmm, a.seed, 256)?;
        rows.push((solver.name(), steps, counted.calls(), m));
        if plotted {
            panels.push((format!("{} NFE {}", solver.name(), counted.calls()), out));
        }
    }
    pb.finish_and_clear();
    println!("target: 2-D mixture of 5 anisotropic Gaussians ({}), VP-linear SDE, Karras grid (rho = 7), exact denoiser, n = {}", target_path.display(), a.n);
    println!(
        "{:<18} {:>5} {:>5} {:>10} {:>10}",
        "solver", "steps", "NFE", "sliced_W2", "moment_W2"
    );
    for (name, steps, nfe, m) in &rows {
        println!(
            "{:<18} {:>5} {:>5} {:>10.4} {:>10.4}",
            name, steps, nfe, m[0].1, m[2].1
        );
    }
    let floor = rows.first().map(|r| r.3[1].1).unwrap_or(f64::NAN);
    println!("noise floor (two exact sample sets of the same size): sliced_W2 = {floor:.4}");
    let png = a.out.join("samples.png");
    let mut all: Vec<(String, Vec<Series<'_>>)> = vec![(
        "exact samples".into(),
        vec![Series {
            points: exact.view(),
            color: (20, 20, 20),
        }],
    )];
    for (title, pts) in &panels {
        all.push((
            title.clone(),
            vec![Series {
                points: pts.view(),
                color: (200, 40, 40),
            }],
        ));
    }
    scatter_panels(&png, &all, 4.0, 3)?;
    let best = rows
        .iter()
        .filter(|r| r.2 <= 10)
        .min_by(|a, b| a.3[0].1.total_cmp(&b.3[0].1));
    let analytic_s = started.elapsed().as_secs_f64();
    if let Some((name, _, nfe, m)) = best {
        println!("demo: best at NFE <= 10: {name} (NFE {nfe}) sliced_w2={:.4} (floor {floor:.4}); plot {}; {analytic_s:.1} s", m[0].1, png.display());
    }
    #[allow(unused_mut)]
    let mut timings = vec![("analytic".to_string(), analytic_s)];
    #[cfg(feature = "tch")]
    if !a.no_train {
        println!();
        timings.extend(super::demo_train::run(&a.out, a.seed)?);
    }
    let line: Vec<String> = timings
        .iter()
        .map(|(k, v)| format!("{k} {v:.1} s"))
        .collect();
    println!(
        "timings: {}; total {:.1} s",
        line.join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
