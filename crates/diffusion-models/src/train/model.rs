//! The `[model]` section of a training configuration: which network, with its configuration.
//!
//! ```toml
//! [model]
//! kind = "mlp"        # "mlp" (the default when `kind` is absent), "unet" or "dit"
//! hidden = 128        # the rest are the fields of the chosen network's configuration
//! ```
//!
//! Each kind's fields are those of its configuration struct ([`MlpConfig`], [`UNetConfig`],
//! [`DitConfig`]), with the same defaults; unknown keys are errors. [`ModelConfig::build`] gives a
//! [`Net`], which the trainer switches into train mode (dropout) with a per-update dropout seed.

use crate::error::{ModelError, Result};
use crate::nets::{Dit, DitConfig, Mlp, MlpConfig, TimeNet, UNet, UNetConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tch::{nn, Device, Kind, Tensor};

/// A network and its configuration (TOML `[model]`, tagged by `kind`).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    /// The residual MLP for low-dimensional data (`kind = "mlp"`, the default).
    Mlp(MlpConfig),
    /// The image U-Net (`kind = "unet"`).
    UNet(UNetConfig),
    /// The diffusion transformer (`kind = "dit"`).
    Dit(DitConfig),
}

/// A network built from a [`ModelConfig`].
// One `Net` per trainer: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Net {
    /// An MLP.
    Mlp(Box<Mlp>),
    /// A U-Net.
    UNet(Box<UNet>),
    /// A DiT.
    Dit(Box<Dit>),
}

impl Net {
    /// The network as a [`TimeNet`].
    pub fn as_time_net(&self) -> &dyn TimeNet {
        match self {
            Net::Mlp(n) => n.as_ref(),
            Net::UNet(n) => n.as_ref(),
            Net::Dit(n) => n.as_ref(),
        }
    }

    /// The network as an owned [`TimeNet`] (its variables stay alive with it).
    pub fn into_time_net(self) -> Box<dyn TimeNet> {
        match self {
            Net::Mlp(n) => n,
            Net::UNet(n) => n,
            Net::Dit(n) => n,
        }
    }

    /// Train mode (dropout on) or eval mode; a no-op for networks without dropout.
    pub fn set_train(&self, train: bool) {
        self.as_time_net().set_train(train);
    }

    /// Seeds the dropout masks of the next forward passes (a no-op without dropout).
    pub fn set_dropout_seed(&self, seed: u64) {
        self.as_time_net().set_dropout_seed(seed);
    }
}

impl TimeNet for Net {
    fn forward_t(&self, x: &Tensor, t: &Tensor, class: Option<&Tensor>) -> Result<Tensor> {
        self.as_time_net().forward_t(x, t, class)
    }
    fn kind(&self) -> Kind {
        self.as_time_net().kind()
    }
    fn device(&self) -> Device {
        self.as_time_net().device()
    }
    fn null_class(&self) -> Option<i64> {
        self.as_time_net().null_class()
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::Mlp(MlpConfig::default())
    }
}

