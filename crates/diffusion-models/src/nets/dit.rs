//! DiT: a Vision-Transformer denoiser over image patches with adaLN-Zero conditioning.
//!
//! Paper: Peebles & Xie (2023), "Scalable Diffusion Models with Transformers", arXiv:2212.09748,
//! Sec. 3.2 and Fig. 3 (patchify, fixed 2-D sin-cos positional embedding, DiT blocks with
//! adaLN-Zero: `shift, scale, gate` regressed from the sum of the time and class embeddings,
//! the modulation layers initialised to zero so every block starts as the identity, final
//! adaptive LayerNorm and linear layer, unpatchify).
//!
//! The equivalent PyTorch module is `DiT` in `tools/torch_ref/nets.py` (the layout of the
//! authors' `models.py`); its `state_dict` names the parameters here:
//!
//! ```text
//! x_embedder.proj.{weight,bias}             Conv2d(in, D, p, stride p)  (patchify)
//! pos_embed                                 [1, N, D] fixed 2-D sin-cos (not trained)
//! t_embedder.W                              Fourier buffer (absent for sinusoids)
//! t_embedder.mlp.{0,2}.{weight,bias}        Linear(emb, D), SiLU, Linear(D, D)
//! y_embedder.embedding_table.weight         [num_classes + 1, D]; the last row is the null class
//! blocks.{i}.attn.qkv.*, blocks.{i}.attn.proj.*          Linear(D, 3D), Linear(D, D)
//! blocks.{i}.mlp.fc1.*, blocks.{i}.mlp.fc2.*             Linear(D, M), GELU(tanh), Linear(M, D)
//! blocks.{i}.adaLN_modulation.1.*                        SiLU, Linear(D, 6D)   (zero init)
//! final_layer.linear.*                      Linear(D, p p out)              (zero init)
//! final_layer.adaLN_modulation.1.*          SiLU, Linear(D, 2D)             (zero init)
//!
//! block:  (shift1, scale1, gate1, shift2, scale2, gate2) = adaLN_modulation(c).chunk(6)
//!         x = x + gate1 attn(LN(x) (1 + scale1) + shift1)
//!         x = x + gate2 mlp(LN(x) (1 + scale2) + shift2)        LN: no affine, eps 1e-6
//! final:  (shift, scale) = adaLN_modulation(c).chunk(2); linear(LN(x) (1 + scale) + shift)
//! ```
//!
//! with `c = t_embedder(t) + y_embedder(y)` and `M = floor(D * mlp_ratio)`. Attention is
//! multi-head `softmax(q k^T / sqrt(d)) v` with the `qkv` output laid out `[3, heads, d]`.
//!
//! Dropout (rate `dropout`, 0 by default as in DiT; active only after [`Dit::set_train`]`(true)`)
//! sits where timm's `Attention` / `Mlp` put `proj_drop` and `drop1`: on the attention output
//! after `proj` and on the MLP's hidden activation after the GELU, two calls per block in that
//! order: `attn = drop(proj(...))`, `mlp = fc2(drop(gelu(fc1(...))))` (Srivastava et al. 2014;
//! Vaswani et al. 2017, arXiv:1706.03762, Sec. 5.4, dropout on each sub-layer's output). Its masks
//! are the seeded hash of [`super::layers`] (key: the dropout seed and a call counter, as in the
//! U-Net), so train mode is reproducible on every device and matches `DiT` of
//! `tools/torch_ref/nets.py` mask for mask; [`Dit::set_dropout_seed`] sets the seed and restarts
//! the counter. With rate 0 (or in eval mode) the output is bit-identical to a net without it.
//!
//! Positional embedding (MAE / DiT `get_2d_sincos_pos_embed`): token `n = i * g + j` (patch row
//! `i`, column `j`, `g = image_size / patch_size`) gets `[E(j), E(i)]`, each `E` of width `D/2`:
//! `E(x) = [sin(x w_0), .., sin(x w_{D/4-1}), cos(x w_0), ..]` with `w_k = 10000^(-k / (D/4))`.
//!
//! Unpatchify: token `(i, j)` holds `p * p * out` values laid out `[p_row, p_col, channel]`.
//!
//! Initialization as in DiT: Xavier-uniform linear layers with zero bias, the patch projection
//! Xavier on its flattened weight, `t_embedder.mlp` `N(0, 0.02^2)`, the class table
//! `N(0, 0.02^2)`, every adaLN modulation and the final linear layer zero, drawn from
//! `HostNoise::new(seed)`.

