//! A U-Net for images in the DDPM / DDPM++ / ADM family: residual blocks with GroupNorm, SiLU
//! and 3x3 convolutions, the time (and class) embedding injected into every block (added, or as
//! ADM's scale-shift of the second norm), self-attention at chosen resolutions, strided-conv
//! downsampling, nearest-neighbour + conv upsampling, skip connections between the two paths and
//! zero-initialised last layers, so an untrained net outputs 0.
//!
//! Paper: Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models",
//! arXiv:2006.11239, App. B (the U-Net: Wide-ResNet blocks, GroupNorm, self-attention at 16x16,
//! sinusoidal time embedding, dropout); Song et al. (2021), "Score-Based Generative Modeling
//! through Stochastic Differential Equations", arXiv:2011.13456, App. H (DDPM++: residual
//! outputs rescaled by `1/sqrt(2)`, zero-initialised output layers); Dhariwal & Nichol (2021),
//! "Diffusion Models Beat GANs on Image Synthesis", arXiv:2105.05233, Sec. 3 (ADM: adaptive
//! GroupNorm `GroupNorm(h) (1 + scale) + shift`, multi-head attention, class embeddings added to
//! the time embedding). The optional log-variance head is EDM2's uncertainty `u(sigma)`: Karras
//! et al. (2024), "Analyzing and Improving the Training Dynamics of Diffusion Models",
//! arXiv:2312.02696, App. B.2 (Fourier features of the noise level, then a linear layer).
//!
//! The equivalent PyTorch module is `UNet` in `tools/torch_ref/nets.py`; its `state_dict` names
//! the parameters here:
//!
//! ```text
//! time_embed.W                      Fourier buffer (absent for sinusoids)
//! time_mlp.{0,2}.{weight,bias}      Linear(emb, 4C), SiLU, Linear(4C, 4C)     (C = model_channels)
//! class_embed.weight                [num_classes + 1, 4C]; the last row is the null class
//! conv_in.{weight,bias}             Conv2d(in_channels, C, 3, padding 1)
//! down.{l}.res.{i}.*                ResBlock (below), l = level, i < num_res_blocks
//! down.{l}.attn.{i}.*               AttnBlock where the level's resolution is listed
//! down.{l}.downsample.*             Conv2d(c, c, 3, stride 2, padding 1), all but the last level
//! mid.res1.*, mid.attn.*, mid.res2.*
//! up.{l}.res.{i}.*                  i <= num_res_blocks; input is cat(h, skip) on channels
//! up.{l}.attn.{i}.*
//! up.{l}.upsample.*                 nearest x2, then Conv2d(c, c, 3, padding 1), all but level 0
//! norm_out.*, conv_out.*            GroupNorm, SiLU, Conv2d(C, out_channels, 3, padding 1)
//! logvar_embed.W, logvar_linear.*   the optional log-variance head
//!
//! ResBlock(cin, cout): norm1 GroupNorm(cin), conv1 Conv2d(cin, cout, 3), emb Linear(4C, cout or
//!   2 cout), norm2 GroupNorm(cout), conv2 Conv2d(cout, cout, 3) (zero init), skip Conv2d(cin,
//!   cout, 1) when cin != cout.
//!   h = conv1(silu(norm1(x))); e = emb(silu(emb_vec))
//!   scale_shift: h = norm2(h) (1 + scale) + shift, (scale, shift) = e.chunk(2)
//!   else:        h = norm2(h + e)
//!   h = conv2(dropout(silu(h))); out = skip(x) + h, divided by sqrt 2 when skip_rescale.
//! AttnBlock(c): norm GroupNorm(c), qkv Conv2d(c, 3c, 1), proj Conv2d(c, c, 1) (zero init);
//!   qkv output channels are laid out [3, heads, c / heads]; softmax(q^T k / sqrt(d)) over the
//!   H W positions; out = x + proj(a), divided by sqrt 2 when skip_rescale.
//! ```
//!
//! Skip connections follow ADM: the output of `conv_in`, of every down-path block and of every
//! downsample is saved, and each up-path block takes the most recent one. Level `l` works at
//! resolution `image_size / 2^l`, so `image_size` must be divisible by `2^(levels - 1)`.
//!
//! Dropout (in the residual blocks) is active only after [`UNet::set_train`]`(true)`; its masks
//! come from the seeded hash of [`super::layers`] (key: the dropout seed and a call counter), not
//! from torch's generator, so a seed gives the same masks on every device and thread count.
//! [`UNet::set_dropout_seed`] sets the seed and resets the counter (a trainer can call it once per
//! step with a seed drawn from its own stream, which makes resumed runs exact).
//!
//! Initialization: `nn.Conv2d` / `nn.Linear` defaults (uniform on `+-1/sqrt(fan_in)`), GroupNorm
//! weight 1 and bias 0, `class_embed` `N(0, 1)`, and zero for each block's `conv2`, each
//! attention's `proj` and `conv_out`, all drawn from `HostNoise::new(seed)`.

