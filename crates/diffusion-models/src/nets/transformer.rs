//! A small bidirectional transformer over token sequences, conditioned on the diffusion time
//! through adaLN-Zero, for discrete (masked or uniform) diffusion: `logits = net(tokens, t)`,
//! `[B, L] -> [B, L, V]`.
//!
//! Paper: Peebles & Xie (2023), "Scalable Diffusion Models with Transformers", arXiv:2212.09748,
//! Sec. 3.2 (adaLN-Zero blocks); used over tokens as the denoiser of masked diffusion language
//! models: Lou, Meng & Ermon (2024), "Discrete Diffusion Modeling by Estimating the Ratios of the
//! Data Distribution", arXiv:2310.16834, App. C (SEDD: a DiT-style encoder-only transformer with
//! time conditioning), and Sahoo et al. (2024), "Simple and Effective Masked Diffusion Language
//! Models", arXiv:2406.07524.
//!
//! The equivalent PyTorch module is `SeqTransformer` in `tools/torch_ref/nets.py`; its
//! `state_dict` names the parameters here:
//!
//! ```text
//! tok_embed.weight                      [vocab_size, D], N(0, 1)
//! pos_embed                             [1, seq_len, D] learned, N(0, 0.02^2)
//! t_embedder.W, t_embedder.mlp.{0,2}.*  as in the DiT
//! blocks.{i}.*                          DiT blocks (no attention mask: every token sees all)
//! final_layer.*                         adaptive LayerNorm, Linear(D, vocab_size) (zero init)
//!
//! h = tok_embed[tokens] + pos_embed[:, :L]; c = t_embedder(t)
//! h = block(h, c) for every block; logits = final_layer(h, c)
//! ```
//!
//! Sequences may be shorter than `seq_len` (the first `L` positions are used). The vocabulary
//! includes the mask token of an absorbing process, if any. The zero-initialised final layer
//! starts the network at uniform logits.
//!
//! Dropout (rate `dropout`, 0 by default) is the DiT's: on each block's attention output and MLP
//! hidden activation, seeded hash masks, active only after [`SeqTransformer::set_train`]`(true)`
//! (see [`super::dit`]).

use super::dit::{validate_transformer, DitBlock, Dropout, FinalLayer};
use super::embedding::TimeEmbedding;
use super::layers::{embedding_table, wide_kind, wide_variable, Init, TimeMlp};
use super::{check_time, fill_from_host, TimeNet};
use crate::error::{ModelError, Result};
use diffusion_core::HostNoise;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

/// Configuration of [`SeqTransformer`].
///
/// The default suits character-level text: 28 tokens (27 symbols and a mask token), sequences
/// up to 128, width 128, depth 4, 4 heads, MLP ratio 4, sinusoidal time embedding of width 128:
/// 1,276,956 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeqTransformerConfig {
    /// Number of token values `V` (including a mask token).
    pub vocab_size: usize,
    /// Longest sequence (positions with a learned embedding).
    pub seq_len: usize,
    /// Token width `D`.
    pub hidden: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads (must divide `hidden`).
    pub num_heads: usize,
    /// Width of the MLP over the token width.
    pub mlp_ratio: f64,
    /// The time embedding.
    pub embedding: TimeEmbedding,
    /// The network's time input is multiplied by this before the embedding.
    pub time_scale: f64,
    /// Dropout rate on the attention and MLP activations of every block (train mode only; 0:
    /// none).
    pub dropout: f64,
}

impl Default for SeqTransformerConfig {
    fn default() -> Self {
        SeqTransformerConfig {
            vocab_size: 28,
            seq_len: 128,
            hidden: 128,
            depth: 4,
            num_heads: 4,
            mlp_ratio: 4.0,
            embedding: TimeEmbedding::Sinusoidal {
                dim: 128,
                max_period: 10000.0,
            },
            time_scale: 1.0,
            dropout: 0.0,
        }
    }
}

