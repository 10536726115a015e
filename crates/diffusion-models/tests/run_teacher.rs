//! A `diffusion train` run folder read back as a distillation teacher
//! (`diffusion_models::train::load_teacher`): the teacher is the run's sampled EMA network read
//! with the run's own parameterization and forward process, at any other schedule's times by
//! SNR matching; distillation configurations build their objectives from it, a progressive
//! student teaches the next round without its own teacher, and every broken folder is a typed
//! error that names it.

mod common;

use common::{fixture_unet_config, fmnist_shaped_dir, relative_distance, tiny};
use diffusion_core::schedule::{TrigFlow, VpCosine};
use diffusion_core::NoiseSchedule;
use diffusion_models::train::{
    load_teacher, load_weights, save_run_weights, save_weights, LossConfig, TrainConfig, Trainer,
    RUN_CONFIG,
};
use diffusion_models::{x0_per_row, ModelError, Output, Parameterization};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Trains `cfg` for its steps and writes the run folder `dir` as `diffusion train` does.
fn run_folder(cfg: &TrainConfig, dir: &Path) -> Trainer {
    std::fs::create_dir_all(dir).unwrap();
    let mut t = Trainer::new(cfg.clone()).unwrap();
    t.train_steps(cfg.train.steps as usize).unwrap();
    std::fs::write(dir.join(RUN_CONFIG), cfg.to_toml().unwrap()).unwrap();
    save_run_weights(&t, dir).unwrap();
    t
}

/// `cfg` with its `[loss]` section replaced by the TOML `loss` (header included).
fn with_loss(cfg: &TrainConfig, loss: &str) -> TrainConfig {
    let mut table: toml::Table = toml::from_str(&cfg.to_toml().unwrap()).unwrap();
    let loss: toml::Table = toml::from_str(loss).unwrap();
    table.insert("loss".into(), loss["loss"].clone());
    TrainConfig::from_toml_str(&toml::to_string(&table).unwrap()).unwrap()
}

fn states(n: i64) -> Tensor {
    Tensor::randn([n, 2], (Kind::Float, Device::Cpu)) * 3.0
}

#[test]
fn a_run_reads_back_as_its_sampled_ema_network() {
    tch::manual_seed(0);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(200); // past the EMA warmup, where the two decays differ
    cfg.sample.ema = Some(0.99);
    let trainer = run_folder(&cfg, dir.path());
    let teacher = load_teacher(dir.path(), Device::Cpu).unwrap();
    let obj = trainer.objective();
    assert_eq!(teacher.parameterization(), obj.parameterization());
    assert_eq!(teacher.schedule().name(), obj.schedule().name());

    // At the run's own times the teacher is the EMA network read as the run reads it.
    let (lo, hi) = obj.schedule().t_range();
    let t: Vec<f64> = (0..16)
        .map(|i| lo + (hi - lo) * (i as f64 + 0.5) / 16.0)
        .collect();
    let x = states(16);
    let got = teacher.x0(obj.schedule(), &x, &t, None).unwrap();
    let want = |decay: f64| {
        let (_vs, net) = trainer.ema_model(decay).unwrap();
        tch::no_grad(|| {
            x0_per_row(
                net.as_ref(),
                obj.parameterization(),
                obj.schedule(),
                &x,
                &t,
                None,
            )
        })
        .unwrap()
    };
    let d = relative_distance([(&got, &want(0.99))]);
    assert!(d < 1e-6, "teacher vs the run's EMA 0.99 network: {d:e}");
    // ... and not the other EMA (the check can tell them apart).
    let other = relative_distance([(&got, &want(0.9))]);
    assert!(other > 1e-3, "EMA 0.9 is {other:e} away");

    // At another schedule's times: the same x0 as at the run's own time of equal SNR, for the
    // state rescaled by the ratio of the signal coefficients.
    let vp = VpCosine::default();
    let s = [0.2, 0.5, 0.8];
    let x3 = states(3);
    let via_vp = teacher.x0(&vp, &x3, &s, None).unwrap();
    let own: Vec<f64> = s
        .iter()
        .map(|&si| obj.schedule().t_of_lambda(vp.lambda(si)))
        .collect();
    let scale: Vec<f64> = s
        .iter()
        .zip(&own)
        .map(|(&si, &oi)| obj.schedule().alpha(oi) / vp.alpha(si))
        .collect();
    let scaled = &x3
        * Tensor::from_slice(&scale)
            .to_kind(Kind::Float)
            .reshape([3, 1]);
    let direct = teacher.x0(obj.schedule(), &scaled, &own, None).unwrap();
    let d = relative_distance([(&via_vp, &direct)]);
    assert!(d < 1e-5, "SNR matching: {d:e}");
}

