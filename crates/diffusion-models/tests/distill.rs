//! Progressive distillation (Salimans & Ho 2022, Alg. 2): with the exact mixture denoiser as the
//! teacher, one student DDIM step with the distillation target lands exactly where two teacher
//! DDIM steps land (checked against the `ddim` solver on the analytic denoiser, in f64).

use diffusion_core::schedule::VpLinear;
use diffusion_core::{GaussianMixture, HostNoise, NoiseSchedule, TimeGrid};
use diffusion_models::losses::{ProgressiveDistillation, Teacher};
use diffusion_models::{GmmNet, Output, Parameterization};
use diffusion_solvers::{registry, sample, NoObserver};
use ndarray::Array2;
use tch::{Device, Kind, Tensor};

fn mixture() -> GaussianMixture {
    GaussianMixture::new(
        vec![0.4, 0.6],
        vec![vec![-1.0, 0.5], vec![1.2, -0.3]],
        vec![
            vec![vec![0.05, 0.01], vec![0.01, 0.08]],
            vec![vec![0.1, -0.02], vec![-0.02, 0.04]],
        ],
    )
    .unwrap()
}

fn distiller(steps: usize) -> ProgressiveDistillation {
    let teacher = Teacher::new(
        Box::new(
            GmmNet::new(
                &mixture(),
                Box::new(VpLinear::default()),
                Output::Epsilon,
                Device::Cpu,
            )
            .unwrap(),
        ),
        Parameterization::Raw(Output::Epsilon),
        Box::new(VpLinear::default()),
    );
    ProgressiveDistillation::new(
        teacher,
        Box::new(VpLinear::default()),
        Output::V,
        steps,
        1.0,
        1e-3,
    )
    .unwrap()
}

#[test]
fn one_student_step_to_the_target_equals_two_exact_teacher_ddim_steps() {
    let sch = VpLinear::default();
    let mix = mixture();
    let pd = distiller(4);
    let grid = pd.grid();
    assert_eq!(grid.len(), 5);
    assert!((grid[0] - 1.0).abs() < 1e-15 && (grid[4] - 1e-3).abs() < 1e-15);
    let n = 64usize;
    let mut noise = HostNoise::new(4);
    let ddim = registry::build::<Array2<f64>>("ddim").unwrap();
    let den = mix.denoiser(&sch);
    for i in 1..=4usize {
        let t = grid[4 - i];
        let t1 = 1e-3 + (1.0 - 1e-3) * (i as f64 - 0.5) / 4.0;
        let t2 = grid[5 - i];
        let z: Vec<f64> = noise
            .normals(2 * n)
            .iter()
            .map(|v| v * sch.sigma(t) + 0.3 * sch.alpha(t))
            .collect();
        let zt = Tensor::from_slice(&z).reshape([n as i64, 2]);
        let target = pd.target(&zt, &vec![i; n], None).unwrap();
        let (a, s, a2, s2) = (sch.alpha(t), sch.sigma(t), sch.alpha(t2), sch.sigma(t2));
        let student_step = &target * a2 + (&zt - &target * a) * (s2 / s);
        let two = TimeGrid::new(vec![t, t1, t2]).unwrap();
        let mut path = diffusion_core::IndependentIncrements::seeded(0);
        let want = sample(
            ddim.as_ref(),
            &den,
            &sch,
            &two,
            Array2::from_shape_vec((n, 2), z.clone()).unwrap(),
            &mut path,
            &mut NoObserver,
        )
        .unwrap();
        let got: Vec<f64> =
            Vec::try_from(student_step.to_kind(Kind::Double).reshape([-1])).unwrap();
        let err = got
            .iter()
            .zip(want.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-9, "step {i}: {err}");
        // The target is not the teacher's own one-step x0 (two steps differ from one).
        let x0 = mix
            .denoise_t(&sch, t, &Array2::from_shape_vec((n, 2), z).unwrap().view())
            .unwrap();
        let tv: Vec<f64> = Vec::try_from(target.reshape([-1])).unwrap();
        let diff = tv
            .iter()
            .zip(x0.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            diff > 1e-3,
            "step {i}: target equals the one-step x0 ({diff})"
        );
    }
    assert!(pd
        .target(
            &Tensor::zeros([2, 2], (Kind::Double, Device::Cpu)),
            &[0, 1],
            None
        )
        .is_err());
}

#[test]
fn the_teacher_itself_is_not_a_two_step_student() {
    // The loss reads the student's v through the schedule; the teacher's own one-step x0 is not
    // the two-step target, so the teacher as a student has a positive loss.
    let pd = distiller(2);
    let teacher = GmmNet::new(
        &mixture(),
        Box::new(VpLinear::default()),
        Output::V,
        Device::Cpu,
    )
    .unwrap();
    let n = 128;
    let mut noise = HostNoise::new(9);
    let x0 = mixture().sample(n, &mut noise);
    let x0 = Tensor::from_slice(x0.as_slice().unwrap()).reshape([n as i64, 2]);
    let eps = Tensor::from_slice(&noise.normals(2 * n)).reshape([n as i64, 2]);
    let i: Vec<usize> = (0..n).map(|k| 1 + k % 2).collect();
    let l = pd.per_sample(&teacher, &x0, &i, &eps, None).unwrap();
    assert!(l.mean(Kind::Double).double_value(&[]) > 1e-6);
}
