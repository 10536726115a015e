//! Building blocks shared by the U-Net, the DiT and the sequence transformer: seeded
//! initializers in PyTorch's conventions, the time-embedding MLP, multi-head self-attention,
//! class labels with a null class, and a seeded, device-independent dropout.
//!
//! Paper: Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural Networks from
//! Overfitting", JMLR 15 (inverted dropout: kept units scaled by `1 / (1 - p)`); Vaswani et al.
//! (2017), "Attention Is All You Need", arXiv:1706.03762, Eq. 1 (scaled dot-product attention);
//! Wu & He (2018), "Group Normalization", arXiv:1803.08494.
//!
//! Dropout masks come neither from torch's global generator (shared by all threads, different
//! between CPU and CUDA) nor from host draws (a host round trip for every activation). Each
//! dropout call gets a 64-bit key (the network's dropout seed mixed with a per-network call
//! counter through SplitMix64), and the mask of element `i` (flat row-major index) is
//! `hash32(hash32((i mod 2^32) xor k_lo) xor k_hi) / 2^32 >= p`, where `k_lo`, `k_hi` are the low
//! and high 32 bits of the key and `hash32` is the integer mixer
//! `x ^= x >> 16; x = (x * 0x45d9f3b) mod 2^32; x ^= x >> 16; x = (x * 0x45d9f3b) mod 2^32;
//! x ^= x >> 16`, evaluated with `Int64` tensor operations (every product stays below `2^63`).
//! The same seed and call order give the same masks on every device and thread count, and
//! `tools/torch_ref/nets.py` reproduces them bit for bit.

use super::embedding::{EmbeddingModule, TimeEmbedding};
use super::{fill_from_host, uniform_values};
use crate::error::{ModelError, Result};
use diffusion_core::HostNoise;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// How a layer's weights start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Init {
    /// PyTorch's default for `nn.Linear` / `nn.Conv2d`: weight and bias uniform on
    /// `+-1/sqrt(fan_in)`.
    TorchDefault,
    /// Xavier (Glorot) uniform weight, zero bias (DiT's `initialize_weights`).
    XavierUniform,
    /// Weight `N(0, std^2)`, zero bias.
    Normal(f64),
    /// Weight and bias zero (the zero-initialised output layers of DDPM++ / ADM / adaLN-Zero).
    Zero,
}