#[test]
fn distillation_configs_build_their_objectives_from_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher");
    run_folder(&tiny(10), &teacher);

    let mut scd = tiny(10);
    scd.loss = LossConfig::Scm {
        sigma_d: 2.0,
        p_mean: -0.4,
        p_std: 1.4,
        tangent_c: 0.1,
        warmup_steps: 0,
        adaptive: false,
        teacher: Some(teacher.clone()),
        teacher_guidance: 2.0,
    };
    scd.validate().unwrap();
    // The toy teacher has no classes, so it cannot be guided.
    let err = scd.objective().err().expect("an unconditional teacher");
    assert!(err.to_string().contains("null class"), "{err}");
    if let LossConfig::Scm {
        teacher_guidance, ..
    } = &mut scd.loss
    {
        *teacher_guidance = 1.0;
    }
    let obj = scd.objective().unwrap();
    assert!(obj.name().starts_with("scm(distillation"), "{}", obj.name());
    // Sampling never needs the teacher: without it the objective trains and reads alike.
    let plain = scd.without_teacher();
    let sct = plain.objective().unwrap();
    assert!(sct.name().starts_with("scm(training"), "{}", sct.name());
    assert_eq!(sct.parameterization(), obj.parameterization());
    assert_eq!(sct.schedule().name(), TrigFlow::new(2.0).unwrap().name());

    let text = format!(
        "{}\n[loss]\nkind = \"progressive\"\nteacher = {:?}\nsteps = 2\n",
        tiny(10).to_toml().unwrap().split("[loss]").next().unwrap(),
        teacher.to_str().unwrap()
    );
    // `tiny`'s sections after [loss] are dropped by the split; defaults fill them.
    let pd = TrainConfig::from_toml_str(&text).unwrap();
    let obj = pd.objective().unwrap();
    assert!(
        obj.name().starts_with("progressive-distillation(2"),
        "{}",
        obj.name()
    );
    assert_eq!(obj.parameterization(), Parameterization::Raw(Output::V));
    let (param, schedule) = pd.reading().unwrap();
    assert_eq!(param, obj.parameterization());
    assert_eq!(schedule.name(), obj.schedule().name());
    let dsm = pd.without_teacher().objective().unwrap();
    assert_eq!(dsm.parameterization(), obj.parameterization());
    assert_eq!(dsm.schedule().name(), obj.schedule().name());

    // The next round's teacher is this student, read without its own teacher.
    let round1 = dir.path().join("round1");
    let mut r1 = pd.clone();
    r1.train.steps = 3;
    run_folder(&r1, &round1);
    std::fs::rename(&teacher, dir.path().join("moved")).unwrap();
    let next = load_teacher(&round1, Device::Cpu).unwrap();
    assert_eq!(next.parameterization(), Parameterization::Raw(Output::V));
    assert_eq!(next.schedule().name(), VpCosine::default().name());
    // ... while the moved teacher is now an error naming the folder, raised when the
    // objective is built, not when the configuration is checked.
    pd.validate().unwrap();
    let err = pd.objective().err().expect("the teacher was moved");
    assert!(
        matches!(&err, ModelError::Config(m) if m.contains("teacher") && m.contains(RUN_CONFIG)),
        "{err}"
    );
    assert!(err.to_string().contains(teacher.to_str().unwrap()), "{err}");
}

