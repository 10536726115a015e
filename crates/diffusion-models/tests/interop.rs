//! PyTorch interop: weights written by the reference modules of `tools/torch_ref/nets.py` load
//! into the Rust U-Net, DiT and sequence transformer through their `state_dict` names, and the
//! Rust forward passes reproduce the PyTorch outputs (float64 on both sides; the fixtures come
//! from `tools/refdata/make_net_fixtures.py`, run by `cargo xtask refdata`).

mod common;
use common::relative_distance;
use diffusion_models::nets::{
    load_safetensors, load_state_dict, state_dict, Dit, DitConfig, SeqTransformer,
    SeqTransformerConfig, TimeNet, UNet, UNetConfig,
};
use diffusion_models::train::{load_weights, save_weights};
use diffusion_models::ModelError;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::PathBuf;
use tch::{nn, Device, Kind, Tensor};

fn fixture(name: &str) -> PathBuf {
    common::fixtures().join(name)
}

fn config<T: DeserializeOwned>(section: &str) -> T {
    let text = std::fs::read_to_string(fixture("nets.toml")).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    table[section].clone().try_into().unwrap()
}

fn io(name: &str) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(fixture(&format!("{name}_io.safetensors")))
        .unwrap()
        .into_iter()
        .collect()
}

fn store(kind: Kind) -> nn::VarStore {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(kind);
    vs
}

/// `max |a - b| / max(1, max |b|)`.
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    let scale = b.abs().max().double_value(&[]).max(1.0);
    (a - &b).abs().max().double_value(&[]) / scale
}

fn unet(section: &str, kind: Kind) -> (nn::VarStore, UNet) {
    let cfg: UNetConfig = config(section);
    let vs = store(kind);
    let net = UNet::new(&vs.root(), &cfg, 0).unwrap();
    load_safetensors(&vs, &fixture(&format!("{section}.safetensors"))).unwrap();
    (vs, net)
}

#[test]
fn unet_matches_pytorch_in_eval_and_train_mode() {
    let d = io("unet");
    let (_vs, net) = unet("unet", Kind::Double);
    let (x, t, y) = (&d["x"], &d["t"], &d["class"]);
    let out = net.forward_t(x, t, Some(y)).unwrap();
    assert_eq!(out.kind(), Kind::Double);
    let e = rel_err(&out, &d["out"]);
    println!("unet eval: relative error {e:e}");
    assert!(e < 1e-10, "eval output differs from PyTorch by {e:e}");
    let null = net.forward_t(x, t, None).unwrap();
    assert!(rel_err(&null, &d["out_null"]) < 1e-10);
    // The null class is the label num_classes, and labels matter.
    let k = net.null_class().unwrap();
    assert_eq!(k, 3);
    let explicit = net
        .forward_t(
            x,
            t,
            Some(&Tensor::full([3], k, (Kind::Int64, Device::Cpu))),
        )
        .unwrap();
    assert!(explicit.equal(&null));
    assert!(rel_err(&out, &null) > 1e-3);
    // EDM2 log-variance head.
    let lv = net.log_variance(t).unwrap();
    assert_eq!(lv.size(), [3]);
    assert!(rel_err(&lv, &d["logvar"]) < 1e-10);
    // Train mode: the seeded hash dropout, mask for mask.
    net.set_train(true);
    let seed = d["dropout_seed"].int64_value(&[0]) as u64;
    net.set_dropout_seed(seed);
    let train = net.forward_t(x, t, Some(y)).unwrap();
    let e = rel_err(&train, &d["out_train"]);
    println!("unet train: relative error {e:e}");
    assert!(e < 1e-10, "train output differs from PyTorch by {e:e}");
    assert_eq!(
        net.dropout_state(),
        (seed, d["dropout_calls"].int64_value(&[0]) as u64)
    );
    assert!(rel_err(&train, &d["out"]) > 1e-3, "dropout had no effect");
    // The next call draws new masks; resetting the seed replays the first.
    let again = net.forward_t(x, t, Some(y)).unwrap();
    assert!(!again.equal(&train));
    net.set_dropout_seed(seed);
    assert!(net.forward_t(x, t, Some(y)).unwrap().equal(&train));
    net.set_train(false);
    assert!(net.forward_t(x, t, Some(y)).unwrap().equal(&out));
}

