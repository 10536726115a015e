//! The image and sequence networks on their own: parameter counts of the default
//! configurations (equal to the PyTorch reference modules' counts), seeding, zero-initialised
//! outputs, dropout switching, and clear errors for bad configurations and inputs.

use diffusion_models::nets::{
    num_parameters, state_dict, Dit, DitConfig, SeqTransformer, SeqTransformerConfig,
    TimeEmbedding, TimeNet, UNet, UNetConfig,
};
use diffusion_models::ModelError;
use tch::{nn, Device, Kind, Tensor};

fn tiny_unet() -> UNetConfig {
    UNetConfig {
        in_channels: 2,
        out_channels: 2,
        image_size: 8,
        model_channels: 8,
        channel_mult: vec![1, 2],
        num_res_blocks: 1,
        attention_resolutions: vec![4],
        num_heads: 2,
        dropout: 0.3,
        num_classes: Some(2),
        groups: 4,
        embedding: TimeEmbedding::Sinusoidal {
            dim: 8,
            max_period: 10000.0,
        },
        ..UNetConfig::default()
    }
}

fn tiny_dit() -> DitConfig {
    DitConfig {
        image_size: 8,
        patch_size: 4,
        in_channels: 2,
        out_channels: 2,
        hidden: 16,
        depth: 1,
        num_heads: 2,
        num_classes: Some(2),
        embedding: TimeEmbedding::Sinusoidal {
            dim: 8,
            max_period: 10000.0,
        },
        ..DitConfig::default()
    }
}

fn tiny_seq() -> SeqTransformerConfig {
    SeqTransformerConfig {
        vocab_size: 5,
        seq_len: 6,
        hidden: 8,
        depth: 1,
        num_heads: 2,
        embedding: TimeEmbedding::Sinusoidal {
            dim: 8,
            max_period: 10000.0,
        },
        ..SeqTransformerConfig::default()
    }
}

fn input(shape: &[i64], seed: u64) -> Tensor {
    let n: i64 = shape.iter().product();
    let v = diffusion_core::HostNoise::new(seed).normals(n as usize);
    Tensor::from_slice(&v).to_kind(Kind::Float).reshape(shape)
}

#[test]
fn default_configurations_have_the_documented_parameter_counts() {
    // The counts of tools/torch_ref/nets.py's UNet(), DiT() and SeqTransformer() (trainable
    // parameters; DiT's pos_embed is a fixed buffer).
    let vs = nn::VarStore::new(Device::Cpu);
    let _u = UNet::new(&vs.root(), &UNetConfig::default(), 0).unwrap();
    let n_unet = num_parameters(&vs);
    let vs = nn::VarStore::new(Device::Cpu);
    let _d = Dit::new(&vs.root(), &DitConfig::default(), 0).unwrap();
    let n_dit = num_parameters(&vs);
    let vs = nn::VarStore::new(Device::Cpu);
    let _s = SeqTransformer::new(&vs.root(), &SeqTransformerConfig::default(), 0).unwrap();
    let n_seq = num_parameters(&vs);
    println!("parameters: unet={n_unet} dit={n_dit} seq_transformer={n_seq}");
    assert_eq!(n_unet, 3_912_241);
    assert_eq!(n_dit, 4_160_836);
    assert_eq!(n_seq, 1_276_956);
}

#[test]
fn same_seed_same_weights_and_zero_output_at_init() {
    let x = input(&[2, 2, 8, 8], 1);
    let t = Tensor::from_slice(&[0.2f32, 0.7]);
    type Build = fn(&nn::Path<'_>, u64) -> Box<dyn TimeNet>;
    let builders: [(&str, Build); 3] = [
        ("unet", |p, s| {
            Box::new(UNet::new(p, &tiny_unet(), s).unwrap())
        }),
        ("dit", |p, s| Box::new(Dit::new(p, &tiny_dit(), s).unwrap())),
        ("seq", |p, s| {
            Box::new(SeqTransformer::new(p, &tiny_seq(), s).unwrap())
        }),
    ];
    for (name, build) in builders {
        let (a, b, c) = (
            nn::VarStore::new(Device::Cpu),
            nn::VarStore::new(Device::Cpu),
            nn::VarStore::new(Device::Cpu),
        );
        let net = build(&a.root(), 7);
        let _ = build(&b.root(), 7);
        let _ = build(&c.root(), 8);
        let (sa, sb, sc) = (state_dict(&a), state_dict(&b), state_dict(&c));
        assert_eq!(sa.len(), sb.len());
        let mut differ = false;
        for ((na, ta), ((_, tb), (_, tc))) in sa.iter().zip(sb.iter().zip(&sc)) {
            assert!(ta.equal(tb), "{name}: {na} differs for the same seed");
            differ |= !ta.equal(tc);
        }
        assert!(differ, "{name}: another seed gave the same weights");
        let out = if name == "seq" {
            let tokens = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 0, 1, 2]).reshape([2, 4]);
            let o = net.forward_t(&tokens, &t, None).unwrap();
            assert_eq!(o.size(), [2, 4, 5]);
            o
        } else {
            let o = net.forward_t(&x, &t, None).unwrap();
            assert_eq!(o.size(), [2, 2, 8, 8]);
            o
        };
        assert_eq!(
            out.abs().sum(Kind::Double).double_value(&[]),
            0.0,
            "{name}: zero-initialised output layer"
        );
    }
}

