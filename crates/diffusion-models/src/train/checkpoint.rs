//! Checkpoints: model, EMA averages, optimizer moments and the step, in one safetensors file,
//! written atomically and verified on load.
//!
//! Layout (tensor names): `model.<name>` (every variable, under the PyTorch `state_dict` name),
//! `ema.<i>.<name>` (trainable parameters averaged with decay `meta.ema_decays[i]`),
//! `optim.exp_avg.<name>` / `optim.exp_avg_sq.<name>` (AdamW moments), `objective.<name>` (the
//! objective's own state, e.g. sCM's adaptive weighting head; absent for most), `meta.step` and
//! `meta.optim_step` (`i64`), `meta.format` (`i64`, currently 1), `meta.config` (the run's TOML
//! as `u8`) and `meta.checksum`: FNV-1a (64 bit) over every other entry's name, dtype, shape and
//! bytes in name order. safetensors itself rejects a truncated or malformed file; the checksum
//! catches flipped bytes in the data.
//!
//! Writing goes to a temporary file in the same folder, which is fsynced and renamed over the
//! destination (then the folder is fsynced), so a crash leaves either the old or the new file.
//! [`save_weights`] writes a plain `state_dict` (names without prefix) the same way, for PyTorch.

use crate::error::{ModelError, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The format version written into `meta.format`.
pub const FORMAT_VERSION: i64 = 1;

/// Named tensors, sorted by name.
pub type Named = Vec<(String, Tensor)>;

/// Everything needed to continue a run exactly.
#[derive(Debug)]
pub struct Checkpoint {
    /// Updates done.
    pub step: u64,
    /// Every model variable (trainable or not).
    pub model: Named,
    /// EMA averages of the trainable parameters, one entry per decay.
    pub ema: Vec<(f64, Named)>,
    /// Updates done by the optimizer (its bias correction).
    pub optim_step: u64,
    /// AdamW first moments of the trainable parameters.
    pub exp_avg: Named,
    /// AdamW second moments of the trainable parameters.
    pub exp_avg_sq: Named,
    /// The objective's own training state (see [`crate::losses::Objective::state`]).
    pub objective: Named,
    /// The run's configuration as TOML (provenance).
    pub config: String,
}

/// FNV-1a (64 bit) of `bytes`, continuing from `hash`.
pub(crate) fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= b as u64;
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

fn cpu_contiguous(t: &Tensor) -> Tensor {
    t.detach().to_device(Device::Cpu).contiguous()
}

fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let numel = t.numel();
    let mut buf = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    t.f_copy_data_u8(&mut buf, numel)?;
    Ok(buf)
}

/// The checksum of a set of named CPU tensors (order-independent: sorted by name).
pub(crate) fn checksum(entries: &[(String, Tensor)]) -> Result<u64> {
    let mut idx: Vec<usize> = (0..entries.len()).collect();
    idx.sort_by(|&a, &b| entries[a].0.cmp(&entries[b].0));
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for i in idx {
        let (name, t) = &entries[i];
        fnv1a(&mut h, name.as_bytes());
        fnv1a(&mut h, &[0]);
        fnv1a(&mut h, format!("{:?}", t.kind()).as_bytes());
        for d in t.size() {
            fnv1a(&mut h, &d.to_le_bytes());
        }
        fnv1a(&mut h, &tensor_bytes(t)?);
    }
    Ok(h)
}

fn scalar_i64(v: i64) -> Tensor {
    Tensor::from_slice(&[v])
}

/// Writes `entries` to `path` atomically: temporary file, fsync, rename, fsync of the folder.
fn write_atomic(path: &Path, entries: &[(String, Tensor)]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| ModelError::checkpoint(path, "the path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| -> Result<()> {
        Tensor::write_safetensors(entries, &tmp)?;
        File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename durable (directories can be opened read-only on Unix).
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| ModelError::checkpoint(path, format!("cannot write: {e}")))
}

/// Writes a plain `state_dict` (names as given, no prefix) atomically, with no metadata: the file
/// PyTorch's `safetensors.torch.load_file` reads.
pub fn save_weights(path: &Path, named: &[(String, Tensor)]) -> Result<()> {
    let entries: Named = named
        .iter()
        .map(|(n, t)| (n.clone(), cpu_contiguous(t)))
        .collect();
    write_atomic(path, &entries)
}

