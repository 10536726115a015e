//! A time-conditioned residual MLP for low-dimensional data (the 2-D toys).
//!
//! Paper: Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models", arXiv:2006.11239
//! (a network of the noisy state and the time); the residual MLP with SiLU and an added time
//! embedding is the usual toy-data network of the score-based and flow-matching literature
//! (e.g. torchcfm's `MLP`, Tong et al. 2023, arXiv:2302.00482).
//!
//! The equivalent PyTorch module, whose `state_dict` names the parameters here:
//!
//! ```text
//! class MLP(nn.Module):
//!     def __init__(self, data_dim=2, hidden=128, depth=3, emb_dim=32, num_classes=0):
//!         self.time_embed = GaussianFourierProjection(emb_dim)   # buffer `time_embed.W`;
//!                                                                 # absent for sinusoids
//!         self.time_mlp = nn.Sequential(nn.Linear(emb_dim, hidden), nn.SiLU(),
//!                                       nn.Linear(hidden, hidden))  # time_mlp.{0,2}.{weight,bias}
//!         if num_classes: self.class_embed = nn.Embedding(num_classes + 1, hidden)
//!                                                                 # class_embed.weight; the last
//!                                                                 # row is the null label
//!         self.inp = nn.Linear(data_dim, hidden)                  # inp.{weight,bias}
//!         self.blocks = nn.ModuleList(nn.Linear(hidden, hidden)
//!                                     for _ in range(depth))      # blocks.{i}.{weight,bias}
//!         self.out = nn.Linear(hidden, out_dim or data_dim)       # out.{weight,bias}
//!     def forward(self, x, t, y=None):
//!         e = self.time_mlp(self.time_embed(t * time_scale))
//!         if num_classes: e = e + self.class_embed(y)
//!         h = self.inp(x)
//!         for blk in self.blocks: h = h + blk(F.silu(h + e))
//!         return self.out(F.silu(h))
//! ```
//!
//! `out_dim` (default: `data_dim`) widens the output, e.g. to `2 * data_dim` for Improved DDPM's
//! learned variances (`losses::iddpm`: eps and the variance interpolation `v`).
//!
//! Initialization follows `nn.Linear`'s default (weights and biases uniform on
//! `+-1/sqrt(fan_in)`) and `nn.Embedding`'s (`N(0, 1)`), except that `out` starts at zero, so an
//! untrained network outputs 0 (under EDM preconditioning, `D(x) = c_skip x`).

use super::embedding::{EmbeddingModule, TimeEmbedding};
use super::layers::{linear_cast, wide_kind, wide_variable};
use super::{check_time, fill_from_host, uniform_values, TimeNet};
use crate::error::{ModelError, Result};
use diffusion_core::HostNoise;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// Configuration of [`Mlp`] (TOML section `[model]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpConfig {
    /// Width of the data (2 for the toys).
    pub data_dim: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Number of residual blocks.
    pub depth: usize,
    /// The time embedding.
    pub embedding: TimeEmbedding,
    /// The network's time input is multiplied by this before the embedding.
    pub time_scale: f64,
    /// Number of classes for class conditioning (0: unconditional).
    pub num_classes: usize,
    /// Width of the output (`None`: `data_dim`; `2 * data_dim` for a learned variance).
    pub out_dim: Option<usize>,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            data_dim: 2,
            hidden: 128,
            depth: 3,
            embedding: TimeEmbedding::Fourier {
                dim: 32,
                scale: 4.0,
            },
            time_scale: 1.0,
            num_classes: 0,
            out_dim: None,
        }
    }
}

impl MlpConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("model.data_dim", self.data_dim),
            ("model.hidden", self.hidden),
            ("model.out_dim", self.out_dim.unwrap_or(1)),
        ] {
            if v == 0 {
                return Err(ModelError::invalid(name, "must be at least 1"));
            }
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(ModelError::invalid(
                "model.time_scale",
                format!("must be finite and positive, got {}", self.time_scale),
            ));
        }
        self.embedding.validate()
    }
}

/// The residual MLP (see the module documentation for its PyTorch equivalent).
#[derive(Debug)]
pub struct Mlp {
    config: MlpConfig,
    time_embed: EmbeddingModule,
    time_mlp0: nn::Linear,
    time_mlp2: nn::Linear,
    class_embed: Option<Tensor>,
    inp: nn::Linear,
    blocks: Vec<nn::Linear>,
    out: nn::Linear,
    device: Device,
    kind: Kind,
}

