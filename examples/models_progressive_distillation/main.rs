//! Progressive distillation (Salimans & Ho 2022, arXiv:2202.00512, Alg. 2): the teacher is the
//! exact denoiser of the eight-Gaussians mixture under the cosine schedule (`GmmNet`, sampled
//! with 8 DDIM steps from `t = 0.99` to `1e-3`); two halving rounds distil it into a 4-step and
//! then a 2-step v-prediction MLP (each round 350 updates; the second student starts from the
//! first), with the truncated-SNR weighting. Metric: sliced W2 of the 2-step student's DDIM
//! samples to fresh data; checks: below 80% of the teacher itself run with 2 DDIM steps; the
//! 8-step teacher is reported. Expected (seed 0, dev profile, 2 CPU cores): 2-step student 0.197
//! (bound 0.4), 4-step student 0.195, 2-step teacher 0.555, 8-step teacher 0.168 (the two-sample
//! floor of 2000 points is 0.185); about 5 s.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::VpCosine;
use diffusion::core::{TimeGrid, Toy2d};
use diffusion::models::losses::{ProgressiveDistillation, Teacher};
use diffusion::models::tch::Device;
use diffusion::models::{GmmNet, MlpConfig, Objective, Output, Parameterization, TimeNet};
use diffusion_examples::models::{fit, mlp, sample_net, swd, to_tensor, toy_samples, ModelArgs};
use diffusion_examples::Report;

const T_START: f64 = 0.99;
const T_END: f64 = 1e-3;

fn main() -> Result<()> {
    let a = ModelArgs::parse();
    let toy = Toy2d::EightGaussians;
    let mix = toy.as_mixture().expect("an analytic toy");
    let sch = VpCosine::default();
    let data = toy_samples(toy, a.n, 99);
    let exact = GmmNet::new(&mix, Box::new(sch), Output::Epsilon, Device::Cpu)?;
    let eps = Parameterization::Raw(Output::Epsilon);
    let ddim = |net: &dyn TimeNet, p: Parameterization, steps: usize| -> Result<f64> {
        let grid = TimeGrid::uniform(T_START, T_END, steps)?;
        swd(
            &sample_net(net, p, &sch, "ddim", &grid, a.n, a.seed, None)?,
            &data,
        )
    };
    let teacher8 = ddim(&exact, eps, 8)?;
    let teacher2 = ddim(&exact, eps, 2)?;
    let cfg = MlpConfig {
        hidden: 64,
        depth: 2,
        ..MlpConfig::default()
    };
    let mut teacher = Teacher::new(Box::new(exact), eps, Box::new(sch));
    let mut prev: Option<diffusion::models::tch::nn::VarStore> = None;
    let mut w = f64::NAN;
    let mut rounds = Vec::new();
    for steps in [4usize, 2] {
        let (mut vs, net) = mlp(&cfg, 1)?;
        if let Some(p) = &prev {
            vs.copy(p)?;
        }
        let pd =
            ProgressiveDistillation::new(teacher, Box::new(sch), Output::V, steps, T_START, T_END)?;
        let params = vs.trainable_variables();
        fit(&params, a.steps.min(350), 3e-3, 5, |_, noise| {
            let x0 = to_tensor(&toy.sample(256, noise));
            Ok(pd.loss(&net, &x0, None, noise)?)
        })?;
        let grid = TimeGrid::new(pd.grid())?;
        let x = sample_net(
            &net,
            Parameterization::Raw(Output::V),
            &sch,
            "ddim",
            &grid,
            a.n,
            a.seed,
            None,
        )?;
        w = swd(&x, &data)?;
        rounds.push(w);
        teacher = Teacher::new(
            Box::new(net),
            Parameterization::Raw(Output::V),
            Box::new(sch),
        );
        prev = Some(vs);
    }
    let mut r = Report::new("models_progressive_distillation", "sliced_w2", w, 2, 0.4);
    r.info("student4_sliced_w2", rounds[0])
        .info("teacher8_sliced_w2", teacher8)
        .check_max("ratio_to_teacher_2_steps", w / teacher2, 0.8)
        .info("teacher2_sliced_w2", teacher2);
    r.finish()
}
