//! Building blocks shared by the U-Net, the DiT and the sequence transformer: seeded
//! initializers in PyTorch's conventions, the time-embedding MLP, multi-head self-attention,
//! class labels with a null class, and a seeded, device-independent dropout.
//!
//! Paper: Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural Networks from
//! Overfitting", JMLR 15 (inverted dropout: kept units scaled by `1 / (1 - p)`); Vaswani et al.
//! (2017), "Attention Is All You Need", arXiv:1706.03762, Eq. 1 (scaled dot-product attention);
//! Wu & He (2018), "Group Normalization", arXiv:1803.08494.
//!
//! Dropout masks do not come from torch's global generator (shared by all threads, different
//! between CPU and CUDA) but from a counter-based hash. Each
//! dropout call gets a 64-bit key (the network's dropout seed mixed with a per-network call
//! counter through SplitMix64), and the mask of element `i` (flat row-major index) is
//! `hash32(hash32((i mod 2^32) xor k_lo) xor k_hi) / 2^32 >= p`, where `k_lo`, `k_hi` are the low
//! and high 32 bits of the key and `hash32` is the integer mixer
//! `x ^= x >> 16; x = (x * 0x45d9f3b) mod 2^32; x ^= x >> 16; x = (x * 0x45d9f3b) mod 2^32;
//! x ^= x >> 16`, evaluated by a host loop for CPU tensors and with `Int64` tensor operations on
//! other devices (every product stays below `2^63`).
//! The same seed and call order give the same masks on every device and thread count, and
//! `tools/torch_ref/nets.py` reproduces them bit for bit.
//!
//! Precision: a network whose parameters are bfloat16 or float16 (the compute copy of
//! `precision = "bf16"` training) runs its precision-sensitive operations in float32, the split
//! `torch.autocast` makes on CUDA: the time embedding (`sin` / `cos` of the time, which would
//! otherwise enter rounded to 8 bits), and GroupNorm and LayerNorm with what follows them up to
//! the next convolution or linear layer (activations, scale-shift modulation, dropout);
//! convolutions, linear layers and matrix products take 16-bit inputs ([`wide_kind`],
//! [`GroupNorm`], [`layer_norm_wide`]); the attention softmax runs in float32 and is cast back
//! for the product with the values ([`attention`]); GroupNorm's affine parameters are float32
//! variables even in a 16-bit store (autocast never rounds a norm's parameters), and so are
//! embedding tables and fixed position tables ([`embedding_table`], [`wide_variable`]):
//! autocast does not cast an embedding lookup, so a token or class embedding enters float32 and
//! whatever it is added to (a transformer's residual stream, a U-Net's time embedding) is
//! promoted to float32 from there on, each linear layer casting its input down
//! ([`linear_cast`]) and each branch it feeds coming back in 16 bits. Float32 and
//! float64 networks are untouched by this (every cast is to their own kind, which is no
//! operation). The split is checked against PyTorch under CUDA autocast's op lists (emulated on
//! the CPU by `tools/torch_ref/autocast_lists.py`): the bfloat16 U-Net, DiT and sequence
//! transformer give PyTorch's outputs and gradients bit for bit (`tests/interop.rs`), the
//! trainer's bf16 path its EDM-loss gradients (`tests/train_bf16.rs`,
//! `tools/bench/gpu/grad_check.py` for the same on a GPU against the real autocast).

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

/// `nn.GroupNorm(groups, channels)` (eps `1e-5`, `weight` ones, `bias` zeros) whose affine
/// parameters are kept in [`wide_kind`] of the store (float32 in a bfloat16 copy, as autocast
/// keeps a float32 module's norm parameters) and which computes in that kind: see
/// [`GroupNorm::forward`].
#[derive(Debug)]
pub(crate) struct GroupNorm {
    /// Scale `[channels]`.
    pub(crate) ws: Tensor,
    /// Shift `[channels]`.
    pub(crate) bs: Tensor,
    groups: i64,
}

/// Epsilon of [`GroupNorm`] (PyTorch's default).
const GROUP_NORM_EPS: f64 = 1e-5;

/// A [`GroupNorm`] of `channels` in `groups` under `path` (`weight`, `bias`).
pub(crate) fn group_norm(path: nn::Path<'_>, groups: usize, channels: usize) -> GroupNorm {
    let c = channels as i64;
    let ws = wide_variable(&path, "weight", &[c], true);
    tch::no_grad(|| {
        let _ = ws.shallow_clone().fill_(1.0);
    });
    GroupNorm {
        ws,
        bs: wide_variable(&path, "bias", &[c], true),
        groups: groups as i64,
    }
}

