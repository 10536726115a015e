//! Dropout in the DiT and the sequence transformer: the train-mode outputs equal the PyTorch
//! reference's (`tools/torch_ref/nets.py`, same hash masks; fixture written by
//! `tests/fixtures/make_dropout_fixtures.py` from the interop fixtures' weights and inputs),
//! are reproducible for a fixed dropout seed and change with it, while eval mode and a rate of
//! 0 leave the outputs bit-identical to the dropout-free network.

use diffusion_models::nets::{
    load_safetensors, Dit, DitConfig, SeqTransformer, SeqTransformerConfig, TimeNet,
};
use diffusion_models::train::model::ModelConfig;
use diffusion_models::ModelError;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::PathBuf;
use tch::{nn, Device, Kind, Tensor};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn config<T: DeserializeOwned>(section: &str) -> T {
    let text = std::fs::read_to_string(fixture("nets.toml")).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    table[section].clone().try_into().unwrap()
}

fn tensors(name: &str) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(fixture(name))
        .unwrap()
        .into_iter()
        .collect()
}

fn store() -> nn::VarStore {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    vs
}

/// `max |a - b| / max(1, max |b|)`.
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let b = b.to_kind(Kind::Double);
    let scale = b.abs().max().double_value(&[]).max(1.0);
    (a.to_kind(Kind::Double) - &b).abs().max().double_value(&[]) / scale
}

fn dit(rate: f64) -> (nn::VarStore, Dit) {
    let cfg = DitConfig {
        dropout: rate,
        ..config("dit")
    };
    let vs = store();
    let net = Dit::new(&vs.root(), &cfg, 0).unwrap();
    load_safetensors(&vs, &fixture("dit.safetensors")).unwrap();
    (vs, net)
}

fn seq(rate: f64) -> (nn::VarStore, SeqTransformer) {
    let cfg = SeqTransformerConfig {
        dropout: rate,
        ..config("seq")
    };
    let vs = store();
    let net = SeqTransformer::new(&vs.root(), &cfg, 0).unwrap();
    load_safetensors(&vs, &fixture("seq.safetensors")).unwrap();
    (vs, net)
}

#[test]
fn dit_dropout_matches_pytorch_and_is_seeded() {
    let io = tensors("dit_io.safetensors");
    let f = tensors("transformer_dropout_io.safetensors");
    let rate = f["rate"].double_value(&[0]);
    let seed = f["seed"].int64_value(&[0]) as u64;
    let (x, t, y) = (&io["x"], &io["t"], Some(&io["class"]));
    let (_v0, plain) = dit(0.0);
    let (_v1, net) = dit(rate);
    // Eval mode: the interop output, bit for bit the rate-0 network's.
    let eval = net.forward_t(x, t, y).unwrap();
    assert!(rel_err(&eval, &io["out"]) < 1e-10);
    assert!(eval.equal(&plain.forward_t(x, t, y).unwrap()));
    assert_eq!(net.dropout_state().1, 0, "no dropout calls in eval mode");
    // Rate 0 in train mode changes nothing.
    plain.set_train(true);
    plain.set_dropout_seed(seed);
    assert!(plain.forward_t(x, t, y).unwrap().equal(&eval));
    // Train mode: PyTorch's masks, two calls per block.
    let dyn_net: &dyn TimeNet = &net;
    dyn_net.set_train(true);
    dyn_net.set_dropout_seed(seed);
    assert!(net.is_train());
    let a = net.forward_t(x, t, y).unwrap();
    let e = rel_err(&a, &f["dit_out_train"]);
    println!("dit train: relative error to PyTorch {e:e}");
    assert!(e < 1e-10, "train output differs from PyTorch by {e:e}");
    assert_eq!(
        net.dropout_state(),
        (seed, f["dit_calls"].int64_value(&[0]) as u64)
    );
    assert_eq!(net.dropout_state().1, 2 * net.config().depth as u64);
    assert!(rel_err(&a, &eval) > 1e-3, "dropout had no effect");
    // New masks on the next call, the same after resetting the seed, others for another seed.
    let b = net.forward_t(x, t, y).unwrap();
    assert!(!b.equal(&a));
    net.set_dropout_seed(seed);
    assert!(net.forward_t(x, t, y).unwrap().equal(&a));
    net.set_dropout_seed(seed + 1);
    assert!(!net.forward_t(x, t, y).unwrap().equal(&a));
    dyn_net.set_train(false);
    assert!(net.forward_t(x, t, y).unwrap().equal(&eval));
}