#[test]
fn broken_run_folders_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut cfg = tiny(5);
    cfg.sample.ema = Some(0.9);
    run_folder(&cfg, &run);

    // Missing weights of the sampled EMA.
    std::fs::remove_file(run.join("ema_0.9.safetensors")).unwrap();
    let err = load_teacher(&run, Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, ModelError::Checkpoint { path, .. } if path.ends_with("ema_0.9.safetensors")),
        "{err}"
    );
    // Truncated weights.
    let bytes = std::fs::read(run.join("ema_0.99.safetensors")).unwrap();
    std::fs::write(run.join("ema_0.9.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let err = load_teacher(&run, Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::Checkpoint { .. }), "{err}");
    // Weights of another network.
    let mut wide = tiny(1);
    if let Some(m) = wide.model.mlp_mut() {
        m.hidden = 24;
    }
    let other = dir.path().join("other");
    run_folder(&wide, &other);
    std::fs::copy(
        other.join("ema_0.9.safetensors"),
        run.join("ema_0.9.safetensors"),
    )
    .unwrap();
    let err = load_teacher(&run, Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, ModelError::Checkpoint { reason, .. } if reason.contains("does not fit")),
        "{err}"
    );
    // A corrupt configuration names its file.
    std::fs::write(run.join(RUN_CONFIG), "seed = \"zero\"\n").unwrap();
    let err = load_teacher(&run, Device::Cpu).unwrap_err();
    assert!(err.to_string().contains(RUN_CONFIG), "{err}");
    // Not a run folder at all.
    let err = load_teacher(&dir.path().join("nothing"), Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, ModelError::Config(m) if m.contains("nothing")),
        "{err}"
    );
    // A learned-variance run cannot teach.
    let mut iddpm = tiny(1);
    iddpm.loss = LossConfig::Iddpm {
        schedule: "ddpm-cosine".into(),
        lambda: 0.001,
        decoder: diffusion_models::losses::Decoder::Gaussian,
        variance: diffusion_models::losses::Variance::Learned,
    };
    if let Some(m) = iddpm.model.mlp_mut() {
        m.out_dim = Some(4);
    }
    let iddpm_run = dir.path().join("iddpm");
    std::fs::create_dir_all(&iddpm_run).unwrap();
    std::fs::write(iddpm_run.join(RUN_CONFIG), iddpm.to_toml().unwrap()).unwrap();
    let err = load_teacher(&iddpm_run, Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, ModelError::Config(m) if m.contains("improved-DDPM")),
        "{err}"
    );
}