#[test]
fn unet_in_float32_is_close_to_the_float64_reference() {
    let d = io("unet");
    let (_vs, net) = unet("unet", Kind::Float);
    let out = net.forward_t(&d["x"], &d["t"], Some(&d["class"])).unwrap();
    assert_eq!(out.kind(), Kind::Float);
    let e = rel_err(&out, &d["out"]);
    println!("unet float32: relative error {e:e}");
    assert!(e < 1e-5, "float32 output differs by {e:e}");
}

#[test]
fn plain_unet_matches_pytorch() {
    // Additive embedding, 1/sqrt(2) skips, sinusoids, three levels, attention only in the middle.
    let d = io("unet_plain");
    let (_vs, net) = unet("unet_plain", Kind::Double);
    assert_eq!(net.null_class(), None);
    let out = net.forward_t(&d["x"], &d["t"], None).unwrap();
    let e = rel_err(&out, &d["out"]);
    println!("unet_plain: relative error {e:e}");
    assert!(e < 1e-10, "{e:e}");
    // Dropout 0: train mode changes nothing.
    net.set_train(true);
    assert!(net.forward_t(&d["x"], &d["t"], None).unwrap().equal(&out));
    assert!(net.log_variance(&d["t"]).is_err());
}

#[test]
fn dit_matches_pytorch_and_its_positional_embedding_is_the_reference_one() {
    let cfg: DitConfig = config("dit");
    let d = io("dit");
    let vs = store(Kind::Double);
    let net = Dit::new(&vs.root(), &cfg, 0).unwrap();
    // Before loading: our 2-D sin-cos table equals the reference's (stored in float32).
    let ours = vs.variables()["pos_embed"].shallow_clone();
    let theirs = load_weights(&fixture("dit.safetensors")).unwrap();
    let theirs = &theirs.iter().find(|(n, _)| n == "pos_embed").unwrap().1;
    assert!(rel_err(&ours, theirs) < 1e-7);
    assert!(!vs
        .trainable_variables()
        .iter()
        .any(|v| v.size() == ours.size()));
    load_safetensors(&vs, &fixture("dit.safetensors")).unwrap();
    let out = net.forward_t(&d["x"], &d["t"], Some(&d["class"])).unwrap();
    assert_eq!(out.size(), [3, 3, 8, 8]);
    let e = rel_err(&out, &d["out"]);
    println!("dit: relative error {e:e}");
    assert!(e < 1e-10, "{e:e}");
    let null = net.forward_t(&d["x"], &d["t"], None).unwrap();
    assert!(rel_err(&null, &d["out_null"]) < 1e-10);
    assert_eq!(net.null_class(), Some(3));
}

#[test]
fn sequence_transformer_matches_pytorch() {
    let cfg: SeqTransformerConfig = config("seq");
    let d = io("seq");
    let vs = store(Kind::Double);
    let net = SeqTransformer::new(&vs.root(), &cfg, 0).unwrap();
    load_safetensors(&vs, &fixture("seq.safetensors")).unwrap();
    let tokens = &d["tokens"];
    assert_eq!(tokens.size(), [3, 9], "shorter than seq_len on purpose");
    let out = net.forward(tokens, &d["t"]).unwrap();
    assert_eq!(out.size(), [3, 9, 7]);
    let e = rel_err(&out, &d["out"]);
    println!("seq: relative error {e:e}");
    assert!(e < 1e-10, "{e:e}");
    assert!(net.forward_t(tokens, &d["t"], None).unwrap().equal(&out));
}