impl ModelConfig {
    /// The `kind` tag: `mlp`, `unet` or `dit`.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelConfig::Mlp(_) => "mlp",
            ModelConfig::UNet(_) => "unet",
            ModelConfig::Dit(_) => "dit",
        }
    }

    /// A human-readable name for messages (`MLP`, `U-Net`, `DiT`).
    pub fn label(&self) -> &'static str {
        match self {
            ModelConfig::Mlp(_) => "MLP",
            ModelConfig::UNet(_) => "U-Net",
            ModelConfig::Dit(_) => "DiT",
        }
    }

    /// Checks the network's configuration.
    pub fn validate(&self) -> Result<()> {
        match self {
            ModelConfig::Mlp(c) => c.validate(),
            ModelConfig::UNet(c) => c.validate(),
            ModelConfig::Dit(c) => c.validate(),
        }
    }

    /// Number of classes the network is conditioned on (0: unconditional).
    pub fn num_classes(&self) -> usize {
        match self {
            ModelConfig::Mlp(c) => c.num_classes,
            ModelConfig::UNet(c) => c.num_classes.unwrap_or(0),
            ModelConfig::Dit(c) => c.num_classes.unwrap_or(0),
        }
    }

    /// The shape of one input item the network takes (`[data_dim]` for the MLP, `[C, H, W]`
    /// for image networks).
    pub fn item_shape(&self) -> Vec<i64> {
        match self {
            ModelConfig::Mlp(c) => vec![c.data_dim as i64],
            ModelConfig::UNet(c) => {
                vec![
                    c.in_channels as i64,
                    c.image_size as i64,
                    c.image_size as i64,
                ]
            }
            ModelConfig::Dit(c) => {
                vec![
                    c.in_channels as i64,
                    c.image_size as i64,
                    c.image_size as i64,
                ]
            }
        }
    }

    /// The MLP configuration, if this is one.
    pub fn mlp(&self) -> Option<&MlpConfig> {
        match self {
            ModelConfig::Mlp(c) => Some(c),
            _ => None,
        }
    }

    /// The U-Net configuration, if this is one.
    pub fn unet(&self) -> Option<&UNetConfig> {
        match self {
            ModelConfig::UNet(c) => Some(c),
            _ => None,
        }
    }

    /// The MLP configuration, mutable, if this is one.
    pub fn mlp_mut(&mut self) -> Option<&mut MlpConfig> {
        match self {
            ModelConfig::Mlp(c) => Some(c),
            _ => None,
        }
    }

    /// Builds the network under `path` with initial weights from `seed`.
    pub fn build(&self, path: &nn::Path<'_>, seed: u64) -> Result<Net> {
        Ok(match self {
            ModelConfig::Mlp(c) => Net::Mlp(Box::new(Mlp::new(path, c, seed)?)),
            ModelConfig::UNet(c) => Net::UNet(Box::new(UNet::new(path, c, seed)?)),
            ModelConfig::Dit(c) => Net::Dit(Box::new(Dit::new(path, c, seed)?)),
        })
    }
}

fn config_error(e: impl std::fmt::Display) -> ModelError {
    ModelError::Config(format!("[model]: {e}"))
}

impl ModelConfig {
    /// Reads the section from a TOML table (`kind` selects the network, `mlp` when absent).
    pub fn from_table(mut table: toml::Table) -> Result<Self> {
        let kind = match table.remove("kind") {
            None => "mlp".to_string(),
            Some(toml::Value::String(s)) => s,
            Some(other) => {
                return Err(config_error(format!(
                    "`kind` must be a string (\"mlp\", \"unet\" or \"dit\"), got {other}"
                )))
            }
        };
        let rest = toml::Value::Table(table);
        Ok(match kind.as_str() {
            "mlp" => ModelConfig::Mlp(rest.try_into().map_err(config_error)?),
            "unet" => ModelConfig::UNet(rest.try_into().map_err(config_error)?),
            "dit" => ModelConfig::Dit(rest.try_into().map_err(config_error)?),
            other => {
                return Err(config_error(format!(
                    "unknown kind `{other}` (expected \"mlp\", \"unet\" or \"dit\")"
                )))
            }
        })
    }

    /// The section as a TOML table, `kind` first.
    pub fn to_table(&self) -> Result<toml::Table> {
        let inner = match self {
            ModelConfig::Mlp(c) => toml::Table::try_from(c),
            ModelConfig::UNet(c) => toml::Table::try_from(c),
            ModelConfig::Dit(c) => toml::Table::try_from(c),
        }
        .map_err(config_error)?;
        let mut t = toml::Table::new();
        t.insert("kind".into(), toml::Value::String(self.kind().into()));
        t.extend(inner);
        Ok(t)
    }
}

impl Serialize for ModelConfig {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_table()
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ModelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let table = toml::Table::deserialize(d)?;
        ModelConfig::from_table(table).map_err(serde::de::Error::custom)
    }
}