fn zero_linear(path: nn::Path<'_>, i: usize, o: usize) -> nn::Linear {
    let c = nn::LinearConfig {
        ws_init: nn::Init::Const(0.0),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(path, i as i64, o as i64, c)
}

/// `nn.Linear`'s default initialization from host noise.
fn torch_default_init(l: &nn::Linear, fan_in: usize, noise: &mut HostNoise) {
    let bound = 1.0 / (fan_in as f64).sqrt();
    fill_from_host(&l.ws, &uniform_values(noise, l.ws.numel(), bound));
    if let Some(b) = &l.bs {
        fill_from_host(b, &uniform_values(noise, b.numel(), bound));
    }
}

impl Mlp {
    /// Creates the parameters under `path`, initialized from `HostNoise::new(seed)`.
    pub fn new(path: &nn::Path<'_>, config: &MlpConfig, seed: u64) -> Result<Mlp> {
        config.validate()?;
        let mut noise = HostNoise::new(seed);
        let (h, e, d) = (config.hidden, config.embedding.dim(), config.data_dim);
        let time_embed =
            EmbeddingModule::build(&(path / "time_embed"), &config.embedding, &mut noise)?;
        let time_mlp0 = zero_linear(path / "time_mlp" / "0", e, h);
        torch_default_init(&time_mlp0, e, &mut noise);
        let time_mlp2 = zero_linear(path / "time_mlp" / "2", h, h);
        torch_default_init(&time_mlp2, h, &mut noise);
        let class_embed = if config.num_classes > 0 {
            // In the wide kind, as autocast leaves embedding tables (see `layers`).
            let w = wide_variable(
                &(path / "class_embed"),
                "weight",
                &[config.num_classes as i64 + 1, h as i64],
                true,
            );
            fill_from_host(&w, &noise.normals(w.numel()));
            Some(w)
        } else {
            None
        };
        let inp = zero_linear(path / "inp", d, h);
        torch_default_init(&inp, d, &mut noise);
        let blocks = (0..config.depth)
            .map(|i| {
                let l = zero_linear(path / "blocks" / i, h, h);
                torch_default_init(&l, h, &mut noise);
                l
            })
            .collect();
        let out = zero_linear(path / "out", h, config.out_dim.unwrap_or(d));
        Ok(Mlp {
            config: config.clone(),
            time_embed,
            time_mlp0,
            time_mlp2,
            class_embed,
            inp,
            blocks,
            out,
            device: path.device(),
            kind: path.kind(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }
}

impl TimeNet for Mlp {
    fn forward_t(&self, x: &Tensor, t: &Tensor, class: Option<&Tensor>) -> Result<Tensor> {
        let d = self.config.data_dim as i64;
        let size = x.size();
        if size.len() != 2 || size[1] != d {
            return Err(ModelError::Shape {
                context: "Mlp input".into(),
                expected: vec![-1, d],
                got: size,
            });
        }
        let b = check_time(x, t, "Mlp")?;
        let x = x.to_kind(self.kind).to_device(self.device);
        // The embedding in the wide kind (float32 for a 16-bit network, see `layers`).
        let t = t.to_kind(wide_kind(self.kind)).to_device(self.device);
        let e_time = self.time_mlp2.forward(
            &self
                .time_mlp0
                .forward(
                    &self
                        .time_embed
                        .forward(&(t * self.config.time_scale))
                        .to_kind(self.kind),
                )
                .silu(),
        );
        let e = match (&self.class_embed, class) {
            (Some(table), labels) => {
                let n = self.config.num_classes as i64;
                let labels = match labels {
                    Some(l) => {
                        if l.size() != [b] {
                            return Err(ModelError::Shape {
                                context: "Mlp class labels".into(),
                                expected: vec![b],
                                got: l.size(),
                            });
                        }
                        let l = l.to_kind(Kind::Int64).to_device(self.device);
                        if b > 0 {
                            let (lo, hi) = (l.min().int64_value(&[]), l.max().int64_value(&[]));
                            if lo < 0 || hi > n {
                                return Err(ModelError::invalid(
                                    "class",
                                    format!("labels must lie in 0..={n} ({n} = no class), got {lo}..={hi}"),
                                ));
                            }
                        }
                        l
                    }
                    None => Tensor::full([b], n, (Kind::Int64, self.device)),
                };
                e_time + table.index_select(0, &labels)
            }
            (None, Some(_)) => {
                return Err(ModelError::invalid(
                    "class",
                    "this network is unconditional (model.num_classes = 0)",
                ))
            }
            (None, None) => e_time,
        };
        let mut h = self.inp.forward(&x);
        for blk in &self.blocks {
            h = &h + linear_cast(blk, &(&h + &e).silu());
        }
        Ok(self.out.forward(&h.silu()))
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn device(&self) -> Device {
        self.device
    }

    fn null_class(&self) -> Option<i64> {
        (self.config.num_classes > 0).then_some(self.config.num_classes as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_match_the_pytorch_state_dict() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = MlpConfig {
            depth: 2,
            hidden: 8,
            num_classes: 3,
            ..MlpConfig::default()
        };
        let _net = Mlp::new(&vs.root(), &cfg, 0).unwrap();
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        let want = [
            "blocks.0.bias",
            "blocks.0.weight",
            "blocks.1.bias",
            "blocks.1.weight",
            "class_embed.weight",
            "inp.bias",
            "inp.weight",
            "out.bias",
            "out.weight",
            "time_embed.W",
            "time_mlp.0.bias",
            "time_mlp.0.weight",
            "time_mlp.2.bias",
            "time_mlp.2.weight",
        ];
        assert_eq!(names, want);
        let v = vs.variables();
        assert_eq!(v["inp.weight"].size(), [8, 2]);
        assert_eq!(v["time_mlp.0.weight"].size(), [8, 32]);
        assert_eq!(v["class_embed.weight"].size(), [4, 8]);
        assert_eq!(v["time_embed.W"].size(), [16]);
    }

    #[test]
    fn forward_is_seeded_zero_at_init_and_checks_shapes() {
        let cfg = MlpConfig {
            hidden: 16,
            ..MlpConfig::default()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Mlp::new(&vs.root(), &cfg, 7).unwrap();
        let x = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.0]).reshape([2, 2]);
        let t = Tensor::from_slice(&[0.1f32, 0.9]);
        let y = net.forward_t(&x, &t, None).unwrap();
        assert_eq!(y.size(), [2, 2]);
        assert_eq!(
            y.abs().sum(Kind::Float).double_value(&[]),
            0.0,
            "zero-initialized output"
        );
        // The same seed gives the same weights; another seed does not.
        let vs2 = nn::VarStore::new(Device::Cpu);
        let _n2 = Mlp::new(&vs2.root(), &cfg, 7).unwrap();
        let vs3 = nn::VarStore::new(Device::Cpu);
        let _n3 = Mlp::new(&vs3.root(), &cfg, 8).unwrap();
        let (a, b, c) = (vs.variables(), vs2.variables(), vs3.variables());
        assert!(a["inp.weight"].equal(&b["inp.weight"]));
        assert!(!a["inp.weight"].equal(&c["inp.weight"]));
        // Shape errors, not panics.
        assert!(net.forward_t(&x.reshape([1, 4]), &t, None).is_err());
        assert!(net
            .forward_t(&x, &Tensor::from_slice(&[0.1f32]), None)
            .is_err());
        assert!(net
            .forward_t(&x, &t, Some(&Tensor::from_slice(&[0i64, 1])))
            .is_err());
        assert!(MlpConfig {
            time_scale: 0.0,
            ..MlpConfig::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn class_labels_condition_the_output_and_are_checked() {
        let cfg = MlpConfig {
            hidden: 8,
            num_classes: 2,
            ..MlpConfig::default()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Mlp::new(&vs.root(), &cfg, 1).unwrap();
        // Give the output layer weights so the class shows.
        tch::no_grad(|| {
            let mut w = vs.variables()["out.weight"].shallow_clone();
            let _ = w.fill_(0.1);
        });
        let x = Tensor::zeros([2, 2], (Kind::Float, Device::Cpu));
        let t = Tensor::from_slice(&[0.3f32, 0.3]);
        let a = net
            .forward_t(&x, &t, Some(&Tensor::from_slice(&[0i64, 1])))
            .unwrap();
        assert!(!a.get(0).equal(&a.get(1)));
        let null = net.forward_t(&x, &t, None).unwrap();
        let explicit = net
            .forward_t(&x, &t, Some(&Tensor::from_slice(&[2i64, 2])))
            .unwrap();
        assert!(null.equal(&explicit));
        assert_eq!(net.null_class(), Some(2));
        assert!(net
            .forward_t(&x, &t, Some(&Tensor::from_slice(&[3i64, 0])))
            .is_err());
    }
}