impl SeqTransformerConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if self.vocab_size < 2 {
            return Err(ModelError::invalid(
                "model.vocab_size",
                format!("must be at least 2, got {}", self.vocab_size),
            ));
        }
        if self.seq_len == 0 {
            return Err(ModelError::invalid("model.seq_len", "must be at least 1"));
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

/// The sequence transformer (see the module documentation for its PyTorch equivalent).
#[derive(Debug)]
pub struct SeqTransformer {
    config: SeqTransformerConfig,
    tok_embed: Tensor,
    pos_embed: Tensor,
    t_embedder: TimeMlp,
    blocks: Vec<DitBlock>,
    final_layer: FinalLayer,
    device: Device,
    /// The store's kind (the linear layers'; the tables are in its wide kind).
    kind: Kind,
    dropout: Dropout,
}

impl SeqTransformer {
    /// Creates the parameters under `path`, initialized from `HostNoise::new(seed)`.
    pub fn new(
        path: &nn::Path<'_>,
        cfg: &SeqTransformerConfig,
        seed: u64,
    ) -> Result<SeqTransformer> {
        cfg.validate()?;
        let mut noise = HostNoise::new(seed);
        let n = &mut noise;
        let d = cfg.hidden;
        let tok_embed = embedding_table(path / "tok_embed", "weight", cfg.vocab_size, d, 1.0, n);
        // Learned, in the wide kind like the token table (see `layers`).
        let pos_embed = wide_variable(path, "pos_embed", &[1, cfg.seq_len as i64, d as i64], true);
        let v: Vec<f64> = n
            .normals(pos_embed.numel())
            .iter()
            .map(|z| z * 0.02)
            .collect();
        fill_from_host(&pos_embed, &v);
        let t_embedder = TimeMlp::new(
            &(path / "t_embedder"),
            &(path / "t_embedder" / "mlp"),
            &cfg.embedding,
            cfg.time_scale,
            d,
            Init::Normal(0.02),
            n,
        )?;
        let blocks = (0..cfg.depth)
            .map(|i| DitBlock::new(path / "blocks" / i, d, cfg.num_heads, cfg.mlp_ratio, n))
            .collect();
        let final_layer = FinalLayer::new(path / "final_layer", d, cfg.vocab_size, n);
        Ok(SeqTransformer {
            config: cfg.clone(),
            tok_embed,
            pos_embed,
            t_embedder,
            blocks,
            final_layer,
            device: path.device(),
            kind: path.kind(),
            dropout: Dropout::new(cfg.dropout, seed),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SeqTransformerConfig {
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

    /// Logits `[B, L, V]` for integer tokens `[B, L]` (values in `0..vocab_size`, `L <=
    /// seq_len`) at per-sample times `t` (`[B]`).
    pub fn forward(&self, tokens: &Tensor, t: &Tensor) -> Result<Tensor> {
        let cfg = &self.config;
        let size = tokens.size();
        if size.len() != 2 || size[1] < 1 || size[1] > cfg.seq_len as i64 {
            return Err(ModelError::Shape {
                context: format!("SeqTransformer tokens (length 1..={})", cfg.seq_len),
                expected: vec![-1, cfg.seq_len as i64],
                got: size,
            });
        }
        if tokens.is_floating_point() {
            return Err(ModelError::invalid(
                "tokens",
                format!("must be integers, got {:?}", tokens.kind()),
            ));
        }
        let b = check_time(tokens, t, "SeqTransformer")?;
        let tokens = tokens.to_kind(Kind::Int64).to_device(self.device);
        if tokens.numel() > 0 {
            let (lo, hi) = (tokens.min().int64_value(&[]), tokens.max().int64_value(&[]));
            if lo < 0 || hi >= cfg.vocab_size as i64 {
                return Err(ModelError::invalid(
                    "tokens",
                    format!("values must lie in 0..{}, got {lo}..={hi}", cfg.vocab_size),
                ));
            }
        }
        let t = t.to_kind(wide_kind(self.kind())).to_device(self.device);
        let l = size[1];
        let d = cfg.hidden as i64;
        let mut h = self
            .tok_embed
            .index_select(0, &tokens.reshape([-1]))
            .reshape([b, l, d])
            + self.pos_embed.narrow(1, 0, l);
        let c = self.t_embedder.forward(&t);
        for blk in &self.blocks {
            h = blk.forward(&h, &c, &self.dropout);
        }
        Ok(self.final_layer.forward(&h, &c))
    }
}

/// `x` holds the tokens (`[B, L]`, integer); no class conditioning.
impl TimeNet for SeqTransformer {
    fn forward_t(&self, x: &Tensor, t: &Tensor, class: Option<&Tensor>) -> Result<Tensor> {
        if class.is_some() {
            return Err(ModelError::invalid(
                "class",
                "SeqTransformer has no class conditioning",
            ));
        }
        self.forward(x, t)
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn device(&self) -> Device {
        self.device
    }

    fn set_train(&self, train: bool) {
        SeqTransformer::set_train(self, train);
    }

    fn set_dropout_seed(&self, seed: u64) {
        SeqTransformer::set_dropout_seed(self, seed);
    }
}