impl GroupNorm {
    /// The norm of `x` computed in [`wide_kind`] of `x` (a 16-bit input is cast up; the
    /// parameters already are in that kind, or are cast to it) and returned in that kind: the
    /// caller casts back to the network's kind where a convolution or linear layer takes over,
    /// as autocast does. For float32 and float64 `x` it is the plain GroupNorm in `x`'s kind.
    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        let k = wide_kind(x.kind());
        Tensor::group_norm(
            &x.to_kind(k),
            self.groups,
            Some(&self.ws.to_kind(k)),
            Some(&self.bs.to_kind(k)),
            GROUP_NORM_EPS,
            true,
        )
    }
}

/// A zero variable `name` of `shape` under `path` in [`wide_kind`] of the store: float32 in a
/// 16-bit copy. For the tables that autocast never rounds (embedding lookups are not on its
/// lists, so a float32 module's tables give float32 rows) and for fixed float32 buffers.
pub(crate) fn wide_variable(
    path: &nn::Path<'_>,
    name: &str,
    shape: &[i64],
    trainable: bool,
) -> Tensor {
    path.add(
        name,
        Tensor::zeros(shape, (wide_kind(path.kind()), path.device())),
        trainable,
    )
}

/// `l(x)` with `x` cast to the layer's kind first, as autocast casts the input of a linear
/// layer: a float32 activation (a residual stream widened by a float32 embedding, a norm's
/// output) enters a 16-bit layer rounded to 16 bits. For a float32 network it is `l(x)`.
pub(crate) fn linear_cast(l: &nn::Linear, x: &Tensor) -> Tensor {
    l.forward(&x.to_kind(l.ws.kind()))
}

/// The kind in which a network with `kind` parameters runs its precision-sensitive operations
/// (see the module documentation): float32 for bfloat16 and float16, `kind` itself otherwise.
pub(crate) fn wide_kind(kind: Kind) -> Kind {
    match kind {
        Kind::BFloat16 | Kind::Half => Kind::Float,
        k => k,
    }
}

/// LayerNorm without affine parameters (eps `1e-6`) over the last dimension, computed and
/// returned in [`wide_kind`] of `x`.
pub(crate) fn layer_norm_wide(x: &Tensor) -> Tensor {
    let d = *x.size().last().unwrap_or(&1);
    x.to_kind(wide_kind(x.kind()))
        .layer_norm([d], None::<&Tensor>, None::<&Tensor>, 1e-6, true)
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
    let w = wide_variable(&path, name, &[n as i64, dim as i64], true);
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

    /// `[B] -> [B, width]`, in the kind of the layers' weights. The embedding itself is
    /// computed in [`wide_kind`] of that kind (`t` is cast to it first).
    pub(crate) fn forward(&self, t: &Tensor) -> Tensor {
        let kind = self.l0.ws.kind();
        let t = t.to_kind(wide_kind(kind));
        let e = self.embed.forward(&(t * self.time_scale));
        self.l2.forward(&self.l0.forward(&e.to_kind(kind)).silu())
    }
}

/// The checked inputs of an image network: `x` (`[B, C, S, S]`) in `kind` and `t` (`[B]`) in
/// [`wide_kind`] of it, on `device`, and the class labels ([`class_labels`]).
pub(crate) struct ImageInput {
    /// The states.
    pub x: Tensor,
    /// The per-sample times.
    pub t: Tensor,
    /// The labels (`None` for an unconditional network).
    pub labels: Option<Tensor>,
}

