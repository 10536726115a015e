//! Shared test helpers: a diagonal Gaussian target and its exact optimal networks in tch.

#![allow(dead_code)]

use diffusion_core::{Coeffs, Gaussian, HostNoise, NoiseSchedule};
use diffusion_models::{ModelError, Output, TimeNet};
use tch::{Device, Kind, Tensor};

/// `N(mu, diag(s))` in three dimensions, built with diffusion-core's `Gaussian`.
pub fn target() -> Gaussian {
    let s = [0.5, 2.0, 0.1];
    let cov = (0..3)
        .map(|i| (0..3).map(|j| if i == j { s[i] } else { 0.0 }).collect())
        .collect();
    Gaussian::new(vec![1.0, -0.5, 0.3], cov).unwrap()
}

/// The mean and the diagonal of the covariance.
pub fn mean_var(g: &Gaussian) -> (Vec<f64>, Vec<f64>) {
    let d = g.dim();
    (
        (0..d).map(|i| g.mean()[i]).collect(),
        (0..d).map(|i| g.cov()[(i, i)]).collect(),
    )
}

/// Clean samples as a `[n, d]` double tensor.
pub fn data(g: &Gaussian, n: usize, seed: u64) -> Tensor {
    let x = g.sample(n, &mut HostNoise::new(seed));
    Tensor::from_slice(x.as_slice().unwrap()).reshape([n as i64, g.dim() as i64])
}

/// All entries as host f64.
pub fn host(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

/// `E[x0 | x_t = x]` for rows of `x` at per-row `(alpha, sigma)`: elementwise for a diagonal
/// covariance, `mu + alpha s / (alpha^2 s + sigma^2) (x - alpha mu)`.
pub fn posterior_mean(g: &Gaussian, x: &Tensor, alpha: &[f64], sigma: &[f64]) -> Tensor {
    let (mu, s) = mean_var(g);
    let d = mu.len();
    let xs = host(x);
    let mut out = vec![0.0; xs.len()];
    for b in 0..alpha.len() {
        let (a, sg) = (alpha[b], sigma[b]);
        for i in 0..d {
            let k = a * s[i] / (a * a * s[i] + sg * sg);
            out[b * d + i] = mu[i] + k * (xs[b * d + i] - a * mu[i]);
        }
    }
    Tensor::from_slice(&out).reshape(x.size())
}

/// Mean over dimensions of `Var(x0 | x_t)` at `(alpha, sigma)`.
pub fn posterior_var(g: &Gaussian, alpha: f64, sigma: f64) -> f64 {
    let (_, s) = mean_var(g);
    s.iter()
        .map(|&si| si * sigma * sigma / (alpha * alpha * si + sigma * sigma))
        .sum::<f64>()
        / s.len() as f64
}

/// The exact optimal network for a raw target under a schedule (the time input is `t`), plus a
/// constant `offset` added to its output.
pub struct OptimalRaw<'a> {
    /// The target.
    pub g: Gaussian,
    /// The schedule the time input refers to.
    pub schedule: &'a dyn NoiseSchedule,
    /// What the network predicts.
    pub out: Output,
    /// Added to the output.
    pub offset: f64,
}

impl TimeNet for OptimalRaw<'_> {
    fn forward_t(
        &self,
        x: &Tensor,
        t: &Tensor,
        _class: Option<&Tensor>,
    ) -> Result<Tensor, ModelError> {
        let cs: Vec<Coeffs> = host(t)
            .iter()
            .map(|&ti| Coeffs::at(self.schedule, ti))
            .collect();
        let a: Vec<f64> = cs.iter().map(|c| c.alpha).collect();
        let s: Vec<f64> = cs.iter().map(|c| c.sigma).collect();
        let col = |v: Vec<f64>| Tensor::from_slice(&v).reshape([-1, 1]);
        let x0 = posterior_mean(&self.g, x, &a, &s);
        let (ac, sc) = (col(a.clone()), col(s.clone()));
        let eps = (x - &ac * &x0) / &sc;
        // Definitions straight from the papers (not from the crate under test).
        let y = match self.out {
            Output::Epsilon => eps,
            Output::Sample => x0,
            Output::V => &ac * &eps - &sc * &x0,
            Output::Score => -(eps / &sc),
            Output::Velocity => {
                col(cs.iter().map(|c| c.d_alpha).collect()) * &x0
                    + col(cs.iter().map(|c| c.d_sigma).collect()) * &eps
            }
        };
        Ok(y + self.offset)
    }
    fn kind(&self) -> Kind {
        Kind::Double
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
}

/// The exact optimal raw network `F` under EDM preconditioning (inputs `c_in x`, `c_noise`),
/// with the coefficients written out from Table 1 of the EDM paper, plus `offset`.
pub struct OptimalEdm {
    /// The target.
    pub g: Gaussian,
    /// The preconditioning's data standard deviation.
    pub sigma_data: f64,
    /// Added to the raw output `F`.
    pub offset: f64,
}