use super::embedding::TimeEmbedding;
use super::layers::{
    attention, conv2d, dropout_key, embedding_table, hash_dropout, image_input, layer_norm_wide,
    linear, linear_cast, splitmix64, wide_variable, ImageInput, Init, TimeMlp,
};
use super::{fill_from_host, TimeNet};
use crate::error::{ModelError, Result};
use diffusion_core::HostNoise;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// Configuration of [`Dit`].
///
/// The default is a small DiT for 1x28x28 images: patch 2 (196 tokens), width 192, depth 6,
/// 3 heads, MLP ratio 4, sinusoidal time embedding of width 256: 4,160,836 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DitConfig {
    /// Height and width of the (square) images.
    pub image_size: usize,
    /// Side of the square patches (must divide `image_size`).
    pub patch_size: usize,
    /// Channels of the input images.
    pub in_channels: usize,
    /// Channels of the output (e.g. `2 * in_channels` for a learned variance).
    pub out_channels: usize,
    /// Token width `D` (must be divisible by 4 for the 2-D sin-cos embedding).
    pub hidden: usize,
    /// Number of DiT blocks.
    pub depth: usize,
    /// Attention heads (must divide `hidden`).
    pub num_heads: usize,
    /// Width of the MLP over the token width.
    pub mlp_ratio: f64,
    /// Number of classes for class conditioning (`None`: unconditional); the label
    /// `num_classes` is the null class.
    pub num_classes: Option<usize>,
    /// The time embedding (DiT: sinusoidal, width 256).
    pub embedding: TimeEmbedding,
    /// The network's time input is multiplied by this before the embedding.
    pub time_scale: f64,
    /// Dropout rate on the attention and MLP activations of every block (train mode only; 0:
    /// none, DiT's default).
    pub dropout: f64,
}

impl Default for DitConfig {
    fn default() -> Self {
        DitConfig {
            image_size: 28,
            patch_size: 2,
            in_channels: 1,
            out_channels: 1,
            hidden: 192,
            depth: 6,
            num_heads: 3,
            mlp_ratio: 4.0,
            num_classes: None,
            embedding: TimeEmbedding::Sinusoidal {
                dim: 256,
                max_period: 10000.0,
            },
            time_scale: 1.0,
            dropout: 0.0,
        }
    }
}

/// Checks the transformer fields shared by [`DitConfig`] and the sequence transformer.
pub(crate) fn validate_transformer(
    hidden: usize,
    depth: usize,
    num_heads: usize,
    mlp_ratio: f64,
    time_scale: f64,
    embedding: &TimeEmbedding,
    dropout: f64,
) -> Result<()> {
    if !(0.0..1.0).contains(&dropout) {
        return Err(ModelError::invalid(
            "model.dropout",
            format!("must lie in [0, 1), got {dropout}"),
        ));
    }
    if hidden == 0 {
        return Err(ModelError::invalid("model.hidden", "must be at least 1"));
    }
    if depth == 0 {
        return Err(ModelError::invalid("model.depth", "must be at least 1"));
    }
    if num_heads == 0 || hidden % num_heads != 0 {
        return Err(ModelError::invalid(
            "model.num_heads",
            format!("must be at least 1 and divide hidden = {hidden}, got {num_heads}"),
        ));
    }
    if !(mlp_ratio.is_finite() && mlp_ratio > 0.0 && (hidden as f64 * mlp_ratio) >= 1.0) {
        return Err(ModelError::invalid(
            "model.mlp_ratio",
            format!("must be finite, positive and give an MLP width >= 1, got {mlp_ratio}"),
        ));
    }
    if !(time_scale.is_finite() && time_scale > 0.0) {
        return Err(ModelError::invalid(
            "model.time_scale",
            format!("must be finite and positive, got {time_scale}"),
        ));
    }
    embedding.validate()
}