/// Checks an image network's input shape (`[B, channels, size, size]`), its times and labels, and
/// moves them to the network's kind and device; `context` names the network in errors.
pub(crate) fn image_input(
    x: &Tensor,
    t: &Tensor,
    class: Option<&Tensor>,
    (channels, size): (usize, usize),
    num_classes: Option<usize>,
    (kind, device): (Kind, Device),
    context: &str,
) -> Result<ImageInput> {
    let (ci, s) = (channels as i64, size as i64);
    let got = x.size();
    if got.len() != 4 || got[1..] != [ci, s, s] {
        return Err(ModelError::Shape {
            context: format!("{context} input"),
            expected: vec![-1, ci, s, s],
            got,
        });
    }
    let b = super::check_time(x, t, context)?;
    let labels = class_labels(class, b, num_classes, device, context)?;
    Ok(ImageInput {
        x: x.to_kind(kind).to_device(device),
        t: t.to_kind(wide_kind(kind)).to_device(device),
        labels,
    })
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
/// `softmax(q k^T / sqrt(d)) v`, `[B, heads, L, d]`. The scale is applied to `q` (`L x d`)
/// rather than to the `L x L` scores (as PyTorch's `scaled_dot_product_attention` does), and the
/// scores are dropped as soon as the softmax has them: one `L x L` pass and buffer fewer per
/// call (the same value up to rounding). The softmax runs in [`wide_kind`] of the scores and its
/// output is cast back for the second product, as autocast does: for 16-bit scores the forward
/// value is what libtorch's 16-bit softmax gives (it accumulates in float32 and rounds once), but
/// the backward pass then differentiates the float32 output instead of the rounded one.
pub(crate) fn attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
    let d = *q.size().last().unwrap_or(&1) as f64;
    let w = {
        let scores = (q * (1.0 / d.sqrt())).matmul(&k.transpose(-2, -1));
        scores
            .softmax(-1, wide_kind(scores.kind()))
            .to_kind(scores.kind())
    };
    w.matmul(v)
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

/// `hash32` in place on `x` (values in `[0, 2^32)`), with `tmp` (same shape) as scratch: no
/// allocation per step (this runs on every activation of every dropout layer).
fn hash32_(x: &mut Tensor, tmp: &mut Tensor) {
    let m = 0x045d_9f3b_i64;
    for round in 0..3 {
        let _ = x.bitwise_right_shift_tensor_scalar_out(tmp, 16);
        let _ = x.bitwise_xor_tensor_(tmp);
        if round < 2 {
            let _ = x.g_mul_scalar_(m);
            let _ = x.bitwise_and_(MASK32);
        }
    }
}

/// The 32-bit hashes (as `Int64`, flat) behind [`hash_uniform`] and [`hash_dropout`].
fn hash_bits(numel: i64, device: Device, key: u64) -> Tensor {
    let (lo, hi) = ((key & 0xffff_ffff) as i64, (key >> 32) as i64);
    let mut x = Tensor::arange(numel, (Kind::Int64, device));
    let _ = x.bitwise_and_(MASK32);
    let _ = x.bitwise_xor_(lo);
    let mut tmp = x.empty_like();
    hash32_(&mut x, &mut tmp);
    let _ = x.bitwise_xor_(hi);
    hash32_(&mut x, &mut tmp);
    x
}

/// Uniform numbers on `[0, 1)` (multiples of `2^-32`, `Double`) with the shape of `like` and on
/// its device, a function of `key` and each element's flat index only (see the module
/// documentation).
pub fn hash_uniform(like: &Tensor, key: u64) -> Tensor {
    let h = hash_bits(like.numel() as i64, like.device(), key);
    (h.to_kind(Kind::Double) * (1.0 / 4_294_967_296.0)).reshape(like.size())
}

/// The same hash on the host, one element (the reference for the tensor version).
fn hash32_host(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x045d_9f3b);
    x ^= x >> 16;
    x = x.wrapping_mul(0x045d_9f3b);
    x ^ (x >> 16)
}