#[test]
fn dropout_only_in_train_mode_and_reproducible() {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = UNet::new(&vs.root(), &tiny_unet(), 3).unwrap();
    // Give the zero-initialised layers weights so dropout shows in the output.
    tch::no_grad(|| {
        for (name, v) in state_dict(&vs) {
            if name.ends_with("conv2.weight") || name.starts_with("conv_out") {
                v.shallow_clone().copy_(&(input(&v.size(), 9) * 0.1));
            }
        }
    });
    let x = input(&[2, 2, 8, 8], 1);
    let t = Tensor::from_slice(&[0.2f32, 0.7]);
    assert!(!net.is_train());
    let eval = net.forward_t(&x, &t, None).unwrap();
    assert!(net.forward_t(&x, &t, None).unwrap().equal(&eval));
    assert_eq!(net.dropout_state().1, 0, "no dropout calls in eval mode");
    net.set_train(true);
    net.set_dropout_seed(42);
    let a = net.forward_t(&x, &t, None).unwrap();
    // Every residual block draws one mask: 2 down, 2 in the middle, 2 up per level.
    let calls = net.dropout_state().1;
    assert_eq!(calls, 2 + 2 + 2 * 2);
    assert!(!a.equal(&eval));
    let b = net.forward_t(&x, &t, None).unwrap();
    assert!(!a.equal(&b));
    // Another net with the same seed, same dropout seed: same masks.
    let vs2 = nn::VarStore::new(Device::Cpu);
    let net2 = UNet::new(&vs2.root(), &tiny_unet(), 3).unwrap();
    load_same(&vs, &vs2);
    net2.set_train(true);
    net2.set_dropout_seed(42);
    assert!(net2.forward_t(&x, &t, None).unwrap().equal(&a));
}

fn load_same(from: &nn::VarStore, to: &nn::VarStore) {
    diffusion_models::nets::load_state_dict(to, &state_dict(from)).unwrap();
}

#[test]
fn bad_inputs_are_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let unet = UNet::new(&vs.root(), &tiny_unet(), 0).unwrap();
    let dit = Dit::new(&vs.root().sub("dit"), &tiny_dit(), 0).unwrap();
    let x = input(&[2, 2, 8, 8], 1);
    let t = Tensor::from_slice(&[0.2f32, 0.7]);
    for net in [&unet as &dyn TimeNet, &dit] {
        for bad in [
            input(&[2, 3, 8, 8], 1),
            input(&[2, 2, 8, 4], 1),
            input(&[2, 128], 1),
        ] {
            assert!(matches!(
                net.forward_t(&bad, &t, None),
                Err(ModelError::Shape { .. })
            ));
        }
        assert!(matches!(
            net.forward_t(&x, &Tensor::from_slice(&[0.1f32]), None),
            Err(ModelError::Shape { .. })
        ));
        let labels = |v: &[i64]| Tensor::from_slice(v);
        assert!(
            net.forward_t(&x, &t, Some(&labels(&[0, 2]))).is_ok(),
            "null label"
        );
        let e = net.forward_t(&x, &t, Some(&labels(&[0, 3]))).unwrap_err();
        assert!(e.to_string().contains("0..=2"), "{e}");
        assert!(net.forward_t(&x, &t, Some(&labels(&[-1, 0]))).is_err());
        assert!(net.forward_t(&x, &t, Some(&labels(&[0]))).is_err());
        assert!(net
            .forward_t(&x, &t, Some(&Tensor::from_slice(&[0.0f32, 1.0])))
            .is_err());
    }
    // Unconditional nets refuse labels.
    let cfg = UNetConfig {
        num_classes: None,
        ..tiny_unet()
    };
    let plain = UNet::new(&vs.root().sub("plain"), &cfg, 0).unwrap();
    assert!(plain
        .forward_t(&x, &t, Some(&Tensor::from_slice(&[0i64, 1])))
        .is_err());
    assert!(plain.log_variance(&t).is_err());
    // Tokens: too long, out of range, floating point, wrong time.
    let seq = SeqTransformer::new(&vs.root().sub("seq"), &tiny_seq(), 0).unwrap();
    let tok = |v: &[i64], l: i64| Tensor::from_slice(v).reshape([-1, l]);
    assert!(seq.forward(&tok(&[0; 14], 7), &t).is_err());
    assert!(seq.forward(&tok(&[0, 1, 5, 0], 2), &t).is_err());
    assert!(seq.forward(&tok(&[0, 1, -1, 0], 2), &t).is_err());
    assert!(seq.forward(&input(&[2, 2], 0), &t).is_err());
    assert!(seq.forward(&tok(&[0, 1, 2, 0], 2), &t).is_ok());
    assert!(seq
        .forward(&tok(&[0, 1, 2, 0], 2), &Tensor::from_slice(&[0.1f32]))
        .is_err());
    assert!(seq
        .forward_t(
            &tok(&[0, 1, 2, 0], 2),
            &t,
            Some(&Tensor::from_slice(&[0i64, 0]))
        )
        .is_err());
}