impl DitConfig {
    /// Patches per side `image_size / patch_size`.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size.max(1)
    }

    /// Checks every field and that they fit together.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("model.image_size", self.image_size),
            ("model.patch_size", self.patch_size),
            ("model.in_channels", self.in_channels),
            ("model.out_channels", self.out_channels),
        ] {
            if v == 0 {
                return Err(ModelError::invalid(name, "must be at least 1"));
            }
        }
        if self.image_size % self.patch_size != 0 {
            return Err(ModelError::invalid(
                "model.patch_size",
                format!(
                    "must divide image_size = {}, got {}",
                    self.image_size, self.patch_size
                ),
            ));
        }
        if self.hidden % 4 != 0 {
            return Err(ModelError::invalid(
                "model.hidden",
                format!(
                    "must be divisible by 4 (2-D sin-cos embedding), got {}",
                    self.hidden
                ),
            ));
        }
        if self.num_classes == Some(0) {
            return Err(ModelError::invalid(
                "model.num_classes",
                "must be at least 1 (leave it out for an unconditional net)",
            ));
        }
        validate_transformer(
            self.hidden,
            self.depth,
            self.num_heads,
            self.mlp_ratio,
            self.time_scale,
            &self.embedding,
            self.dropout,
        )
    }
}

/// The fixed 2-D sin-cos positional embedding, `grid * grid` rows of width `dim` (row-major
/// over patch rows `i` and columns `j`; see the module documentation).
pub fn sincos_pos_embed_2d(dim: usize, grid: usize) -> Vec<f64> {
    let quarter = dim / 4;
    let omega: Vec<f64> = (0..quarter)
        .map(|k| 1.0 / 10000f64.powf(k as f64 / quarter as f64))
        .collect();
    let mut out = Vec::with_capacity(grid * grid * dim);
    for i in 0..grid {
        for j in 0..grid {
            for pos in [j as f64, i as f64] {
                out.extend(omega.iter().map(|w| (pos * w).sin()));
                out.extend(omega.iter().map(|w| (pos * w).cos()));
            }
        }
    }
    out
}