#[test]
fn gradients_reach_every_parameter() {
    let d = io("unet");
    let (vs, net) = unet("unet", Kind::Float);
    net.set_train(true);
    let loss = net
        .forward_t(&d["x"], &d["t"], Some(&d["class"]))
        .unwrap()
        .square()
        .mean(Kind::Float)
        + net
            .log_variance(&d["t"])
            .unwrap()
            .square()
            .mean(Kind::Float);
    loss.backward();
    let mut n = 0;
    for (name, v) in state_dict(&vs) {
        if !v.requires_grad() {
            continue;
        }
        let g = v.grad();
        assert!(g.defined(), "no gradient for {name}");
        assert!(
            g.isfinite().all().int64_value(&[]) == 1,
            "non-finite gradient for {name}"
        );
        assert!(
            g.abs().sum(Kind::Double).double_value(&[]) > 0.0,
            "zero gradient for {name}"
        );
        n += 1;
    }
    assert!(n > 30);

    for which in ["dit", "seq"] {
        let d = io(which);
        let vs = store(Kind::Float);
        let out = if which == "dit" {
            let net = Dit::new(&vs.root(), &config("dit"), 0).unwrap();
            load_safetensors(&vs, &fixture("dit.safetensors")).unwrap();
            net.forward_t(&d["x"], &d["t"], Some(&d["class"])).unwrap()
        } else {
            let net = SeqTransformer::new(&vs.root(), &config("seq"), 0).unwrap();
            load_safetensors(&vs, &fixture("seq.safetensors")).unwrap();
            net.forward(&d["tokens"], &d["t"]).unwrap()
        };
        out.square().mean(Kind::Float).backward();
        for (name, v) in state_dict(&vs) {
            if v.requires_grad() {
                let g = v.grad();
                assert!(g.defined(), "{which}: no gradient for {name}");
                assert!(g.isfinite().all().int64_value(&[]) == 1, "{which}: {name}");
                assert!(
                    g.abs().sum(Kind::Double).double_value(&[]) > 0.0,
                    "{which}: zero gradient for {name}"
                );
            }
        }
    }
}