/// Reads a plain `state_dict` written by [`save_weights`] (or by PyTorch).
pub fn load_weights(path: &Path) -> Result<Named> {
    read_entries(path)
}

fn read_entries(path: &Path) -> Result<Named> {
    if !path.exists() {
        return Err(ModelError::checkpoint(path, "no such file"));
    }
    let mut entries = Tensor::read_safetensors(path).map_err(|e| {
        ModelError::checkpoint(
            path,
            format!("not a readable safetensors file (truncated or corrupt?): {e}"),
        )
    })?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

impl Checkpoint {
    /// Writes the checkpoint atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut entries: Named = Vec::new();
        for (n, t) in &self.model {
            entries.push((format!("model.{n}"), cpu_contiguous(t)));
        }
        for (i, (_, named)) in self.ema.iter().enumerate() {
            for (n, t) in named {
                entries.push((format!("ema.{i}.{n}"), cpu_contiguous(t)));
            }
        }
        for (n, t) in &self.exp_avg {
            entries.push((format!("optim.exp_avg.{n}"), cpu_contiguous(t)));
        }
        for (n, t) in &self.exp_avg_sq {
            entries.push((format!("optim.exp_avg_sq.{n}"), cpu_contiguous(t)));
        }
        for (n, t) in &self.objective {
            entries.push((format!("objective.{n}"), cpu_contiguous(t)));
        }
        let decays: Vec<f64> = self.ema.iter().map(|e| e.0).collect();
        entries.push(("meta.ema_decays".into(), Tensor::from_slice(&decays)));
        entries.push(("meta.step".into(), scalar_i64(self.step as i64)));
        entries.push(("meta.optim_step".into(), scalar_i64(self.optim_step as i64)));
        entries.push(("meta.format".into(), scalar_i64(FORMAT_VERSION)));
        // A zero-length tensor would be legal, but keep one byte so every entry has data.
        let mut cfg = self.config.as_bytes().to_vec();
        cfg.push(b'\n');
        entries.push(("meta.config".into(), Tensor::from_slice(&cfg)));
        let sum = checksum(&entries)?;
        entries.push(("meta.checksum".into(), scalar_i64(sum as i64)));
        write_atomic(path, &entries)
    }

    /// Reads and verifies a checkpoint. Errors ([`ModelError::Checkpoint`]) name the file and
    /// say what is wrong: missing, not safetensors (truncated, garbage), checksum mismatch
    /// (corrupted bytes), missing entries or an unknown format version.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let entries = read_entries(path)?;
        let bad = |reason: String| ModelError::checkpoint(path, reason);
        let mut stored_sum = None;
        let mut rest: Named = Vec::new();
        for (n, t) in entries {
            if n == "meta.checksum" {
                stored_sum = Some(t.int64_value(&[0]) as u64);
            } else {
                rest.push((n, t));
            }
        }
        let stored_sum = stored_sum.ok_or_else(|| {
            bad("no `meta.checksum` entry (not a checkpoint of this crate)".into())
        })?;
        let sum = checksum(&rest)?;
        if sum != stored_sum {
            return Err(bad(format!(
                "checksum mismatch (stored {stored_sum:016x}, computed {sum:016x}): the file is corrupted"
            )));
        }
        let meta = |name: &str| -> Result<&Tensor> {
            rest.iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| bad(format!("missing entry `{name}`")))
        };
        let int = |name: &str| -> Result<i64> {
            let t = meta(name)?;
            if t.kind() != Kind::Int64 || t.numel() != 1 {
                return Err(bad(format!("entry `{name}` must be one i64")));
            }
            Ok(t.int64_value(&[0]))
        };
        let format = int("meta.format")?;
        if format != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {format}, this build reads {FORMAT_VERSION}"
            )));
        }
        let step = u64::try_from(int("meta.step")?).map_err(|_| bad("negative step".into()))?;
        let optim_step = u64::try_from(int("meta.optim_step")?)
            .map_err(|_| bad("negative optimizer step".into()))?;
        let decays: Vec<f64> = Vec::try_from(meta("meta.ema_decays")?.to_kind(Kind::Double))
            .map_err(|e| bad(format!("entry `meta.ema_decays`: {e}")))?;
        let cfg: Vec<u8> = Vec::try_from(meta("meta.config")?)
            .map_err(|e| bad(format!("entry `meta.config`: {e}")))?;
        let mut config =
            String::from_utf8(cfg).map_err(|_| bad("`meta.config` is not UTF-8".into()))?;
        config.pop();
        let take = |prefix: &str| -> Named {
            rest.iter()
                .filter_map(|(n, t)| {
                    n.strip_prefix(prefix)
                        .map(|s| (s.to_string(), t.shallow_clone()))
                })
                .collect()
        };
        let model = take("model.");
        if model.is_empty() {
            return Err(bad("no `model.*` entries".into()));
        }
        let ema = decays
            .iter()
            .enumerate()
            .map(|(i, &d)| (d, take(&format!("ema.{i}."))))
            .collect();
        Ok(Checkpoint {
            step,
            model,
            ema,
            optim_step,
            exp_avg: take("optim.exp_avg."),
            exp_avg_sq: take("optim.exp_avg_sq."),
            objective: take("objective."),
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let w = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
        let b = Tensor::from_slice(&[0.5f32, -0.5]);
        let named =
            |s: f64| -> Named { vec![("lin.bias".into(), &b * s), ("lin.weight".into(), &w * s)] };
        Checkpoint {
            step: 7,
            model: named(1.0),
            ema: vec![(0.9, named(0.9)), (0.99, named(0.99))],
            optim_step: 7,
            exp_avg: named(0.1),
            exp_avg_sq: named(0.01),
            objective: vec![("head.calls".into(), Tensor::from_slice(&[5i64]))],
            config: "seed = 3".into(),
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ck.safetensors");
        let c = sample();
        c.save(&p).unwrap();
        let d = Checkpoint::load(&p).unwrap();
        assert_eq!(d.step, 7);
        assert_eq!(d.optim_step, 7);
        assert_eq!(d.config, "seed = 3");
        assert_eq!(d.ema.len(), 2);
        assert_eq!(d.ema[1].0, 0.99);
        assert_eq!(d.objective.len(), 1);
        assert_eq!(d.objective[0].0, "head.calls");
        assert_eq!(d.objective[0].1.int64_value(&[0]), 5);
        for (a, b) in c.model.iter().zip(&d.model) {
            assert_eq!(a.0, b.0);
            assert!(a.1.equal(&b.1));
        }
        for (a, b) in c.ema[1].1.iter().zip(&d.ema[1].1) {
            assert!(a.1.equal(&b.1));
        }
        assert!(c.exp_avg_sq[1].1.equal(&d.exp_avg_sq[1].1));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn truncated_corrupt_missing_and_foreign_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ck.safetensors");
        sample().save(&p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let msg = |path: &Path| match Checkpoint::load(path) {
            Err(ModelError::Checkpoint { reason, .. }) => reason,
            other => panic!("expected a checkpoint error, got {other:?}"),
        };
        // Truncated: half the file, and the last byte missing.
        for cut in [bytes.len() / 2, bytes.len() - 1, 5] {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            assert!(msg(&p).contains("truncated or corrupt"), "cut {cut}");
        }
        // One flipped byte in the data (the last byte belongs to the last tensor's data).
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        std::fs::write(&p, &flipped).unwrap();
        assert!(msg(&p).contains("checksum mismatch"), "{}", msg(&p));
        // Missing, garbage, and a plain state_dict that is not a checkpoint.
        assert!(msg(&dir.path().join("nope.safetensors")).contains("no such file"));
        std::fs::write(&p, b"hello world, not a checkpoint").unwrap();
        assert!(msg(&p).contains("truncated or corrupt"));
        save_weights(&p, &sample().model).unwrap();
        assert!(msg(&p).contains("meta.checksum"));
        assert_eq!(load_weights(&p).unwrap().len(), 2);
    }
}