use super::embedding::{FourierEmbedding, TimeEmbedding};
use super::layers::{
    attention, conv2d, dropout_key, embedding_table, group_norm, hash_dropout, image_input, linear,
    linear_cast, splitmix64, wide_kind, GroupNorm, ImageInput, Init, TimeMlp,
};
use super::TimeNet;
use crate::error::{ModelError, Result};
use diffusion_core::HostNoise;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// Configuration of [`UNet`] (TOML section `[model]` of an image run).
///
/// The default is a Fashion-MNIST-sized net: 1x28x28 images (no padding: levels at 28, 14 and 7
/// pixels), 48 base channels with multipliers `[1, 2, 2]`, two residual blocks per level,
/// attention at 7x7 (and in the middle), four heads, 16 GroupNorm groups, dropout 0.1,
/// scale-shift conditioning, sinusoidal time embedding of width 48: 3,912,241 parameters (see
/// `tests/nets.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UNetConfig {
    /// Channels of the input images.
    pub in_channels: usize,
    /// Channels of the output (e.g. `2 * in_channels` for a learned-variance output).
    pub out_channels: usize,
    /// Height and width of the (square) images.
    pub image_size: usize,
    /// Base channel count `C`; level `l` has `C * channel_mult[l]` channels, the time embedding
    /// `4 C`.
    pub model_channels: usize,
    /// Channel multiplier per level (the number of levels is its length).
    pub channel_mult: Vec<usize>,
    /// Residual blocks per level on the down path (the up path has one more).
    pub num_res_blocks: usize,
    /// Resolutions (in pixels, e.g. `[14, 7]`) at which blocks are followed by self-attention.
    /// The middle block always has attention.
    pub attention_resolutions: Vec<usize>,
    /// Attention heads (must divide the channel count wherever attention is used).
    pub num_heads: usize,
    /// Dropout rate in the residual blocks (train mode only).
    pub dropout: f64,
    /// Number of classes for class conditioning (`None`: unconditional). The label
    /// `num_classes` is the null class of classifier-free guidance.
    pub num_classes: Option<usize>,
    /// GroupNorm groups (must divide every channel count).
    pub groups: usize,
    /// The time embedding.
    pub embedding: TimeEmbedding,
    /// The network's time input is multiplied by this before the embedding.
    pub time_scale: f64,
    /// ADM's scale-shift conditioning (`true`) or DDPM's additive embedding (`false`).
    pub scale_shift: bool,
    /// DDPM++'s `1/sqrt(2)` rescaling of residual sums.
    pub skip_rescale: bool,
    /// Width of the Fourier features of EDM2's log-variance head `u(sigma)` (0: no head).
    pub logvar_channels: usize,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig {
            in_channels: 1,
            out_channels: 1,
            image_size: 28,
            model_channels: 48,
            channel_mult: vec![1, 2, 2],
            num_res_blocks: 2,
            attention_resolutions: vec![7],
            num_heads: 4,
            dropout: 0.1,
            num_classes: None,
            groups: 16,
            embedding: TimeEmbedding::Sinusoidal {
                dim: 48,
                max_period: 10000.0,
            },
            time_scale: 1.0,
            scale_shift: true,
            skip_rescale: false,
            logvar_channels: 0,
        }
    }
}

impl UNetConfig {
    /// The resolution of every level (`image_size / 2^l`).
    pub fn resolutions(&self) -> Vec<usize> {
        (0..self.channel_mult.len())
            .map(|l| self.image_size >> l)
            .collect()
    }