#[test]
fn bad_configurations_name_the_field() {
    let field = |r: diffusion_models::Result<()>| match r {
        Err(ModelError::InvalidParameter { name, .. }) => name,
        other => panic!("expected an invalid parameter, got {other:?}"),
    };
    let u = tiny_unet();
    assert!(u.validate().is_ok());
    let cases = [
        (
            UNetConfig {
                image_size: 10,
                channel_mult: vec![1, 2, 2],
                ..u.clone()
            },
            "model.image_size",
        ),
        (
            UNetConfig {
                groups: 3,
                ..u.clone()
            },
            "model.groups",
        ),
        (
            UNetConfig {
                num_heads: 3,
                ..u.clone()
            },
            "model.num_heads",
        ),
        (
            UNetConfig {
                attention_resolutions: vec![5],
                ..u.clone()
            },
            "model.attention_resolutions",
        ),
        (
            UNetConfig {
                channel_mult: vec![],
                ..u.clone()
            },
            "model.channel_mult",
        ),
        (
            UNetConfig {
                dropout: 1.0,
                ..u.clone()
            },
            "model.dropout",
        ),
        (
            UNetConfig {
                num_classes: Some(0),
                ..u.clone()
            },
            "model.num_classes",
        ),
        (
            UNetConfig {
                time_scale: f64::NAN,
                ..u.clone()
            },
            "model.time_scale",
        ),
        (
            UNetConfig {
                model_channels: 0,
                ..u.clone()
            },
            "model.model_channels",
        ),
        (
            UNetConfig {
                logvar_channels: 3,
                ..u.clone()
            },
            "model.logvar_channels",
        ),
    ];
    for (cfg, name) in cases {
        assert_eq!(field(cfg.validate()), name);
        let vs = nn::VarStore::new(Device::Cpu);
        assert!(UNet::new(&vs.root(), &cfg, 0).is_err());
    }
    let d = tiny_dit();
    assert!(d.validate().is_ok());
    let cases = [
        (
            DitConfig {
                patch_size: 3,
                ..d.clone()
            },
            "model.patch_size",
        ),
        (
            DitConfig {
                hidden: 18,
                num_heads: 3,
                ..d.clone()
            },
            "model.hidden",
        ),
        (
            DitConfig {
                num_heads: 3,
                ..d.clone()
            },
            "model.num_heads",
        ),
        (
            DitConfig {
                depth: 0,
                ..d.clone()
            },
            "model.depth",
        ),
        (
            DitConfig {
                mlp_ratio: 0.0,
                ..d.clone()
            },
            "model.mlp_ratio",
        ),
    ];
    for (cfg, name) in cases {
        assert_eq!(field(cfg.validate()), name);
    }
    let s = tiny_seq();
    assert_eq!(
        field(
            SeqTransformerConfig {
                vocab_size: 1,
                ..s.clone()
            }
            .validate()
        ),
        "model.vocab_size"
    );
    assert_eq!(
        field(
            SeqTransformerConfig {
                num_heads: 3,
                ..s.clone()
            }
            .validate()
        ),
        "model.num_heads"
    );
    // TOML: unknown fields are rejected, missing ones take the defaults.
    let cfg: UNetConfig = toml::from_str("model_channels = 32\nnum_classes = 10").unwrap();
    assert_eq!(cfg.model_channels, 32);
    assert_eq!(cfg.num_classes, Some(10));
    assert_eq!(cfg.channel_mult, UNetConfig::default().channel_mult);
    assert!(toml::from_str::<UNetConfig>("model_chanels = 32").is_err());
    assert!(toml::from_str::<DitConfig>("depth = 2\nwidth = 3").is_err());
    assert!(toml::from_str::<SeqTransformerConfig>("vocab = 3").is_err());
}
