//! Moving weights between a `VarStore` and PyTorch `state_dict`s (safetensors files).
//!
//! Every network of this crate names its variables as its PyTorch equivalent's `state_dict`
//! does, so a file written by `safetensors.torch.save_file(model.state_dict(), path)` loads
//! with [`load_safetensors`]. Loading is strict and all-or-nothing: every variable of the store
//! must be present with the same shape, no other name may appear, and nothing is copied unless
//! all of that holds. Values are converted to the kind and device of each variable.

use crate::error::{ModelError, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tch::{nn, Tensor};

/// Every variable of `vs` (trainable or not) under its name, sorted by name (shallow clones).
pub fn state_dict(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The number of trainable scalars in `vs`.
pub fn num_parameters(vs: &nn::VarStore) -> usize {
    vs.trainable_variables().iter().map(|t| t.numel()).sum()
}

/// Copies `named` into the variables of `vs` (strict; see the module documentation).
///
/// Errors: [`ModelError::Shape`] for a tensor whose shape differs from its variable's,
/// [`ModelError::InvalidParameter`] (`state_dict`) listing unknown and missing names.
pub fn load_state_dict(vs: &nn::VarStore, named: &[(String, Tensor)]) -> Result<()> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut given = BTreeSet::new();
    let mut unknown = Vec::new();
    let mut duplicate = Vec::new();
    for (name, t) in named {
        if !given.insert(name.as_str()) {
            duplicate.push(name.clone());
        }
        match vars.get(name) {
            None => unknown.push(name.clone()),
            Some(v) if v.size() != t.size() => {
                return Err(ModelError::Shape {
                    context: format!("state_dict entry `{name}`"),
                    expected: v.size(),
                    got: t.size(),
                })
            }
            Some(_) => {}
        }
    }
    let missing: Vec<&String> = vars
        .keys()
        .filter(|k| !given.contains(k.as_str()))
        .collect();
    if !unknown.is_empty() || !missing.is_empty() || !duplicate.is_empty() {
        let mut parts = Vec::new();
        if !unknown.is_empty() {
            parts.push(format!("unknown tensors {unknown:?}"));
        }
        if !missing.is_empty() {
            parts.push(format!("missing tensors {missing:?}"));
        }
        if !duplicate.is_empty() {
            parts.push(format!("repeated tensors {duplicate:?}"));
        }
        return Err(ModelError::invalid(
            "state_dict",
            format!("does not fit the network: {}", parts.join(", ")),
        ));
    }
    for (name, t) in named {
        let dst = &vars[name];
        let src = t.to_kind(dst.kind()).to_device(dst.device());
        tch::no_grad(|| dst.shallow_clone().copy_(&src));
    }
    Ok(())
}

/// Reads a safetensors `state_dict` and loads it with [`load_state_dict`]. A file that cannot
/// be read or does not fit the network is a [`ModelError::Checkpoint`] naming the file (shape
/// mismatches stay [`ModelError::Shape`]).
pub fn load_safetensors(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let named = crate::train::checkpoint::load_weights(path)?;
    match load_state_dict(vs, &named) {
        Err(ModelError::InvalidParameter { reason, .. }) => {
            Err(ModelError::checkpoint(path, format!("state_dict {reason}")))
        }
        other => other,
    }
}