    /// Checks every field and that they fit together (divisibility of sizes, groups, heads).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("model.in_channels", self.in_channels),
            ("model.out_channels", self.out_channels),
            ("model.image_size", self.image_size),
            ("model.model_channels", self.model_channels),
            ("model.num_res_blocks", self.num_res_blocks),
            ("model.num_heads", self.num_heads),
            ("model.groups", self.groups),
        ] {
            if v == 0 {
                return Err(ModelError::invalid(name, "must be at least 1"));
            }
        }
        let levels = self.channel_mult.len();
        if levels == 0 || self.channel_mult.contains(&0) {
            return Err(ModelError::invalid(
                "model.channel_mult",
                format!(
                    "must be non-empty with entries >= 1, got {:?}",
                    self.channel_mult
                ),
            ));
        }
        let factor = 1usize << (levels - 1).min(usize::BITS as usize - 1);
        if levels > 16 || self.image_size % factor != 0 {
            return Err(ModelError::invalid(
                "model.image_size",
                format!(
                    "{} levels halve the size {} times, so it must be divisible by {factor}, got {}",
                    levels,
                    levels - 1,
                    self.image_size
                ),
            ));
        }
        let c = self.model_channels;
        for m in std::iter::once(1).chain(self.channel_mult.iter().copied()) {
            if (c * m) % self.groups != 0 {
                return Err(ModelError::invalid(
                    "model.groups",
                    format!(
                        "{} does not divide the channel count {}",
                        self.groups,
                        c * m
                    ),
                ));
            }
        }
        let res = self.resolutions();
        for &r in &self.attention_resolutions {
            if !res.contains(&r) {
                return Err(ModelError::invalid(
                    "model.attention_resolutions",
                    format!("{r} is not a level resolution (the levels are {res:?})"),
                ));
            }
        }
        let attn_channels = self
            .channel_mult
            .iter()
            .zip(&res)
            .filter(|(_, r)| self.attention_resolutions.contains(r))
            .map(|(m, _)| c * m)
            .chain(std::iter::once(c * self.channel_mult[levels - 1]));
        for ch in attn_channels {
            if ch % self.num_heads != 0 {
                return Err(ModelError::invalid(
                    "model.num_heads",
                    format!(
                        "{} does not divide the attention channel count {ch}",
                        self.num_heads
                    ),
                ));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ModelError::invalid(
                "model.dropout",
                format!("must lie in [0, 1), got {}", self.dropout),
            ));
        }
        if self.num_classes == Some(0) {
            return Err(ModelError::invalid(
                "model.num_classes",
                "must be at least 1 (leave it out for an unconditional net)",
            ));
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(ModelError::invalid(
                "model.time_scale",
                format!("must be finite and positive, got {}", self.time_scale),
            ));
        }
        if self.logvar_channels % 2 != 0 {
            return Err(ModelError::invalid(
                "model.logvar_channels",
                format!("must be even (0: no head), got {}", self.logvar_channels),
            ));
        }
        self.embedding.validate()
    }
}

/// What each residual block needs from the network besides its input.
struct Ctx<'a> {
    emb: &'a Tensor,
    net: &'a UNet,
}

#[derive(Debug)]
struct ResBlock {
    norm1: GroupNorm,
    conv1: nn::Conv2D,
    emb: nn::Linear,
    norm2: GroupNorm,
    conv2: nn::Conv2D,
    skip: Option<nn::Conv2D>,
}

impl ResBlock {
    fn new(
        p: nn::Path<'_>,
        cin: usize,
        cout: usize,
        cfg: &UNetConfig,
        noise: &mut HostNoise,
    ) -> Self {
        let g = cfg.groups;
        let emb_dim = 4 * cfg.model_channels;
        let norm1 = group_norm(&p / "norm1", g, cin);
        let conv1 = conv2d(&p / "conv1", cin, cout, 3, 1, 1, Init::TorchDefault, noise);
        let emb_out = if cfg.scale_shift { 2 * cout } else { cout };
        let emb = linear(&p / "emb", emb_dim, emb_out, Init::TorchDefault, noise);
        let norm2 = group_norm(&p / "norm2", g, cout);
        let conv2 = conv2d(&p / "conv2", cout, cout, 3, 1, 1, Init::Zero, noise);
        let skip = (cin != cout)
            .then(|| conv2d(&p / "skip", cin, cout, 1, 1, 0, Init::TorchDefault, noise));
        ResBlock {
            norm1,
            conv1,
            emb,
            norm2,
            conv2,
            skip,
        }
    }