/// A dense layer `[.., i] -> [.., o]` named like `nn.Linear` (`weight` `[o, i]`, `bias` `[o]`).
pub(crate) fn linear(
    path: nn::Path<'_>,
    i: usize,
    o: usize,
    init: Init,
    noise: &mut HostNoise,
) -> nn::Linear {
    let c = nn::LinearConfig {
        ws_init: nn::Init::Const(0.0),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    let l = nn::linear(path, i as i64, o as i64, c);
    init_weight_bias(&l.ws, l.bs.as_ref(), i, o, init, noise);
    l
}

/// A 2-D convolution named like `nn.Conv2d` (`weight` `[cout, cin, k, k]`, `bias` `[cout]`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d(
    path: nn::Path<'_>,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    padding: usize,
    init: Init,
    noise: &mut HostNoise,
) -> nn::Conv2D {
    let c = nn::ConvConfig {
        stride: stride as i64,
        padding: padding as i64,
        ws_init: nn::Init::Const(0.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    let conv = nn::conv2d(path, cin as i64, cout as i64, k as i64, c);
    init_weight_bias(
        &conv.ws,
        conv.bs.as_ref(),
        cin * k * k,
        cout * k * k,
        init,
        noise,
    );
    conv
}

fn init_weight_bias(
    w: &Tensor,
    b: Option<&Tensor>,
    fan_in: usize,
    fan_out: usize,
    init: Init,
    noise: &mut HostNoise,
) {
    match init {
        Init::TorchDefault => {
            let bound = 1.0 / (fan_in as f64).sqrt();
            fill_from_host(w, &uniform_values(noise, w.numel(), bound));
            if let Some(b) = b {
                fill_from_host(b, &uniform_values(noise, b.numel(), bound));
            }
        }
        Init::XavierUniform => {
            let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
            fill_from_host(w, &uniform_values(noise, w.numel(), bound));
        }
        Init::Normal(std) => {
            let v: Vec<f64> = noise.normals(w.numel()).iter().map(|z| z * std).collect();
            fill_from_host(w, &v);
        }
        Init::Zero => {}
    }
}

/// `nn.GroupNorm(groups, channels)` (eps `1e-5`, `weight` ones, `bias` zeros).
pub(crate) fn group_norm(path: nn::Path<'_>, groups: usize, channels: usize) -> nn::GroupNorm {
    nn::group_norm(path, groups as i64, channels as i64, Default::default())
}

/// A table `[n, dim]` named like `nn.Embedding` (`weight`), entries `N(0, std^2)`.
pub(crate) fn embedding_table(
    path: nn::Path<'_>,
    name: &str,
    n: usize,
    dim: usize,
    std: f64,
    noise: &mut HostNoise,
) -> Tensor {
    let w = path.zeros(name, &[n as i64, dim as i64]);
    let v: Vec<f64> = noise.normals(w.numel()).iter().map(|z| z * std).collect();
    fill_from_host(&w, &v);
    w
}

/// The time embedding followed by `Linear -> SiLU -> Linear`: `time_embed(t * time_scale)` then
/// `mlp.0`, `mlp.2` (the names of an `nn.Sequential(Linear, SiLU, Linear)`).
#[derive(Debug)]
pub(crate) struct TimeMlp {
    embed: EmbeddingModule,
    l0: nn::Linear,
    l2: nn::Linear,
    time_scale: f64,
}

impl TimeMlp {
    /// The embedding's buffer (Fourier features only) goes under `embed_path`, the two linear
    /// layers under `mlp_path / "0"` and `mlp_path / "2"`.
    pub(crate) fn new(
        embed_path: &nn::Path<'_>,
        mlp_path: &nn::Path<'_>,
        spec: &TimeEmbedding,
        time_scale: f64,
        width: usize,
        init: Init,
        noise: &mut HostNoise,
    ) -> Result<Self> {
        let embed = EmbeddingModule::build(embed_path, spec, noise)?;
        let l0 = linear(mlp_path / "0", spec.dim(), width, init, noise);
        let l2 = linear(mlp_path / "2", width, width, init, noise);
        Ok(TimeMlp {
            embed,
            l0,
            l2,
            time_scale,
        })
    }

    /// `[B] -> [B, width]`.
    pub(crate) fn forward(&self, t: &Tensor) -> Tensor {
        let e = self.embed.forward(&(t * self.time_scale));
        self.l2.forward(&self.l0.forward(&e).silu())
    }
}

/// Checks class labels against a network with `num_classes` classes (the extra label
/// `num_classes` is the null class) and returns them as `Int64` on `device`; `None` means the
/// null class for a class-conditional network.
pub(crate) fn class_labels(
    class: Option<&Tensor>,
    batch: i64,
    num_classes: Option<usize>,
    device: Device,
    context: &str,
) -> Result<Option<Tensor>> {
    let Some(n) = num_classes else {
        return match class {
            Some(_) => Err(ModelError::invalid(
                "class",
                format!("{context} is unconditional (num_classes is not set)"),
            )),
            None => Ok(None),
        };
    };
    let n = n as i64;
    let labels = match class {
        Some(l) => {
            if l.size() != [batch] {
                return Err(ModelError::Shape {
                    context: format!("{context} class labels"),
                    expected: vec![batch],
                    got: l.size(),
                });
            }
            if l.is_floating_point() {
                return Err(ModelError::invalid(
                    "class",
                    format!("{context}: labels must be integers, got {:?}", l.kind()),
                ));
            }
            let l = l.to_kind(Kind::Int64).to_device(device);
            if batch > 0 {
                let (lo, hi) = (l.min().int64_value(&[]), l.max().int64_value(&[]));
                if lo < 0 || hi > n {
                    return Err(ModelError::invalid(
                        "class",
                        format!(
                            "{context}: labels must lie in 0..={n} ({n} = no class), got {lo}..={hi}"
                        ),
                    ));
                }
            }
            l
        }
        None => Tensor::full([batch], n, (Kind::Int64, device)),
    };
    Ok(Some(labels))
}

/// Multi-head scaled dot-product attention over `[B, heads, L, d]` queries, keys and values:
/// `softmax(q k^T / sqrt(d)) v`, `[B, heads, L, d]`.
pub(crate) fn attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
    let d = *q.size().last().unwrap_or(&1) as f64;
    let w = q.matmul(&k.transpose(-2, -1)) * (1.0 / d.sqrt());
    w.softmax(-1, w.kind()).matmul(v)
}

/// SplitMix64's output function.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The key of dropout call number `call` of a network whose dropout seed is `seed`.
pub fn dropout_key(seed: u64, call: u64) -> u64 {
    splitmix64(seed ^ splitmix64(call))
}

const MASK32: i64 = 0xffff_ffff;

fn hash32(x: &Tensor) -> Tensor {
    let m = 0x045d_9f3b_i64;
    let x = x.bitwise_xor_tensor(&x.bitwise_right_shift_tensor_scalar(16));
    let x = (x * m).bitwise_and(MASK32);
    let x = x.bitwise_xor_tensor(&x.bitwise_right_shift_tensor_scalar(16));
    let x = (x * m).bitwise_and(MASK32);
    x.bitwise_xor_tensor(&x.bitwise_right_shift_tensor_scalar(16))
}

/// Uniform numbers on `[0, 1)` (multiples of `2^-32`, `Double`) with the shape of `like` and on
/// its device, a function of `key` and each element's flat index only (see the module
/// documentation).
pub fn hash_uniform(like: &Tensor, key: u64) -> Tensor {
    let (lo, hi) = ((key & 0xffff_ffff) as i64, (key >> 32) as i64);
    let idx = Tensor::arange(like.numel() as i64, (Kind::Int64, like.device())).bitwise_and(MASK32);
    let h = hash32(&hash32(&idx.bitwise_xor(lo)).bitwise_xor(hi));
    (h.to_kind(Kind::Double) * (1.0 / 4_294_967_296.0)).reshape(like.size())
}

/// Inverted dropout with rate `p` and the mask of [`hash_uniform`]`(x, key)`: an element is kept
/// (and scaled by `1 / (1 - p)`) when its uniform number is at least `p`.
pub fn hash_dropout(x: &Tensor, p: f64, key: u64) -> Tensor {
    if p <= 0.0 {
        return x.shallow_clone();
    }
    let keep = hash_uniform(x, key).ge(p).to_kind(x.kind());
    x * keep * (1.0 / (1.0 - p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_uniform_is_uniform_deterministic_and_key_dependent() {
        let like = Tensor::zeros([200_000], (Kind::Double, Device::Cpu));
        let u = hash_uniform(&like, 12345);
        assert!(u.equal(&hash_uniform(&like, 12345)));
        assert!(!u.equal(&hash_uniform(&like, 12346)));
        let n = 200_000f64;
        let mean = u.mean(Kind::Double).double_value(&[]);
        let var = u.var(false).double_value(&[]);
        // Mean 1/2 and variance 1/12 within a few standard errors.
        assert!((mean - 0.5).abs() < 4.0 * (1.0 / 12.0 / n).sqrt(), "{mean}");
        assert!((var - 1.0 / 12.0).abs() < 1e-3, "{var}");
        let (lo, hi) = (u.min().double_value(&[]), u.max().double_value(&[]));
        assert!((0.0..1.0).contains(&lo) && hi < 1.0);
        // Ten equal bins hold about n / 10 each (chi-square with 9 degrees of freedom).
        let counts = (u * 10.0)
            .floor()
            .to_kind(Kind::Int64)
            .bincount::<Tensor>(None, 10);
        let c: Vec<i64> = Vec::try_from(counts).unwrap();
        let chi2: f64 = c
            .iter()
            .map(|&k| (k as f64 - n / 10.0).powi(2) / (n / 10.0))
            .sum();
        assert!(chi2 < 30.0, "{chi2} {c:?}");
        // Lag-one correlation of neighbours is small.
        let a = hash_uniform(&like, 7);
        let x = a.narrow(0, 0, 199_999) - 0.5;
        let y = a.narrow(0, 1, 199_999) - 0.5;
        let corr = (x * y).mean(Kind::Double).double_value(&[]) * 12.0;
        assert!(corr.abs() < 0.02, "{corr}");
    }

    #[test]
    fn hash_dropout_keeps_the_mean_and_the_rate() {
        let x = Tensor::ones([100_000], (Kind::Float, Device::Cpu));
        let y = hash_dropout(&x, 0.25, dropout_key(3, 0));
        let kept = y.gt(0.0).to_kind(Kind::Double).mean(Kind::Double);
        assert!((kept.double_value(&[]) - 0.75).abs() < 0.01);
        let mean = y.mean(Kind::Double).double_value(&[]);
        assert!((mean - 1.0).abs() < 0.02, "{mean}");
        let vals: Vec<f32> = Vec::try_from(y.reshape([-1])).unwrap();
        assert!(vals
            .iter()
            .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
        assert!(hash_dropout(&x, 0.0, 1).equal(&x));
        assert_ne!(dropout_key(3, 0), dropout_key(3, 1));
    }
}