/// Image runs: the teacher scales each row by its own SNR-matched factor (one call on a batch at
/// three times = three calls on one image each), and U-Net students of an image teacher train
/// under both distillation objectives.
#[test]
fn image_runs_teach_row_by_row() {
    tch::manual_seed(1);
    let data = fmnist_shaped_dir();
    let dir = tempfile::tempdir().unwrap();
    let teacher_dir = dir.path().join("teacher");
    let rest =
        "[train]\nsteps = 2\nbatch_size = 2\nema_decays = [0.9]\n[sample]\nn = 2\nsteps = 2\n";
    run_folder(
        &fixture_unet_config("unet_autocast", data.path(), rest),
        &teacher_dir,
    );
    let teacher = load_teacher(&teacher_dir, Device::Cpu).unwrap();
    let vp = VpCosine::default();
    let x = Tensor::randn([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    let s = [0.1, 0.5, 0.9];
    let batch = teacher.x0(&vp, &x, &s, None).unwrap();
    assert_eq!(batch.size(), [3, 1, 28, 28]);
    for (i, &si) in s.iter().enumerate() {
        let one = teacher
            .x0(&vp, &x.narrow(0, i as i64, 1), &[si], None)
            .unwrap();
        let d = relative_distance([(&batch.narrow(0, i as i64, 1), &one)]);
        assert!(d < 1e-5, "row {i}: {d:e}");
    }
    let err = teacher.x0(&vp, &x, &s[..2], None).unwrap_err();
    assert!(matches!(err, ModelError::Shape { .. }), "{err}");

    let run = teacher_dir.to_str().unwrap();
    for loss in [
        format!("[loss]\nkind = \"progressive\"\nteacher = {run:?}\nsteps = 2\n"),
        format!("[loss]\nkind = \"scm\"\nteacher = {run:?}\nwarmup_steps = 1\n"),
    ] {
        let cfg = with_loss(
            &fixture_unet_config("unet_autocast", data.path(), rest),
            &loss,
        );
        let mut trainer = Trainer::new(cfg).unwrap();
        let stats = trainer.train_steps(2).unwrap();
        assert!(
            stats.iter().all(|s| s.loss.is_finite()),
            "{loss}: {stats:?}"
        );
    }
}

/// A class-conditional teacher guided with scale `s` answers `x0_u + s (x0_c - x0_u)` for
/// labelled batches (the null class gives `x0_u`), the plain conditional model at `s = 1`, and
/// the configurations carry the scale to the teacher.
#[test]
fn guided_teachers_combine_conditional_and_null_class_answers() {
    tch::manual_seed(2);
    let data = fmnist_shaped_dir();
    let dir = tempfile::tempdir().unwrap();
    let rest =
        "[train]\nsteps = 3\nbatch_size = 2\nema_decays = [0.9]\n[sample]\nn = 2\nsteps = 2\n";
    let mut table: toml::Table = toml::from_str(
        &fixture_unet_config("unet_autocast", data.path(), rest)
            .to_toml()
            .unwrap(),
    )
    .unwrap();
    table["model"]
        .as_table_mut()
        .unwrap()
        .insert("num_classes".into(), 10.into());
    table["data"]["fmnist"]
        .as_table_mut()
        .unwrap()
        .insert("classes".into(), true.into());
    let cfg = TrainConfig::from_toml_str(&toml::to_string(&table).unwrap()).unwrap();
    let run = dir.path().join("teacher");
    run_folder(&cfg, &run);
    // Three updates barely move the zero-initialized output convolutions: perturb every weight
    // so that the class embedding shows in the output.
    let ema = run.join("ema_0.9.safetensors");
    let named: Vec<(String, Tensor)> = load_weights(&ema)
        .unwrap()
        .into_iter()
        .map(|(n, t)| {
            let r = &t + t.randn_like() * 0.05;
            (n, r)
        })
        .collect();
    save_weights(&ema, &named).unwrap();
    let plain = load_teacher(&run, Device::Cpu).unwrap();
    let guided = load_teacher(&run, Device::Cpu)
        .unwrap()
        .with_guidance(2.5)
        .unwrap();
    assert_eq!(guided.guidance(), 2.5);
    let vp = VpCosine::default();
    let x = Tensor::randn([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    let s = [0.2, 0.5, 0.8];
    let class = Tensor::from_slice(&[1i64, 7, 3]);
    let null = class.full_like(10);
    let c = plain.x0(&vp, &x, &s, Some(&class)).unwrap();
    let u = plain.x0(&vp, &x, &s, Some(&null)).unwrap();
    assert!(
        relative_distance([(&c, &u)]) > 1e-4,
        "the classes must matter"
    );
    let want = &u + (&c - &u) * 2.5;
    let got = guided.x0(&vp, &x, &s, Some(&class)).unwrap();
    let d = relative_distance([(&got, &want)]);
    assert!(d < 1e-6, "guided teacher: {d:e}");
    // Null-class rows stay unconditional; unlabelled batches are not guided.
    let got_u = guided.x0(&vp, &x, &s, Some(&null)).unwrap();
    assert!(relative_distance([(&got_u, &u)]) < 1e-6);
    let unlabelled = guided.x0(&vp, &x, &s, None).unwrap();
    let plain_unlabelled = plain.x0(&vp, &x, &s, None).unwrap();
    assert!(relative_distance([(&unlabelled, &plain_unlabelled)]) < 1e-6);
    assert!(load_teacher(&run, Device::Cpu)
        .unwrap()
        .with_guidance(f64::NAN)
        .is_err());

    // Through a configuration: a progressive student of the guided teacher trains, and its run
    // samples without the teacher (and without its guidance key).
    let student = with_loss(
        &cfg,
        &format!(
            "[loss]\nkind = \"progressive\"\nteacher = {:?}\nsteps = 2\nteacher_guidance = 2.5\n",
            run.to_str().unwrap()
        ),
    );
    assert_eq!(student.teacher_guidance(), 2.5);
    let mut t = Trainer::new(student.clone()).unwrap();
    assert!(t.train_steps(2).unwrap().iter().all(|s| s.loss.is_finite()));
    let plain_cfg = student.without_teacher();
    assert_eq!(plain_cfg.teacher_guidance(), 1.0);
    plain_cfg.validate().unwrap();
}
