//! The training part of `diffusion demo` (feature `tch`): train a small MLP on a 2-D toy on the
//! CPU, sample it with several solvers, print sliced W2 to exact samples next to the noise floor
//! and write a picture; then, when Fashion-MNIST is installed, a short run of a tiny U-Net that
//! writes a sample grid.

use anyhow::Result;
use diffusion::core::metrics::sliced_w2;
use diffusion::core::HostNoise;
use diffusion::models::data::fmnist::{FashionMnist, Split};
use diffusion::models::tch::Kind;
use diffusion::models::train::{RunOptions, TrainConfig, Trainer};
use diffusion::plot::{scatter_panels, Series};
use ndarray::Array2;
use std::path::Path;
use std::time::Instant;

/// The toy run: EDM on eight Gaussians with a small MLP (about 30 s on one core).
const TOY: &str = r#"
seed = 0
device = "cpu"
cpu_threads = 1
[data]
toy = "8gaussians"
[model]
hidden = 96
depth = 3
embedding = { kind = "fourier", dim = 32, scale = 4.0 }
[loss]
kind = "edm"
sigma_data = 2.0
p_mean = -0.6
p_std = 1.6
[train]
steps = 1500
batch_size = 256
lr = 3e-3
warmup_steps = 50
min_lr_ratio = 0.05
ema_decays = [0.995]
log_every = 50
checkpoint_every = 0
[sample]
grid = "karras:sigma_max=40"
n = 2000
"#;

/// The Fashion-MNIST run: a tiny class-conditional U-Net, EDM loss, 28x28 images.
const FMNIST: &str = r#"
seed = 0
device = "cpu"
cpu_threads = 0
[data]
fmnist = { flip = true, classes = true, p_uncond = 0.1 }
[model]
kind = "unet"
model_channels = 16
channel_mult = [1, 2]
num_res_blocks = 1
attention_resolutions = []
groups = 8
dropout = 0.0
num_classes = 10
embedding = { kind = "fourier", dim = 32, scale = 16.0 }
[loss]
kind = "edm"
sigma_data = 0.5
[train]
steps = 400
batch_size = 32
lr = 2e-3
warmup_steps = 20
ema_decays = [0.99]
log_every = 50
checkpoint_every = 0
[sample]
solver = "heun"
grid = "karras"
steps = 16
grid_n = 40
"#;

/// Trains the toy model and the (optional) Fashion-MNIST model; returns the timing entries.
pub fn run(out: &Path, seed: u64) -> Result<Vec<(String, f64)>> {
    let mut timings = Vec::new();
    let t0 = Instant::now();
    let mut cfg = TrainConfig::from_toml_str(TOY)?;
    cfg.seed = seed;
    let mut trainer = Trainer::new(cfg.clone())?;
    let stats = trainer.run(&mut RunOptions {
        progress: true,
        ..Default::default()
    })?;
    let train_s = t0.elapsed().as_secs_f64();
    timings.push(("toy training".to_string(), train_s));
    let tail =
        stats.iter().rev().take(100).map(|s| s.loss).sum::<f64>() / 100f64.min(stats.len() as f64);
    println!(
        "trained: {} on {} with an MLP, {} updates in {train_s:.1} s; mean loss of the last 100: {tail:.4}",
        trainer.objective().name(),
        cfg.data.toy.as_deref().unwrap_or("?"),
        stats.len()
    );
    let toy = trainer.toy().expect("a toy run");
    let n = cfg.sample.n;
    let exact = toy.sample(n, &mut HostNoise::new(seed ^ 0xe4ac_7000));
    let exact2 = toy.sample(n, &mut HostNoise::new(seed ^ 0xf100_2000));
    let floor = sliced_w2(&exact2.view(), &exact.view(), 256, seed)?;
    let t1 = Instant::now();
    let mut panels: Vec<(String, Array2<f64>)> = vec![("exact samples".into(), exact.clone())];
    println!("{:<18} {:>5} {:>10}", "solver", "steps", "sliced_W2");
    for (solver, steps) in [
        ("euler", 32),
        ("heun", 16),
        ("dpmpp-2m", 16),
        ("euler-maruyama", 64),
    ] {
        trainer.config_mut().sample.solver = solver.into();
        trainer.config_mut().sample.steps = steps;
        let (x, _) = trainer.sample(n, trainer.config().sample_seed())?;
        let v: Vec<f64> = Vec::try_from(x.to_kind(Kind::Double).flatten(0, -1))?;
        let host = Array2::from_shape_vec((n, 2), v)?;
        let sw = sliced_w2(&host.view(), &exact.view(), 256, seed)?;
        println!("{solver:<18} {steps:>5} {sw:>10.4}");
        panels.push((format!("trained MLP, {solver} {steps} steps"), host));
    }
    println!("noise floor (two exact sample sets of {n}): sliced_W2 = {floor:.4}");
    timings.push(("toy sampling".to_string(), t1.elapsed().as_secs_f64()));
    let png = out.join("trained_toy.png");
    let series: Vec<(String, Vec<Series<'_>>)> = panels
        .iter()
        .map(|(t, p)| {
            (
                t.clone(),
                vec![Series {
                    points: p.view(),
                    color: if t.starts_with("exact") {
                        (20, 20, 20)
                    } else {
                        (40, 80, 200)
                    },
                }],
            )
        })
        .collect();
    scatter_panels(&png, &series, 6.0, 3)?;
    println!("plot {}", png.display());

    let dir = FashionMnist::default_dir();
    if !FashionMnist::is_installed(&dir, Split::Train) {
        println!(
            "fashion-mnist: not found in {} (skipping the image run; `cargo xtask setup --fmnist` installs it)",
            dir.display()
        );
        return Ok(timings);
    }
    let t2 = Instant::now();
    let mut cfg = TrainConfig::from_toml_str(FMNIST)?;
    cfg.seed = seed;
    let mut trainer = Trainer::new(cfg.clone())?;
    let stats = trainer.run(&mut RunOptions {
        progress: true,
        ..Default::default()
    })?;
    let s = t2.elapsed().as_secs_f64();
    timings.push(("fmnist training".to_string(), s));
    let n_params: i64 = trainer
        .named_variables()
        .iter()
        .map(|(_, t)| t.numel() as i64)
        .sum();
    let tail =
        stats.iter().rev().take(50).map(|s| s.loss).sum::<f64>() / 50f64.min(stats.len() as f64);
    let t3 = Instant::now();
    let grid = out.join("fmnist_samples.png");
    trainer.save_sample_picture(&grid)?;
    timings.push(("fmnist sampling".to_string(), t3.elapsed().as_secs_f64()));
    println!(
        "fashion-mnist: a U-Net of {n_params} parameters, {} updates at batch {} in {s:.1} s (loss {:.4} -> {tail:.4}); one column per class: {}",
        stats.len(),
        cfg.train.batch_size,
        stats.first().map_or(f64::NAN, |s| s.loss),
        grid.display()
    );
    Ok(timings)
}