#[test]
fn sequence_transformer_dropout_matches_pytorch_and_is_seeded() {
    let io = tensors("seq_io.safetensors");
    let f = tensors("transformer_dropout_io.safetensors");
    let rate = f["rate"].double_value(&[0]);
    let seed = f["seed"].int64_value(&[0]) as u64;
    let (tokens, t) = (&io["tokens"], &io["t"]);
    let (_v0, plain) = seq(0.0);
    let (_v1, net) = seq(rate);
    let eval = net.forward(tokens, t).unwrap();
    assert!(rel_err(&eval, &io["out"]) < 1e-10);
    assert!(eval.equal(&plain.forward(tokens, t).unwrap()));
    plain.set_train(true);
    assert!(plain.forward(tokens, t).unwrap().equal(&eval));
    let dyn_net: &dyn TimeNet = &net;
    dyn_net.set_train(true);
    dyn_net.set_dropout_seed(seed);
    let a = net.forward(tokens, t).unwrap();
    let e = rel_err(&a, &f["seq_out_train"]);
    println!("seq train: relative error to PyTorch {e:e}");
    assert!(e < 1e-10, "train output differs from PyTorch by {e:e}");
    assert_eq!(
        net.dropout_state(),
        (seed, f["seq_calls"].int64_value(&[0]) as u64)
    );
    assert!(rel_err(&a, &eval) > 1e-3, "dropout had no effect");
    assert!(!net.forward(tokens, t).unwrap().equal(&a));
    net.set_dropout_seed(seed);
    assert!(net.forward(tokens, t).unwrap().equal(&a));
    net.set_train(false);
    assert!(net.forward(tokens, t).unwrap().equal(&eval));
}

#[test]
fn dropout_rates_outside_the_unit_interval_are_errors() {
    for rate in [-0.1, 1.0, f64::NAN] {
        let vs = nn::VarStore::new(Device::Cpu);
        let e = Dit::new(
            &vs.root(),
            &DitConfig {
                dropout: rate,
                ..DitConfig::default()
            },
            0,
        );
        assert!(
            matches!(&e, Err(ModelError::InvalidParameter { name, .. }) if *name == "model.dropout"),
            "{e:?}"
        );
        let e = SeqTransformer::new(
            &vs.root(),
            &SeqTransformerConfig {
                dropout: rate,
                ..SeqTransformerConfig::default()
            },
            0,
        );
        assert!(e.is_err());
    }
}

#[test]
fn the_trainers_net_switches_dit_dropout() {
    // `[model] kind = "dit"` with `dropout`: the trainer's `Net` forwards train mode and the
    // per-update dropout seed to the DiT.
    let f = tensors("transformer_dropout_io.safetensors");
    let io = tensors("dit_io.safetensors");
    let cfg = DitConfig {
        dropout: f["rate"].double_value(&[0]),
        ..config("dit")
    };
    let vs = store();
    let net = ModelConfig::Dit(cfg).build(&vs.root(), 0).unwrap();
    load_safetensors(&vs, &fixture("dit.safetensors")).unwrap();
    let (x, t, y) = (&io["x"], &io["t"], Some(&io["class"]));
    let eval = net.forward_t(x, t, y).unwrap();
    net.set_train(true);
    net.set_dropout_seed(f["seed"].int64_value(&[0]) as u64);
    let train = net.forward_t(x, t, y).unwrap();
    assert!(rel_err(&train, &f["dit_out_train"]) < 1e-10);
    net.set_train(false);
    assert!(net.forward_t(x, t, y).unwrap().equal(&eval));
}
