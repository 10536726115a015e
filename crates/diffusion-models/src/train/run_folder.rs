//! The files of a `diffusion train` run folder, and a run read back as a frozen [`Teacher`] for
//! distillation (`[loss] kind = "progressive"`, or `kind = "scm"` with a `teacher`).
//!
//! A run folder holds `config.toml` (the configuration the run trained with), `model.safetensors`
//! (the raw weights) and `ema_<decay>.safetensors` for every tracked EMA decay: plain PyTorch
//! `state_dict`s. [`load_teacher`] builds the run's network, loads the weights the run samples
//! with (`sample.ema`, see [`TrainConfig::sample_decay`]) and reads it with the run's own
//! parameterization and forward process ([`TrainConfig::reading`]), so a teacher is evaluated
//! exactly as `diffusion generate --run` would sample it; guidance is the caller's choice
//! ([`Teacher::with_guidance`], `loss.teacher_guidance`).

use super::checkpoint::{load_weights, save_weights};
use super::config::TrainConfig;
use super::trainer::Trainer;
use crate::error::{ModelError, Result};
use crate::losses::Teacher;
use crate::nets::state::load_state_dict;
use std::path::Path;
use tch::{nn, Device};

/// The configuration file of a run folder.
pub const RUN_CONFIG: &str = "config.toml";

/// The file of a run folder holding the weights of EMA `decay` (`ema_<decay>.safetensors`), or
/// the raw weights for `None` (`model.safetensors`): plain PyTorch `state_dict`s that `diffusion
/// train` writes and `diffusion generate --run` and [`load_teacher`] read.
pub fn weights_file(decay: Option<f64>) -> String {
    match decay {
        Some(d) => format!("ema_{d}.safetensors"),
        None => "model.safetensors".into(),
    }
}

/// Writes `trainer`'s weights into the run folder `dir` (which must exist): the raw weights and
/// those of every tracked EMA decay, each written atomically, under [`weights_file`]'s names.
pub fn save_run_weights(trainer: &Trainer, dir: &Path) -> Result<()> {
    save_weights(&dir.join(weights_file(None)), &trainer.named_variables())?;
    for &d in &trainer.config().train.ema_decays {
        let (vs, _) = trainer.ema_model(d)?;
        let mut named: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|x, y| x.0.cmp(&y.0));
        save_weights(&dir.join(weights_file(Some(d))), &named)?;
    }
    Ok(())
}

/// The network of the `diffusion train` run in folder `run`, frozen on `device` as a distillation
/// teacher: its `config.toml`, the weights of the EMA decay it samples with, its
/// parameterization and forward process. Errors name the folder: a missing folder or
/// configuration, weights that are missing or do not fit the configured network, and runs that
/// cannot teach (improved DDPM's learned-variance networks, whose output carries a variance head).
pub fn load_teacher(run: &Path, device: Device) -> Result<Teacher> {
    let config_path = run.join(RUN_CONFIG);
    if !config_path.is_file() {
        return Err(ModelError::Config(format!(
            "teacher {}: no {RUN_CONFIG} there (a teacher is a `diffusion train --out` folder)",
            run.display()
        )));
    }
    let cfg = TrainConfig::load(&config_path)
        .map_err(|e| ModelError::Config(format!("teacher {}: {e}", config_path.display())))?;
    let (param, schedule) = cfg
        .reading()
        .map_err(|e| ModelError::Config(format!("teacher {}: {e}", run.display())))?;
    let weights = run.join(weights_file(cfg.sample_decay()));
    let mut vs = nn::VarStore::new(device);
    let net = cfg.model.build(&vs.root(), cfg.seed)?;
    load_state_dict(&vs, &load_weights(&weights)?).map_err(|e| {
        ModelError::checkpoint(&weights, format!("does not fit the teacher's [model]: {e}"))
    })?;
    vs.freeze();
    let net = net.into_time_net();
    net.set_train(false);
    Ok(Teacher::new(net, param, schedule))
}
