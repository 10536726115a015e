//! Time embeddings: map a per-sample scalar time (or noise level) to a feature vector.
//!
//! Paper: Vaswani et al. (2017), "Attention Is All You Need", arXiv:1706.03762, Sec. 3.5 (the
//! sinusoidal embedding, used for diffusion time by Ho, Jain & Abbeel (2020), "Denoising
//! Diffusion Probabilistic Models", arXiv:2006.11239, App. B); Tancik et al. (2020), "Fourier
//! Features Let Networks Learn High Frequency Functions in Low Dimensional Domains",
//! arXiv:2006.10739, and Song et al. (2021), "Score-Based Generative Modeling through Stochastic
//! Differential Equations", arXiv:2011.13456, App. H.1 (random Gaussian Fourier features).
//!
//! Conventions, matching the PyTorch references:
//! - sinusoidal (`guided_diffusion/nn.py:timestep_embedding`, diffusers' `get_timestep_embedding`
//!   with `flip_sin_to_cos=True, downscale_freq_shift=0`): with `half = dim / 2`,
//!   `f_k = exp(-ln(max_period) k / half)`, `emb = [cos(t f_0..), sin(t f_0..)]`; no parameters;
//! - Fourier (`score_sde/models/layerspp.py:GaussianFourierProjection`): a fixed buffer
//!   `W ~ N(0, scale^2)` of `dim / 2` entries, `emb = [sin(2 pi t W), cos(2 pi t W)]`; it is saved
//!   under the name `W` but never trained.

use crate::error::{ModelError, Result};
use diffusion_core::HostNoise;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use tch::{nn, Kind, Tensor};

/// Which time embedding a network uses (a configuration value; TOML
/// `{ kind = "fourier", dim = 32, scale = 4.0 }`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TimeEmbedding {
    /// Transformer sinusoids with periods up to `max_period` (10000 in DDPM).
    Sinusoidal {
        /// Output width (even).
        dim: usize,
        /// The longest period.
        #[serde(default = "default_max_period")]
        max_period: f64,
    },
    /// Random Gaussian Fourier features with frequencies `~ N(0, scale^2)` (16 in NCSN++).
    Fourier {
        /// Output width (even).
        dim: usize,
        /// Standard deviation of the frequencies.
        scale: f64,
    },
}

fn default_max_period() -> f64 {
    10000.0
}

impl TimeEmbedding {
    /// The output width.
    pub fn dim(&self) -> usize {
        match *self {
            TimeEmbedding::Sinusoidal { dim, .. } | TimeEmbedding::Fourier { dim, .. } => dim,
        }
    }

    /// Checks the width (even, at least 2) and the scale or period (finite, positive).
    pub fn validate(&self) -> Result<()> {
        let dim = self.dim();
        if dim < 2 || dim % 2 != 0 {
            return Err(ModelError::invalid(
                "embedding.dim",
                format!("must be even and at least 2, got {dim}"),
            ));
        }
        let (name, v) = match *self {
            TimeEmbedding::Sinusoidal { max_period, .. } => ("embedding.max_period", max_period),
            TimeEmbedding::Fourier { scale, .. } => ("embedding.scale", scale),
        };
        if !(v.is_finite() && v > 0.0) {
            return Err(ModelError::invalid(
                name,
                format!("must be finite and positive, got {v}"),
            ));
        }
        Ok(())
    }
}

/// The parameter-free sinusoidal embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SinusoidalEmbedding {
    dim: usize,
    max_period: f64,
}

impl SinusoidalEmbedding {
    /// An embedding of even width `dim` with periods up to `max_period`.
    pub fn new(dim: usize, max_period: f64) -> Result<Self> {
        TimeEmbedding::Sinusoidal { dim, max_period }.validate()?;
        Ok(SinusoidalEmbedding { dim, max_period })
    }

    /// `[B] -> [B, dim]`, in the kind and on the device of `t`.
    pub fn forward(&self, t: &Tensor) -> Tensor {
        let half = self.dim / 2;
        // The frequencies in float64 on the device of `t` (no host data per forward), in the
        // operation order of the PyTorch reference, then in the kind of `t`.
        let f = (Tensor::arange(half as i64, (Kind::Double, t.device())) * (-self.max_period.ln())
            / half as f64)
            .exp()
            .to_kind(t.kind());
        let args = t.unsqueeze(1) * f.unsqueeze(0);
        Tensor::cat(&[args.cos(), args.sin()], 1)
    }
}

/// Random Fourier features with a fixed (non-trainable) frequency buffer `W`.
#[derive(Debug)]
pub struct FourierEmbedding {
    w: Tensor,
}