#[test]
fn bad_state_dicts_are_clear_errors_and_change_nothing() {
    let cfg: UNetConfig = config("unet_plain");
    let vs = store(Kind::Float);
    let _net = UNet::new(&vs.root(), &cfg, 5).unwrap();
    let before: Vec<Tensor> = state_dict(&vs).iter().map(|e| e.1.copy()).collect();
    let good = load_weights(&fixture("unet_plain.safetensors")).unwrap();
    let unchanged = |vs: &nn::VarStore| {
        state_dict(vs)
            .iter()
            .zip(&before)
            .all(|((_, a), b)| a.equal(b))
    };
    let msg = |named: &[(String, Tensor)]| match load_state_dict(&vs, named) {
        Err(e) => e.to_string(),
        Ok(()) => panic!("loaded a bad state_dict"),
    };

    // A tensor of the wrong shape.
    let mut bad: Vec<(String, Tensor)> = good
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let i = bad.iter().position(|(n, _)| n == "conv_in.weight").unwrap();
    bad[i].1 = Tensor::zeros([8, 1, 5, 5], (Kind::Float, Device::Cpu));
    assert!(matches!(
        load_state_dict(&vs, &bad),
        Err(ModelError::Shape { .. })
    ));
    let m = msg(&bad);
    assert!(
        m.contains("conv_in.weight") && m.contains("[8, 1, 3, 3]"),
        "{m}"
    );

    // An unknown name and a missing one.
    let mut bad: Vec<(String, Tensor)> = good
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    bad.push((
        "decoder.extra".into(),
        Tensor::zeros([2], (Kind::Float, Device::Cpu)),
    ));
    let m = msg(&bad);
    assert!(m.contains("unknown") && m.contains("decoder.extra"), "{m}");
    let bad: Vec<(String, Tensor)> = good
        .iter()
        .filter(|(n, _)| n != "mid.attn.qkv.bias")
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let m = msg(&bad);
    assert!(
        m.contains("missing") && m.contains("mid.attn.qkv.bias"),
        "{m}"
    );
    assert!(unchanged(&vs), "a failed load must not copy anything");

    // Files: a missing file, and another net's weights, name the file.
    match load_safetensors(&vs, &fixture("nope.safetensors")) {
        Err(ModelError::Checkpoint { reason, .. }) => assert!(reason.contains("no such file")),
        other => panic!("{other:?}"),
    }
    match load_safetensors(&vs, &fixture("dit.safetensors")) {
        Err(e @ ModelError::Checkpoint { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("dit.safetensors") && m.contains("x_embedder.proj.weight"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(unchanged(&vs));
    load_state_dict(&vs, &good).unwrap();
    assert!(!unchanged(&vs));
}

#[test]
fn rust_weights_round_trip_through_safetensors() {
    let cfg: DitConfig = config("dit");
    let vs = store(Kind::Float);
    let net = Dit::new(&vs.root(), &cfg, 11).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.safetensors");
    save_weights(&p, &state_dict(&vs)).unwrap();
    let vs2 = store(Kind::Float);
    let net2 = Dit::new(&vs2.root(), &cfg, 12).unwrap();
    load_safetensors(&vs2, &p).unwrap();
    let d = io("dit");
    // Zero-initialised outputs would hide a difference: perturb every variable the same way.
    for v in [&vs, &vs2] {
        tch::no_grad(|| {
            for (_, t) in state_dict(v) {
                let _ = t.shallow_clone().g_add_scalar_(0.01);
            }
        });
    }
    let a = net.forward_t(&d["x"], &d["t"], None).unwrap();
    let b = net2.forward_t(&d["x"], &d["t"], None).unwrap();
    assert!(a.equal(&b));
    assert!(a.abs().max().double_value(&[]) > 0.0);
}

/// On a CUDA device (skipped without one): the same fixtures, in float64, including the
/// train-mode output, whose dropout masks must be the CPU's (the hash is device-independent).
#[test]
fn cuda_matches_the_pytorch_reference() {
    if !tch::Cuda::is_available() {
        println!("cuda_matches_the_pytorch_reference: skipped (no CUDA device)");
        return;
    }
    let dev = Device::Cuda(0);
    let on = |kind: Kind| {
        let mut vs = nn::VarStore::new(dev);
        vs.set_kind(kind);
        vs
    };
    let d = io("unet");
    let vs = on(Kind::Double);
    let net = UNet::new(&vs.root(), &config("unet"), 0).unwrap();
    load_safetensors(&vs, &fixture("unet.safetensors")).unwrap();
    let (x, t, y) = (&d["x"], &d["t"], &d["class"]);
    let out = net.forward_t(x, t, Some(y)).unwrap();
    assert_eq!(out.device(), dev);
    let e = rel_err(&out.to_device(Device::Cpu), &d["out"]);
    println!("cuda unet eval: relative error {e:e}");
    assert!(e < 1e-10);
    net.set_train(true);
    net.set_dropout_seed(d["dropout_seed"].int64_value(&[0]) as u64);
    let train = net.forward_t(x, t, Some(y)).unwrap().to_device(Device::Cpu);
    let e = rel_err(&train, &d["out_train"]);
    println!("cuda unet train: relative error {e:e}");
    assert!(e < 1e-10);
    let lv = net.log_variance(t).unwrap().to_device(Device::Cpu);
    assert!(rel_err(&lv, &d["logvar"]) < 1e-10);
    // The device's tensor hash and the CPU's host loop give the same masks.
    let big = Tensor::randn([4, 64, 32, 32], (Kind::Float, Device::Cpu));
    let a = diffusion_models::nets::layers::hash_dropout(&big, 0.1, 77);
    let b = diffusion_models::nets::layers::hash_dropout(&big.to_device(dev), 0.1, 77);
    assert!(a.equal(&b.to_device(Device::Cpu)));

    let d = io("dit");
    let vs = on(Kind::Double);
    let net = Dit::new(&vs.root(), &config("dit"), 0).unwrap();
    load_safetensors(&vs, &fixture("dit.safetensors")).unwrap();
    let out = net.forward_t(&d["x"], &d["t"], Some(&d["class"])).unwrap();
    let e = rel_err(&out.to_device(Device::Cpu), &d["out"]);
    println!("cuda dit: relative error {e:e}");
    assert!(e < 1e-10);

    let d = io("seq");
    let vs = on(Kind::Double);
    let net = SeqTransformer::new(&vs.root(), &config("seq"), 0).unwrap();
    load_safetensors(&vs, &fixture("seq.safetensors")).unwrap();
    let out = net.forward(&d["tokens"], &d["t"]).unwrap();
    let e = rel_err(&out.to_device(Device::Cpu), &d["out"]);
    println!("cuda seq: relative error {e:e}");
    assert!(e < 1e-10);

    // Float32 on the GPU (TF32 convolutions may be on): informational bound only.
    let d = io("unet");
    let vs = on(Kind::Float);
    let net = UNet::new(&vs.root(), &config("unet"), 0).unwrap();
    load_safetensors(&vs, &fixture("unet.safetensors")).unwrap();
    let out = net.forward_t(&d["x"], &d["t"], Some(&d["class"])).unwrap();
    let e = rel_err(&out.to_device(Device::Cpu), &d["out"]);
    println!("cuda unet float32: relative error {e:e}");
    assert!(e < 1e-2);
}

/// The tensors of `<name>_lists.safetensors`.
fn lists(name: &str) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(fixture(&format!("{name}_lists.safetensors")))
        .unwrap()
        .into_iter()
        .collect()
}

/// Fixture network `name` (`unet`, `dit` or `seq`) built in a store of `kind` with the
/// fixture's weights, run on the fixture's inputs: its output and the gradients of
/// `<out, r>` (`r` from `<name>_lists.safetensors`) by parameter name (float32).
fn output_and_gradients(name: &str, kind: Kind) -> (Tensor, HashMap<String, Tensor>) {
    let d = io(name);
    let vs = store(kind);
    let forward: Box<dyn Fn() -> Tensor> = match name {
        "unet" => {
            let net = UNet::new(&vs.root(), &config("unet"), 0).unwrap();
            Box::new(move || net.forward_t(&d["x"], &d["t"], Some(&d["class"])).unwrap())
        }
        "dit" => {
            let net = Dit::new(&vs.root(), &config("dit"), 0).unwrap();
            Box::new(move || net.forward_t(&d["x"], &d["t"], Some(&d["class"])).unwrap())
        }
        _ => {
            let net = SeqTransformer::new(&vs.root(), &config("seq"), 0).unwrap();
            Box::new(move || net.forward(&d["tokens"], &d["t"]).unwrap())
        }
    };
    load_safetensors(&vs, &fixture(&format!("{name}.safetensors"))).unwrap();
    let out = forward();
    let r = &lists(name)["r"];
    (out.to_kind(Kind::Float) * r).sum(Kind::Float).backward();
    let grads = state_dict(&vs)
        .into_iter()
        .filter(|(_, t)| t.requires_grad() && t.grad().defined())
        .map(|(n, t)| (n, t.grad().to_kind(Kind::Float)))
        .collect();
    (out, grads)
}

/// `|a - b| / |b|` over every tensor of `want` (`grad.<name>` entries) and its match in `got`.
fn gradient_distance(got: &HashMap<String, Tensor>, want: &HashMap<String, Tensor>) -> f64 {
    relative_distance(want.iter().filter_map(|(key, w)| {
        let name = key.strip_prefix("grad.")?;
        let g = got
            .get(name)
            .unwrap_or_else(|| panic!("no Rust gradient for {key}"));
        Some((g, w))
    }))
}

/// The bfloat16 copies of the U-Net (class-conditional, scale-shift), the DiT and the sequence
/// transformer compute what CUDA autocast computes: on the interop fixtures' weights and inputs,
/// their outputs and the gradients of `<out, r>` equal those of the PyTorch modules in float32
/// under CUDA autocast's bf16 op lists (`<name>_lists.safetensors`, made by
/// tools/refdata/make_net_fixtures.py with tools/torch_ref/autocast_lists.py), while the float32
/// networks' gradients are far from them. This holds because norm parameters, embedding tables
/// and position tables stay float32 in a bfloat16 store, so a class or token embedding widens
/// the stream it joins to float32 (the DiT's and the transformer's residual streams, the
/// U-Net's time embedding), as under autocast.
#[test]
fn bf16_copies_match_pytorch_under_cuda_autocasts_lists() {
    for name in ["unet", "dit", "seq"] {
        let want = lists(name);
        let (out, grads) = output_and_gradients(name, Kind::BFloat16);
        let (_, grads32) = output_and_gradients(name, Kind::Float);
        let e_out = rel_err(&out, &want["out"]);
        let e = gradient_distance(&grads, &want);
        let e32 = gradient_distance(&grads32, &want);
        println!("{name}: bf16 output {e_out:.3e}, gradients {e:.3e} (float32 network: {e32:.3e})");
        // `PER_PARAM=1` lists the parameters whose gradients differ (for hunting a deviation).
        if std::env::var("PER_PARAM").is_ok() {
            for (k, w) in want.iter().filter(|(k, _)| k.starts_with("grad.")) {
                let one: HashMap<String, Tensor> = [(k.clone(), w.shallow_clone())].into();
                let d = gradient_distance(&grads, &one);
                if d > 1e-6 {
                    println!("   {k} {d:.3e}");
                }
            }
        }
        assert!(e_out < 1e-6, "{name}: bf16 output differs by {e_out:e}");
        assert!(e < 2e-5, "{name}: bf16 gradients differ by {e:e}");
        assert!(
            e32 > 1e-4,
            "{name}: float32 is only {e32:e} away (no test power)"
        );
    }
}