    fn forward(&self, x: &Tensor, ctx: &Ctx<'_>) -> Tensor {
        let cfg = &ctx.net.config;
        // Norms and what follows them up to the next convolution in the wide kind (the
        // module documentation of `layers`); `k` is the network's kind.
        let k = x.kind();
        let h = self.conv1.forward(&self.norm1.forward(x).silu().to_kind(k));
        // `ctx.emb` is float32 when a float32 class table widened it (see `layers`).
        let e = linear_cast(&self.emb, ctx.emb).unsqueeze(-1).unsqueeze(-1);
        let h = if cfg.scale_shift {
            let parts = e.chunk(2, 1);
            self.norm2.forward(&h) * (&parts[0] + 1.0) + &parts[1]
        } else {
            self.norm2.forward(&(h + e))
        };
        let h = self.conv2.forward(&ctx.net.dropout(&h.silu()).to_kind(k));
        let s = match &self.skip {
            Some(c) => c.forward(x),
            None => x.shallow_clone(),
        };
        let out = s + h;
        if cfg.skip_rescale {
            out * std::f64::consts::FRAC_1_SQRT_2
        } else {
            out
        }
    }
}

#[derive(Debug)]
struct AttnBlock {
    norm: GroupNorm,
    qkv: nn::Conv2D,
    proj: nn::Conv2D,
    heads: i64,
    skip_rescale: bool,
}