impl FourierEmbedding {
    /// Creates the buffer `W` (`dim / 2` entries `~ N(0, scale^2)` from `noise`) under `path`, in
    /// the path's kind, or in float32 under a 16-bit path: the features `sin(2 pi t W)` reach
    /// arguments of tens of radians, where bfloat16's 8 bits in `W` would move them by tenths
    /// (the time itself enters in float32 too, see `layers`).
    pub fn new(path: &nn::Path<'_>, dim: usize, scale: f64, noise: &mut HostNoise) -> Result<Self> {
        TimeEmbedding::Fourier { dim, scale }.validate()?;
        let values: Vec<f64> = noise.normals(dim / 2).iter().map(|z| z * scale).collect();
        let w = Tensor::from_slice(&values)
            .to_kind(super::layers::wide_kind(path.kind()))
            .to_device(path.device());
        let w = path.add("W", w, false);
        Ok(FourierEmbedding { w })
    }

    /// The frequency buffer `W`.
    pub fn frequencies(&self) -> &Tensor {
        &self.w
    }

    /// `[B] -> [B, dim]`: `[sin(2 pi t W), cos(2 pi t W)]`.
    pub fn forward(&self, t: &Tensor) -> Tensor {
        let w = self.w.to_kind(t.kind());
        let args = t.unsqueeze(1) * (w * (2.0 * PI)).unsqueeze(0);
        Tensor::cat(&[args.sin(), args.cos()], 1)
    }
}

/// A built time embedding (what [`TimeEmbedding`] describes).
#[derive(Debug)]
pub enum EmbeddingModule {
    /// Sinusoidal.
    Sinusoidal(SinusoidalEmbedding),
    /// Fourier features.
    Fourier(FourierEmbedding),
}

impl EmbeddingModule {
    /// Builds the embedding described by `spec` under `path` (only Fourier features create a
    /// variable, `path.W`).
    pub fn build(path: &nn::Path<'_>, spec: &TimeEmbedding, noise: &mut HostNoise) -> Result<Self> {
        Ok(match *spec {
            TimeEmbedding::Sinusoidal { dim, max_period } => {
                EmbeddingModule::Sinusoidal(SinusoidalEmbedding::new(dim, max_period)?)
            }
            TimeEmbedding::Fourier { dim, scale } => {
                EmbeddingModule::Fourier(FourierEmbedding::new(path, dim, scale, noise)?)
            }
        })
    }

    /// `[B] -> [B, dim]`.
    pub fn forward(&self, t: &Tensor) -> Tensor {
        match self {
            EmbeddingModule::Sinusoidal(e) => e.forward(t),
            EmbeddingModule::Fourier(e) => e.forward(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn sinusoidal_matches_the_closed_form() {
        let e = SinusoidalEmbedding::new(6, 10000.0).unwrap();
        let t = Tensor::from_slice(&[0.0f64, 2.5]);
        let out = e.forward(&t);
        assert_eq!(out.size(), [2, 6]);
        let got: Vec<f64> = Vec::try_from(out.reshape([-1])).unwrap();
        for (row, tv) in [0.0f64, 2.5].iter().enumerate() {
            for k in 0..3 {
                let f = (-(10000f64.ln()) * k as f64 / 3.0).exp();
                assert!((got[row * 6 + k] - (tv * f).cos()).abs() < 1e-12);
                assert!((got[row * 6 + 3 + k] - (tv * f).sin()).abs() < 1e-12);
            }
        }
        assert!(SinusoidalEmbedding::new(5, 10000.0).is_err());
        assert!(SinusoidalEmbedding::new(4, -1.0).is_err());
    }

    #[test]
    fn fourier_features_are_sin_then_cos_of_a_fixed_buffer() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut noise = HostNoise::new(3);
        let e = FourierEmbedding::new(&vs.root().sub("time_embed"), 4, 2.0, &mut noise).unwrap();
        let w: Vec<f64> = Vec::try_from(e.frequencies().to_kind(Kind::Double)).unwrap();
        let want: Vec<f64> = HostNoise::new(3)
            .normals(2)
            .iter()
            .map(|z| 2.0 * z)
            .collect();
        for (a, b) in w.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6);
        }
        // Saved under the PyTorch name, not trainable.
        assert!(vs.variables().contains_key("time_embed.W"));
        assert!(vs.trainable_variables().is_empty());
        let out = e.forward(&Tensor::from_slice(&[0.3f32]));
        let got: Vec<f64> = Vec::try_from(out.reshape([-1]).to_kind(Kind::Double)).unwrap();
        for k in 0..2 {
            let a = 2.0 * PI * 0.3 * w[k];
            assert!((got[k] - a.sin()).abs() < 1e-5);
            assert!((got[2 + k] - a.cos()).abs() < 1e-5);
        }
    }
}
