//! Networks: the [`TimeNet`] interface every time-conditioned network implements, the time
//! embeddings, the MLP score network for low-dimensional (toy) data, the image U-Net
//! (DDPM++ / ADM), the DiT, a time-conditioned sequence transformer for discrete diffusion,
//! [`load_state_dict`] / [`load_safetensors`] to fill a `VarStore` from PyTorch weights, and the
//! exact mixture denoiser [`GmmNet`] (an analytic oracle with autograd).
//!
//! Parameters are created in a `tch::nn::VarStore` under the names of the equivalent PyTorch
//! module's `state_dict`, so weights move between the two through safetensors. Initial values
//! are drawn on the host from a seeded [`HostNoise`] (not from torch's global generator), so a
//! seed gives the same network on every device and in every thread.

pub mod analytic;
pub mod dit;
pub mod embedding;
pub mod etsdm;
pub mod layers;
pub mod mlp;
pub mod state;
pub mod transformer;
pub mod unet;

pub use analytic::GmmNet;
pub use dit::{Dit, DitConfig};
pub use embedding::{FourierEmbedding, SinusoidalEmbedding, TimeEmbedding};
pub use etsdm::SharedTime;
pub use mlp::{Mlp, MlpConfig};
pub use state::{load_safetensors, load_state_dict, num_parameters, state_dict};
pub use transformer::{SeqTransformer, SeqTransformerConfig};
pub use unet::{UNet, UNetConfig};

use crate::error::{ModelError, Result};
use diffusion_core::HostNoise;
use tch::{Device, Kind, Tensor};

/// A network conditioned on a per-sample time (or noise-level) input and optionally on a class
/// label: `out = net(x, t, class)`.
pub trait TimeNet {
    /// The output for states `x` (`[B, ...]`), per-sample times `t` (`[B]`, already in the unit
    /// the network expects, e.g. EDM's `c_noise`) and optional class labels (`[B]`, `Int64`).
    fn forward_t(&self, x: &Tensor, t: &Tensor, class: Option<&Tensor>) -> Result<Tensor>;
    /// The floating-point kind of the parameters (inputs are cast to it).
    fn kind(&self) -> Kind {
        Kind::Float
    }
    /// The device of the parameters (inputs are moved to it).
    fn device(&self) -> Device;
    /// The label that means "no class" (classifier-free guidance's null token), when the network
    /// is class-conditional.
    fn null_class(&self) -> Option<i64> {
        None
    }
    /// Switches train-mode behaviour (dropout) on or off; nets without any do nothing (the
    /// default).
    fn set_train(&self, _train: bool) {}
    /// Seeds the train-mode randomness (dropout masks) and restarts its stream; nets without
    /// any do nothing (the default). A trainer can call it every step with a seed from its own
    /// stream so resumed runs are exact.
    fn set_dropout_seed(&self, _seed: u64) {}
}

/// A boxed network is a network (so `&Box<dyn TimeNet>` works where `&dyn TimeNet` is asked for).
impl<T: TimeNet + ?Sized> TimeNet for Box<T> {
    fn forward_t(&self, x: &Tensor, t: &Tensor, class: Option<&Tensor>) -> Result<Tensor> {
        (**self).forward_t(x, t, class)
    }
    fn kind(&self) -> Kind {
        (**self).kind()
    }
    fn device(&self) -> Device {
        (**self).device()
    }
    fn null_class(&self) -> Option<i64> {
        (**self).null_class()
    }
}

/// Checks that `t` holds one value per row of `x`.
pub(crate) fn check_time(x: &Tensor, t: &Tensor, context: &str) -> Result<i64> {
    let b = *x.size().first().unwrap_or(&0);
    if t.size() != [b] {
        return Err(ModelError::Shape {
            context: format!("{context}: per-sample time"),
            expected: vec![b],
            got: t.size(),
        });
    }
    Ok(b)
}

/// Fills `t` (in place, without recording gradients) with host values.
pub(crate) fn fill_from_host(t: &Tensor, values: &[f64]) {
    let src = Tensor::from_slice(values)
        .reshape(t.size())
        .to_kind(t.kind())
        .to_device(t.device());
    tch::no_grad(|| {
        let mut dst = t.shallow_clone();
        dst.copy_(&src);
    });
}

/// `n` draws uniform on `[-bound, bound)`.
pub(crate) fn uniform_values(noise: &mut HostNoise, n: usize, bound: f64) -> Vec<f64> {
    (0..n)
        .map(|_| (2.0 * noise.uniform() - 1.0) * bound)
        .collect()
}