impl AttnBlock {
    fn new(p: nn::Path<'_>, c: usize, cfg: &UNetConfig, noise: &mut HostNoise) -> Self {
        AttnBlock {
            norm: group_norm(&p / "norm", cfg.groups, c),
            qkv: conv2d(&p / "qkv", c, 3 * c, 1, 1, 0, Init::TorchDefault, noise),
            proj: conv2d(&p / "proj", c, c, 1, 1, 0, Init::Zero, noise),
            heads: cfg.num_heads as i64,
            skip_rescale: cfg.skip_rescale,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let s = x.size();
        let (b, c, hh, ww) = (s[0], s[1], s[2], s[3]);
        let d = c / self.heads;
        let qkv = self
            .qkv
            .forward(&self.norm.forward(x).to_kind(x.kind()))
            .reshape([b, 3, self.heads, d, hh * ww]);
        // [B, heads, L, d] each.
        let part = |i: i64| qkv.select(1, i).transpose(-2, -1);
        let a = attention(&part(0), &part(1), &part(2))
            .transpose(-2, -1)
            .reshape([b, c, hh, ww]);
        let out = x + self.proj.forward(&a);
        if self.skip_rescale {
            out * std::f64::consts::FRAC_1_SQRT_2
        } else {
            out
        }
    }
}

#[derive(Debug)]
struct Level {
    res: Vec<ResBlock>,
    attn: Vec<Option<AttnBlock>>,
    resample: Option<nn::Conv2D>,
}

/// The U-Net (see the module documentation for its layout and PyTorch equivalent).
#[derive(Debug)]
pub struct UNet {
    config: UNetConfig,
    time: TimeMlp,
    class_embed: Option<Tensor>,
    conv_in: nn::Conv2D,
    down: Vec<Level>,
    mid: (ResBlock, AttnBlock, ResBlock),
    up: Vec<Level>,
    norm_out: GroupNorm,
    conv_out: nn::Conv2D,
    logvar: Option<(FourierEmbedding, nn::Linear)>,
    device: Device,
    train: Cell<bool>,
    dropout_seed: Cell<u64>,
    dropout_calls: Cell<u64>,
}

impl UNet {
    /// Creates the parameters under `path`, initialized from `HostNoise::new(seed)`; the net
    /// starts in eval mode (no dropout) with dropout seed derived from `seed`.
    pub fn new(path: &nn::Path<'_>, cfg: &UNetConfig, seed: u64) -> Result<UNet> {
        cfg.validate()?;
        let mut noise = HostNoise::new(seed);
        let n = &mut noise;
        let c = cfg.model_channels;
        let emb_dim = 4 * c;
        let time = TimeMlp::new(
            &(path / "time_embed"),
            &(path / "time_mlp"),
            &cfg.embedding,
            cfg.time_scale,
            emb_dim,
            Init::TorchDefault,
            n,
        )?;
        let class_embed = cfg
            .num_classes
            .map(|k| embedding_table(path / "class_embed", "weight", k + 1, emb_dim, 1.0, n));
        let conv_in = conv2d(
            path / "conv_in",
            cfg.in_channels,
            c,
            3,
            1,
            1,
            Init::TorchDefault,
            n,
        );
        let res = cfg.resolutions();
        let levels = cfg.channel_mult.len();
        let mut ch = c;
        let mut chans = vec![c];
        let mut down = Vec::with_capacity(levels);
        for (l, &m) in cfg.channel_mult.iter().enumerate() {
            let p = path / "down" / l;
            let with_attn = cfg.attention_resolutions.contains(&res[l]);
            let mut level = Level {
                res: vec![],
                attn: vec![],
                resample: None,
            };
            for i in 0..cfg.num_res_blocks {
                level
                    .res
                    .push(ResBlock::new(&p / "res" / i, ch, c * m, cfg, n));
                ch = c * m;
                level
                    .attn
                    .push(with_attn.then(|| AttnBlock::new(&p / "attn" / i, ch, cfg, n)));
                chans.push(ch);
            }
            if l + 1 != levels {
                level.resample = Some(conv2d(
                    &p / "downsample",
                    ch,
                    ch,
                    3,
                    2,
                    1,
                    Init::TorchDefault,
                    n,
                ));
                chans.push(ch);
            }
            down.push(level);
        }
        let mid = (
            ResBlock::new(path / "mid" / "res1", ch, ch, cfg, n),
            AttnBlock::new(path / "mid" / "attn", ch, cfg, n),
            ResBlock::new(path / "mid" / "res2", ch, ch, cfg, n),
        );
        let mut up: Vec<Option<Level>> = (0..levels).map(|_| None).collect();
        for (l, &m) in cfg.channel_mult.iter().enumerate().rev() {
            let p = path / "up" / l;
            let with_attn = cfg.attention_resolutions.contains(&res[l]);
            let mut level = Level {
                res: vec![],
                attn: vec![],
                resample: None,
            };
            for i in 0..=cfg.num_res_blocks {
                let skip = chans.pop().unwrap_or(0);
                level
                    .res
                    .push(ResBlock::new(&p / "res" / i, ch + skip, c * m, cfg, n));
                ch = c * m;
                level
                    .attn
                    .push(with_attn.then(|| AttnBlock::new(&p / "attn" / i, ch, cfg, n)));
            }
            if l != 0 {
                level.resample = Some(conv2d(
                    &p / "upsample",
                    ch,
                    ch,
                    3,
                    1,
                    1,
                    Init::TorchDefault,
                    n,
                ));
            }
            up[l] = Some(level);
        }
        let up = up.into_iter().flatten().collect();
        let norm_out = group_norm(path / "norm_out", cfg.groups, ch);
        let conv_out = conv2d(
            path / "conv_out",
            ch,
            cfg.out_channels,
            3,
            1,
            1,
            Init::Zero,
            n,
        );
        let logvar = if cfg.logvar_channels > 0 {
            let f = FourierEmbedding::new(&(path / "logvar_embed"), cfg.logvar_channels, 1.0, n)?;
            let lin = linear(
                path / "logvar_linear",
                cfg.logvar_channels,
                1,
                Init::TorchDefault,
                n,
            );
            Some((f, lin))
        } else {
            None
        };
        Ok(UNet {
            config: cfg.clone(),
            time,
            class_embed,
            conv_in,
            down,
            mid,
            up,
            norm_out,
            conv_out,
            logvar,
            device: path.device(),
            train: Cell::new(false),
            dropout_seed: Cell::new(splitmix64(seed ^ 0x6472_6f70_6f75_7421)),
            dropout_calls: Cell::new(0),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// Switches dropout on (`true`, training) or off (`false`, evaluation; the default).
    pub fn set_train(&self, train: bool) {
        self.train.set(train);
    }

    /// Whether dropout is on.
    pub fn is_train(&self) -> bool {
        self.train.get()
    }

    /// Sets the dropout seed and resets the dropout call counter.
    pub fn set_dropout_seed(&self, seed: u64) {
        self.dropout_seed.set(seed);
        self.dropout_calls.set(0);
    }

    /// The dropout seed and the number of dropout calls made since it was set.
    pub fn dropout_state(&self) -> (u64, u64) {
        (self.dropout_seed.get(), self.dropout_calls.get())
    }

    fn dropout(&self, h: &Tensor) -> Tensor {
        let p = self.config.dropout;
        if !self.train.get() || p <= 0.0 {
            return h.shallow_clone();
        }
        let call = self.dropout_calls.get();
        self.dropout_calls.set(call + 1);
        hash_dropout(h, p, dropout_key(self.dropout_seed.get(), call))
    }

    /// EDM2's per-sample log-variance `u(t) = logvar_linear(fourier(t * time_scale))`, `[B]`
    /// (an error when `logvar_channels = 0`).
    pub fn log_variance(&self, t: &Tensor) -> Result<Tensor> {
        let Some((f, lin)) = &self.logvar else {
            return Err(ModelError::invalid(
                "model.logvar_channels",
                "this U-Net has no log-variance head (logvar_channels = 0)",
            ));
        };
        if t.dim() != 1 {
            return Err(ModelError::Shape {
                context: "UNet log-variance time".into(),
                expected: vec![-1],
                got: t.size(),
            });
        }
        // The Fourier features in the wide kind, as every time embedding (see `layers`).
        let t = t.to_kind(wide_kind(self.kind())).to_device(self.device);
        Ok(lin
            .forward(
                &f.forward(&(t * self.config.time_scale))
                    .to_kind(self.kind()),
            )
            .squeeze_dim(1))
    }
}

impl TimeNet for UNet {
    fn forward_t(&self, x: &Tensor, t: &Tensor, class: Option<&Tensor>) -> Result<Tensor> {
        let cfg = &self.config;
        let ImageInput { x, t, labels } = image_input(
            x,
            t,
            class,
            (cfg.in_channels, cfg.image_size),
            cfg.num_classes,
            (self.kind(), self.device),
            "UNet",
        )?;
        let emb = self.time.forward(&t);
        let emb = match (&self.class_embed, &labels) {
            (Some(table), Some(l)) => emb + table.index_select(0, l),
            _ => emb,
        };
        let emb = emb.silu();
        let ctx = Ctx {
            emb: &emb,
            net: self,
        };
        let mut h = self.conv_in.forward(&x);
        let mut hs = vec![h.shallow_clone()];
        for level in &self.down {
            for (r, a) in level.res.iter().zip(&level.attn) {
                h = r.forward(&h, &ctx);
                if let Some(a) = a {
                    h = a.forward(&h);
                }
                hs.push(h.shallow_clone());
            }
            if let Some(d) = &level.resample {
                h = d.forward(&h);
                hs.push(h.shallow_clone());
            }
        }
        h = self.mid.0.forward(&h, &ctx);
        h = self.mid.1.forward(&h);
        h = self.mid.2.forward(&h, &ctx);
        for level in self.up.iter().rev() {
            for (r, a) in level.res.iter().zip(&level.attn) {
                let skip = hs.pop().ok_or_else(|| {
                    ModelError::invalid("model", "internal: skip connections exhausted")
                })?;
                h = r.forward(&Tensor::cat(&[&h, &skip], 1), &ctx);
                if let Some(a) = a {
                    h = a.forward(&h);
                }
            }
            if let Some(u) = &level.resample {
                let sz = h.size();
                h = u.forward(&h.upsample_nearest2d(
                    [2 * sz[2], 2 * sz[3]],
                    None::<f64>,
                    None::<f64>,
                ));
            }
        }
        Ok(self
            .conv_out
            .forward(&self.norm_out.forward(&h).silu().to_kind(h.kind())))
    }

    fn kind(&self) -> Kind {
        self.conv_in.ws.kind()
    }

    fn device(&self) -> Device {
        self.device
    }

    fn null_class(&self) -> Option<i64> {
        self.config.num_classes.map(|k| k as i64)
    }

    fn set_train(&self, train: bool) {
        UNet::set_train(self, train);
    }

    fn set_dropout_seed(&self, seed: u64) {
        UNet::set_dropout_seed(self, seed);
    }
}
