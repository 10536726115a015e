//! The sampling half of the quality comparison with PyTorch: `Trainer::sample_from` (what
//! `diffusion train` and `diffusion generate` sample with: the `heun` registry solver on the
//! `karras` grid through `TchDenoiser` with EDM's preconditioning) against EDM's Algorithm 1 in
//! PyTorch (tools/torch_ref/sampling.py, the sampler of tools/bench/train_torch.py) on the same
//! weights and initial states: fixture `sample_parity.safetensors` (tools/refdata/
//! make_net_fixtures.py, `sample_case`: the `unet_autocast` U-Net at random weights, three
//! 28x28 initial states at sigma_max = 80, 6 steps, float64 there, float32 here). So a gap
//! between the two sides' FMNIST-FD cannot come from the samplers.

mod common;
use common::{fixture_unet_config, fixtures, fmnist_shaped_dir, relative_distance};
use diffusion_models::train::Trainer;
use diffusion_models::ModelError;
use std::collections::HashMap;
use tch::{Kind, Tensor};

fn fixture() -> HashMap<String, Tensor> {
    Tensor::read_safetensors(fixtures().join("sample_parity.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

/// A trainer of the fixture's network with `solver` for `steps` steps on `grid`, holding the
/// fixture's weights.
fn trainer(fx: &HashMap<String, Tensor>, solver: &str, grid: &str, steps: i64) -> Trainer {
    let data = fmnist_shaped_dir();
    let config = fixture_unet_config(
        "unet_autocast",
        data.path(),
        &format!(
            "sigma_max = 80.0\n[train]\nsteps = 1\nbatch_size = 4\n\
             [sample]\nsolver = \"{solver}\"\ngrid = \"{grid}\"\nsteps = {steps}\nn = 3\n"
        ),
    );
    let mut t = Trainer::new(config).unwrap();
    let weights: Vec<(String, Tensor)> = fx
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("w.")
                .map(|n| (n.to_string(), v.shallow_clone()))
        })
        .collect();
    t.load_state_dict(&weights).unwrap();
    t
}

#[test]
fn edm_heun_on_the_karras_grid_is_pytorchs_algorithm_1() {
    let fx = fixture();
    let steps = fx["steps"].int64_value(&[0]);
    let want = &fx["out"];
    let x_t = &fx["x_t"];
    let t = trainer(&fx, "heun", "karras", steps);
    let (got, labels) = t.sample_from(t.net(), x_t, 0).unwrap();
    assert!(labels.is_none());
    assert_eq!(got.kind(), Kind::Float);
    let d = relative_distance([(&got, want)]);
    // Controls: what a sampler one detail off gives on the same weights and noise.
    let euler = {
        let t = trainer(&fx, "euler", "karras", steps);
        t.sample_from(t.net(), x_t, 0).unwrap().0
    };
    let grid = {
        let t = trainer(&fx, "heun", "karras:rho=5", steps);
        t.sample_from(t.net(), x_t, 0).unwrap().0
    };
    let (de, dg) = (
        relative_distance([(&euler, want)]),
        relative_distance([(&grid, want)]),
    );
    eprintln!("heun/karras vs PyTorch: {d:.3e}; controls: euler {de:.3e}, rho 5 {dg:.3e}");
    assert!(d < 1e-5, "the samples are {d:.3e} from PyTorch's");
    assert!(de > 1e-3 && dg > 1e-3, "controls {de:.3e} {dg:.3e}");
}

#[test]
fn initial_states_of_the_wrong_shape_are_refused() {
    let fx = fixture();
    let t = trainer(&fx, "heun", "karras", 2);
    for bad in [
        Tensor::zeros([2, 1, 28], (Kind::Float, tch::Device::Cpu)),
        Tensor::zeros([2, 3, 28, 28], (Kind::Float, tch::Device::Cpu)),
        Tensor::zeros([0, 1, 28, 28], (Kind::Float, tch::Device::Cpu)),
    ] {
        match t.sample_from(t.net(), &bad, 0) {
            Err(ModelError::Shape { context, got, .. }) => {
                assert!(context.contains("initial states"), "{context}");
                assert_eq!(got, bad.size());
            }
            other => panic!("{:?}: {:?}", bad.size(), other.map(|_| ())),
        }
    }
}