/// Inverted dropout with rate `p` and the mask of [`hash_uniform`]`(x, key)`: an element is kept
/// (and scaled by `1 / (1 - p)`) when its uniform number is at least `p` (computed exactly, as
/// `hash >= ceil(p 2^32)`).
///
/// On the CPU the mask is computed by a plain loop (libtorch's `Int64` multiplications and
/// shifts are not vectorised there, which made the tensor version as slow as the rest of the
/// forward pass); elsewhere by `Int64` tensor operations on the device. Both give the same bits.
pub fn hash_dropout(x: &Tensor, p: f64, key: u64) -> Tensor {
    if p <= 0.0 {
        return x.shallow_clone();
    }
    let threshold = (p * 4_294_967_296.0).ceil() as i64;
    let keep = if x.device() == Device::Cpu {
        let (lo, hi) = (key as u32, (key >> 32) as u32);
        let mask: Vec<u8> = (0..x.numel())
            .map(|i| {
                let h = hash32_host(hash32_host(i as u32 ^ lo) ^ hi);
                u8::from(h as i64 >= threshold)
            })
            .collect();
        Tensor::from_slice(&mask)
    } else {
        hash_bits(x.numel() as i64, x.device(), key).ge(threshold)
    };
    let keep = keep.reshape(x.size()).to_kind(x.kind());
    x * (keep * (1.0 / (1.0 - p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Tensor {
        Tensor::from_slice(&HostNoise::new(seed).normals(n))
    }

    /// 16-bit inputs: the norms come back in float32, computed from the upcast input (bit for
    /// bit the float32 norm), while the norm in bfloat16 would round its output; a 16-bit
    /// store keeps GroupNorm's parameters in float32; the attention on bfloat16 inputs equals the
    /// one with a float32 softmax rounded once (autocast's), forward and backward, while
    /// libtorch's bfloat16 softmax gives the same forward value but another gradient; float32
    /// inputs are left in their kind.
    #[test]
    fn sixteen_bit_inputs_norm_in_float32_and_softmax_rounds_once() {
        assert_eq!(wide_kind(Kind::BFloat16), Kind::Float);
        assert_eq!(wide_kind(Kind::Half), Kind::Float);
        assert_eq!(wide_kind(Kind::Float), Kind::Float);
        assert_eq!(wide_kind(Kind::Double), Kind::Double);
        let vs = nn::VarStore::new(Device::Cpu);
        let gn = group_norm(vs.root() / "gn", 2, 4);
        tch::no_grad(|| {
            gn.ws
                .shallow_clone()
                .copy_(&(values(4, 1).to_kind(Kind::Float) + 1.0));
        });
        let x = values(3 * 4 * 5 * 5, 2).reshape([3, 4, 5, 5]);
        let low = x.to_kind(Kind::BFloat16);
        let y = gn.forward(&low);
        assert_eq!(y.kind(), Kind::Float);
        assert!(y.equal(&gn.forward(&low.to_kind(Kind::Float))));
        // What a bfloat16 norm gives: the same values rounded to bfloat16.
        let (w16, b16) = (gn.ws.to_kind(Kind::BFloat16), gn.bs.to_kind(Kind::BFloat16));
        let y16 = low.group_norm(2, Some(&w16), Some(&b16), GROUP_NORM_EPS, true);
        assert_eq!(y16.kind(), Kind::BFloat16);
        assert!(!y16.to_kind(Kind::Float).equal(&y));
        let f = x.to_kind(Kind::Float);
        let plain = f.group_norm(2, Some(&gn.ws), Some(&gn.bs), GROUP_NORM_EPS, true);
        assert!(gn.forward(&f).equal(&plain));
        let mut vs16 = nn::VarStore::new(Device::Cpu);
        vs16.set_kind(Kind::BFloat16);
        let gn16 = group_norm(vs16.root() / "gn", 2, 4);
        assert_eq!((gn16.ws.kind(), gn16.bs.kind()), (Kind::Float, Kind::Float));
        let ln = layer_norm_wide(&low);
        assert_eq!(ln.kind(), Kind::Float);
        let (q, k, v) = (
            values(2 * 6 * 4, 3).reshape([1, 2, 6, 4]),
            values(2 * 6 * 4, 4).reshape([1, 2, 6, 4]),
            values(2 * 6 * 4, 5).reshape([1, 2, 6, 4]),
        );
        let (q, k, v) = (
            (q.to_kind(Kind::BFloat16) * 4.0).set_requires_grad(true),
            k.to_kind(Kind::BFloat16),
            v.to_kind(Kind::BFloat16),
        );
        let r = values(2 * 6 * 4, 6).reshape([1, 2, 6, 4]);
        // The value and the gradient with respect to q of `<out, r>`.
        let run = |softmax_kind: Option<Kind>| {
            let out = match softmax_kind {
                None => attention(&q, &k, &v),
                Some(sk) => (&q * 0.5)
                    .matmul(&k.transpose(-2, -1))
                    .softmax(-1, sk)
                    .to_kind(Kind::BFloat16)
                    .matmul(&v),
            };
            let g = Tensor::run_backward(
                &[(out.to_kind(Kind::Float) * &r).sum(Kind::Float)],
                &[&q],
                false,
                false,
            );
            (out.detach(), g[0].shallow_clone())
        };
        let (a, ga) = run(None);
        let (wide, gw) = run(Some(Kind::Float));
        let (narrow, gn16) = run(Some(Kind::BFloat16));
        assert_eq!(a.kind(), Kind::BFloat16);
        assert!(a.equal(&wide) && a.equal(&narrow));
        assert!(ga.equal(&gw));
        assert!(!ga.equal(&gn16));
    }

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
    fn host_and_tensor_hashes_agree() {
        let like = Tensor::zeros([5000], (Kind::Double, Device::Cpu));
        let key = dropout_key(99, 3);
        let bits: Vec<i64> = Vec::try_from(hash_bits(5000, Device::Cpu, key)).unwrap();
        let (lo, hi) = (key as u32, (key >> 32) as u32);
        for (i, &b) in bits.iter().enumerate() {
            assert_eq!(b, hash32_host(hash32_host(i as u32 ^ lo) ^ hi) as i64);
        }
        // The CPU dropout mask is the tensor hash's.
        let u = hash_uniform(&like, key);
        let kept = hash_dropout(&(like.ones_like()), 0.3, key).gt(0.0);
        assert!(kept.equal(&u.ge(0.3)));
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