impl TimeNet for OptimalEdm {
    fn forward_t(
        &self,
        x_in: &Tensor,
        c_noise: &Tensor,
        _class: Option<&Tensor>,
    ) -> Result<Tensor, ModelError> {
        let sd = self.sigma_data;
        let sigma: Vec<f64> = host(c_noise).iter().map(|c| (4.0 * c).exp()).collect();
        let col = |f: &dyn Fn(f64) -> f64| {
            Tensor::from_slice(&sigma.iter().map(|&s| f(s)).collect::<Vec<_>>()).reshape([-1, 1])
        };
        let c_in = col(&|s| 1.0 / (s * s + sd * sd).sqrt());
        let c_skip = col(&|s| sd * sd / (s * s + sd * sd));
        let c_out = col(&|s| s * sd / (s * s + sd * sd).sqrt());
        let x = x_in / c_in;
        let ones = vec![1.0; sigma.len()];
        let d = posterior_mean(&self.g, &x, &ones, &sigma);
        Ok((d - c_skip * &x) / c_out + self.offset)
    }
    fn kind(&self) -> Kind {
        Kind::Double
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
}

/// A tiny MLP-on-eight-Gaussians training run of `steps` updates (EDM loss, AdamW with
/// warmup, clipping, two EMA decays, a log line every update), for the trainer tests.
pub fn tiny(steps: u64) -> diffusion_models::train::TrainConfig {
    diffusion_models::train::TrainConfig::from_toml_str(&format!(
        r#"
seed = 3
[data]
toy = "8gaussians"
[model]
hidden = 16
depth = 2
embedding = {{ kind = "fourier", dim = 8, scale = 2.0 }}
[loss]
kind = "edm"
sigma_data = 2.0
p_mean = 0.0
[train]
steps = {steps}
batch_size = 64
lr = 5e-3
warmup_steps = 5
weight_decay = 0.01
grad_clip = 0.5
ema_decays = [0.9, 0.99]
log_every = 1
checkpoint_every = 0
"#
    ))
    .unwrap()
}

/// `|a - b| / |b|` over several tensors together (the root of the summed squared differences
/// over the root of the summed squared references), for `(got, want)` pairs, in float64.
pub fn relative_distance<'a>(pairs: impl IntoIterator<Item = (&'a Tensor, &'a Tensor)>) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (got, want) in pairs {
        let w = want.to_kind(Kind::Double);
        num += (got.to_kind(Kind::Double) - &w)
            .square()
            .sum(Kind::Double)
            .double_value(&[]);
        den += w.square().sum(Kind::Double).double_value(&[]);
    }
    (num / den).sqrt()
}

/// The interop fixtures' folder (written by tools/refdata/make_net_fixtures.py).
pub fn fixtures() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A folder with four constant Fashion-MNIST-shaped training images and their labels: data a
/// U-Net trainer can be built on when a test supplies its own inputs.
pub fn fmnist_shaped_dir() -> tempfile::TempDir {
    use diffusion_models::data::idx::write_idx;
    let dir = tempfile::tempdir().unwrap();
    write_idx(
        &dir.path().join("train-images-idx3-ubyte"),
        &[4, 28, 28],
        &[7u8; 4 * 784],
    )
    .unwrap();
    write_idx(
        &dir.path().join("train-labels-idx1-ubyte"),
        &[4],
        &[0u8, 1, 2, 3],
    )
    .unwrap();
    dir
}

/// A U-Net training configuration on the images of `data` (see [`fmnist_shaped_dir`]) with the
/// network of the fixture table `[net]` in nets.toml, EDM's loss at `sigma_data = 0.5`, and
/// `rest` (more TOML sections, e.g. `[train]` and `[sample]`).
pub fn fixture_unet_config(
    net: &str,
    data: &std::path::Path,
    rest: &str,
) -> diffusion_models::train::TrainConfig {
    let table: toml::Table =
        toml::from_str(&std::fs::read_to_string(fixtures().join("nets.toml")).unwrap()).unwrap();
    let mut model = table[net].as_table().unwrap().clone();
    model.insert("kind".into(), "unet".into());
    let mut root: toml::Table = toml::from_str(&format!(
        "seed = 0\ncpu_threads = 0\n[data]\nfmnist = {{ dir = {:?}, flip = false, sampling = \"replacement\" }}\n\
         [loss]\nkind = \"edm\"\nsigma_data = 0.5\n{rest}",
        data.to_string_lossy()
    ))
    .unwrap();
    root.insert("model".into(), model.into());
    diffusion_models::train::TrainConfig::from_toml_str(&toml::to_string(&root).unwrap()).unwrap()
}