/// `x (1 + scale) + shift` with per-sample `[B, D]` scale and shift over `[B, L, D]` tokens.
fn modulate(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Tensor {
    x * (scale.unsqueeze(1) + 1.0) + shift.unsqueeze(1)
}

/// `modulate(layer_norm(x), shift, scale)` with the norm and the modulation in the wide kind
/// (`layers::layer_norm_wide`), left there: the linear layer that follows casts its input
/// (`layers::linear_cast`), as autocast does.
fn norm_modulate(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Tensor {
    modulate(&layer_norm_wide(x), shift, scale)
}

/// Train-mode dropout of a transformer (the DiT and the sequence transformer): a rate, a
/// train/eval switch, and the seed and call counter that key the hash masks.
#[derive(Debug)]
pub(crate) struct Dropout {
    rate: f64,
    train: Cell<bool>,
    seed: Cell<u64>,
    calls: Cell<u64>,
}

impl Dropout {
    /// Eval mode, dropout seed derived from the network's seed.
    pub(crate) fn new(rate: f64, seed: u64) -> Self {
        Dropout {
            rate,
            train: Cell::new(false),
            seed: Cell::new(splitmix64(seed ^ 0x6472_6f70_6f75_7421)),
            calls: Cell::new(0),
        }
    }

    pub(crate) fn set_train(&self, train: bool) {
        self.train.set(train);
    }

    pub(crate) fn is_train(&self) -> bool {
        self.train.get()
    }

    pub(crate) fn set_seed(&self, seed: u64) {
        self.seed.set(seed);
        self.calls.set(0);
    }

    pub(crate) fn state(&self) -> (u64, u64) {
        (self.seed.get(), self.calls.get())
    }

    /// `h` with inverted dropout in train mode (a shallow copy otherwise).
    pub(crate) fn apply(&self, h: Tensor) -> Tensor {
        if !self.train.get() || self.rate <= 0.0 {
            return h;
        }
        let call = self.calls.get();
        self.calls.set(call + 1);
        hash_dropout(&h, self.rate, dropout_key(self.seed.get(), call))
    }
}

/// One DiT block (shared with the sequence transformer).
#[derive(Debug)]
pub(crate) struct DitBlock {
    qkv: nn::Linear,
    proj: nn::Linear,
    fc1: nn::Linear,
    fc2: nn::Linear,
    ada: nn::Linear,
    heads: i64,
}

impl DitBlock {
    pub(crate) fn new(
        p: nn::Path<'_>,
        d: usize,
        heads: usize,
        mlp_ratio: f64,
        noise: &mut HostNoise,
    ) -> Self {
        let m = (d as f64 * mlp_ratio) as usize;
        let x = Init::XavierUniform;
        DitBlock {
            qkv: linear(&p / "attn" / "qkv", d, 3 * d, x, noise),
            proj: linear(&p / "attn" / "proj", d, d, x, noise),
            fc1: linear(&p / "mlp" / "fc1", d, m, x, noise),
            fc2: linear(&p / "mlp" / "fc2", m, d, x, noise),
            ada: linear(&p / "adaLN_modulation" / "1", d, 6 * d, Init::Zero, noise),
            heads: heads as i64,
        }
    }

    fn attn(&self, x: &Tensor, drop: &Dropout) -> Tensor {
        let s = x.size();
        let (b, l, d) = (s[0], s[1], s[2]);
        let qkv = linear_cast(&self.qkv, x)
            .reshape([b, l, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 1, 4]);
        let a = attention(&qkv.get(0), &qkv.get(1), &qkv.get(2));
        drop.apply(self.proj.forward(&a.transpose(1, 2).reshape([b, l, d])))
    }

    /// `x`: `[B, L, D]` tokens; `c`: the conditioning, `[B, D]`; `drop`: the network's dropout.
    /// The SiLU of `adaLN_modulation` is applied here, per block, as the PyTorch module does:
    /// computing `silu(c)` once for all blocks gives the same forward values, but its backward
    /// pass would sum the blocks' gradients before the SiLU instead of after it, which in
    /// 16 bits rounds differently.
    pub(crate) fn forward(&self, x: &Tensor, c: &Tensor, drop: &Dropout) -> Tensor {
        let m = linear_cast(&self.ada, &c.silu()).chunk(6, 1);
        let h = self.attn(&norm_modulate(x, &m[0], &m[1]), drop);
        let x = x + m[2].unsqueeze(1) * h;
        let h = self.fc2.forward(
            &drop.apply(linear_cast(&self.fc1, &norm_modulate(&x, &m[3], &m[4])).gelu("tanh")),
        );
        &x + m[5].unsqueeze(1) * h
    }
}

/// DiT's final layer: adaptive LayerNorm and a linear map to `out` values per token.
#[derive(Debug)]
pub(crate) struct FinalLayer {
    linear: nn::Linear,
    ada: nn::Linear,
}

impl FinalLayer {
    pub(crate) fn new(p: nn::Path<'_>, d: usize, out: usize, noise: &mut HostNoise) -> Self {
        FinalLayer {
            linear: linear(&p / "linear", d, out, Init::Zero, noise),
            ada: linear(&p / "adaLN_modulation" / "1", d, 2 * d, Init::Zero, noise),
        }
    }

    /// `x`: `[B, L, D]` tokens; `c`: the conditioning (its SiLU applied here, as in
    /// [`DitBlock::forward`]).
    pub(crate) fn forward(&self, x: &Tensor, c: &Tensor) -> Tensor {
        let m = linear_cast(&self.ada, &c.silu()).chunk(2, 1);
        linear_cast(&self.linear, &norm_modulate(x, &m[0], &m[1]))
    }
}

/// The DiT (see the module documentation for its layout and PyTorch equivalent).
#[derive(Debug)]
pub struct Dit {
    config: DitConfig,
    x_embedder: nn::Conv2D,
    pos_embed: Tensor,
    t_embedder: TimeMlp,
    y_embedder: Option<Tensor>,
    blocks: Vec<DitBlock>,
    final_layer: FinalLayer,
    device: Device,
    dropout: Dropout,
}

impl Dit {
    /// Creates the parameters under `path`, initialized from `HostNoise::new(seed)`.
    pub fn new(path: &nn::Path<'_>, cfg: &DitConfig, seed: u64) -> Result<Dit> {
        cfg.validate()?;
        let mut noise = HostNoise::new(seed);
        let n = &mut noise;
        let (d, p) = (cfg.hidden, cfg.patch_size);
        let g = cfg.grid_size();
        let x_embedder = conv2d(
            path / "x_embedder" / "proj",
            cfg.in_channels,
            d,
            p,
            p,
            0,
            Init::Zero,
            n,
        );
        // Xavier on the weight viewed as [D, in p p]: fan_in = in p p, fan_out = D.
        let bound = (6.0 / ((cfg.in_channels * p * p + d) as f64)).sqrt();
        fill_from_host(
            &x_embedder.ws,
            &super::uniform_values(n, x_embedder.ws.numel(), bound),
        );
        // Fixed, in the wide kind: under autocast the float32 table makes the token stream
        // float32 (see `layers`).
        let pos_embed = wide_variable(path, "pos_embed", &[1, (g * g) as i64, d as i64], false);
        fill_from_host(&pos_embed, &sincos_pos_embed_2d(d, g));
        let t_embedder = TimeMlp::new(
            &(path / "t_embedder"),
            &(path / "t_embedder" / "mlp"),
            &cfg.embedding,
            cfg.time_scale,
            d,
            Init::Normal(0.02),
            n,
        )?;
        let y_embedder = cfg.num_classes.map(|k| {
            embedding_table(
                path / "y_embedder" / "embedding_table",
                "weight",
                k + 1,
                d,
                0.02,
                n,
            )
        });
        let blocks = (0..cfg.depth)
            .map(|i| DitBlock::new(path / "blocks" / i, d, cfg.num_heads, cfg.mlp_ratio, n))
            .collect();
        let final_layer = FinalLayer::new(path / "final_layer", d, p * p * cfg.out_channels, n);
        Ok(Dit {
            config: cfg.clone(),
            x_embedder,
            pos_embed,
            t_embedder,
            y_embedder,
            blocks,
            final_layer,
            device: path.device(),
            dropout: Dropout::new(cfg.dropout, seed),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DitConfig {
        &self.config
    }

    /// Switches dropout on (`true`, training) or off (`false`, evaluation; the default).
    pub fn set_train(&self, train: bool) {
        self.dropout.set_train(train);
    }

    /// Whether dropout is on.
    pub fn is_train(&self) -> bool {
        self.dropout.is_train()
    }

    /// Sets the dropout seed and resets the dropout call counter.
    pub fn set_dropout_seed(&self, seed: u64) {
        self.dropout.set_seed(seed);
    }

    /// The dropout seed and the number of dropout calls made since it was set.
    pub fn dropout_state(&self) -> (u64, u64) {
        self.dropout.state()
    }
}

impl TimeNet for Dit {
    fn forward_t(&self, x: &Tensor, t: &Tensor, class: Option<&Tensor>) -> Result<Tensor> {
        let cfg = &self.config;
        let ImageInput { x, t, labels } = image_input(
            x,
            t,
            class,
            (cfg.in_channels, cfg.image_size),
            cfg.num_classes,
            (self.kind(), self.device),
            "Dit",
        )?;
        let b = x.size()[0];
        // [B, D, g, g] -> [B, g g, D]
        let mut h = self.x_embedder.forward(&x).flatten(2, 3).transpose(1, 2) + &self.pos_embed;
        let c = self.t_embedder.forward(&t);
        let c = match (&self.y_embedder, &labels) {
            (Some(table), Some(l)) => c + table.index_select(0, l),
            _ => c,
        };
        for blk in &self.blocks {
            h = blk.forward(&h, &c, &self.dropout);
        }
        let h = self.final_layer.forward(&h, &c);
        let (g, p, co) = (
            cfg.grid_size() as i64,
            cfg.patch_size as i64,
            cfg.out_channels as i64,
        );
        Ok(h.reshape([b, g, g, p, p, co])
            .permute([0, 5, 1, 3, 2, 4])
            .reshape([b, co, g * p, g * p]))
    }

    fn kind(&self) -> Kind {
        self.x_embedder.ws.kind()
    }

    fn device(&self) -> Device {
        self.device
    }

    fn null_class(&self) -> Option<i64> {
        self.config.num_classes.map(|k| k as i64)
    }

    fn set_train(&self, train: bool) {
        Dit::set_train(self, train);
    }

    fn set_dropout_seed(&self, seed: u64) {
        Dit::set_dropout_seed(self, seed);
    }
}
