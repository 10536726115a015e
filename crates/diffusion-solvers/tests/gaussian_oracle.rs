//! Every solver against the exact Gaussian target: deterministic solvers converge to the
//! closed-form PF-ODE solution at their declared order; stochastic ones reach the target law and
//! converge strongly along a Brownian tree.

use diffusion_core::metrics::gaussian_w2;
use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::{
    BrownianTree, Gaussian, GaussianMixture, HostNoise, IndependentIncrements, NoiseSchedule,
    Prediction, State, TimeGrid,
};
use diffusion_solvers::ode::{Ddim, DpmSolverPp2M, Euler, Heun};
use diffusion_solvers::sde::EulerMaruyama;
use diffusion_solvers::{registry, sample, NoObserver, Solver, SolverError};
use ndarray::Array2;

fn target() -> Gaussian {
    Gaussian::new(vec![1.5, -0.5], vec![vec![0.4, 0.15], vec![0.15, 0.2]]).unwrap()
}

fn init(n: usize, seed: u64, schedule: &dyn NoiseSchedule, t: f64) -> Array2<f64> {
    // Exact marginal at t: start on the true trajectory's law.
    let m = target().marginal(schedule, t);
    m.sample(n, &mut HostNoise::new(seed))
}

fn rms_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.lincomb(1.0, b, -1.0).rms()
}

/// Error of `solver` against the exact flow with `steps` log-SNR-uniform steps from t=1 to 1e-3.
fn ode_error(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    t0: f64,
    t1: f64,
    steps: usize,
) -> f64 {
    let g = target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(schedule);
    let x = init(64, 1, schedule, t0);
    let grid = TimeGrid::log_snr_uniform(schedule, t0, t1, steps).unwrap();
    let mut noise = IndependentIncrements::seeded(0);
    let out = sample(
        solver,
        &den,
        schedule,
        &grid,
        x.clone(),
        &mut noise,
        &mut NoObserver,
    )
    .unwrap();
    let exact = g.pf_ode_flow(schedule, t0, t1, &x.view()).unwrap();
    rms_diff(&out, &exact)
}

fn fitted_slope(ns: &[usize], errs: &[f64]) -> f64 {
    let xs: Vec<f64> = ns.iter().map(|&n| (n as f64).ln()).collect();
    let ys: Vec<f64> = errs.iter().map(|e| e.ln()).collect();
    let (mx, my) = (
        xs.iter().sum::<f64>() / xs.len() as f64,
        ys.iter().sum::<f64>() / ys.len() as f64,
    );
    let num: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    -num / den
}

#[test]
fn deterministic_solvers_converge_at_their_declared_order() {
    let vp = VpLinear::default();
    let edm = Edm::default();
    let solvers: Vec<Box<dyn Solver<Array2<f64>>>> = vec![
        Box::new(Euler),
        Box::new(Heun),
        Box::new(Ddim::new(0.0).unwrap()),
        Box::new(DpmSolverPp2M),
    ];
    let cases: [(&dyn NoiseSchedule, f64, f64); 2] = [(&vp, 1.0, 1e-3), (&edm, 80.0, 0.01)];
    let ns = [16, 32, 64, 128];
    for s in &solvers {
        for &(sch, t0, t1) in &cases {
            let errs: Vec<f64> = ns
                .iter()
                .map(|&n| ode_error(s.as_ref(), sch, t0, t1, n))
                .collect();
            let slope = fitted_slope(&ns, &errs);
            assert!(
                (slope - s.order()).abs() <= 0.3,
                "{} on {}: slope {slope:.3}, errors {errs:?}",
                s.name(),
                sch.name()
            );
            assert!(
                errs[3] < 0.05,
                "{} on {}: error {} at 64 steps",
                s.name(),
                sch.name(),
                errs[3]
            );
        }
    }
}

#[test]
fn a_wrong_sign_would_be_caught() {
    // A solver that moves along -eps instead of eps must fail the oracle badly.
    struct WrongSign;
    impl Solver<Array2<f64>> for WrongSign {
        fn name(&self) -> String {
            "wrong".into()
        }
        fn order(&self) -> f64 {
            1.0
        }
        fn step(
            &self,
            step: &diffusion_solvers::Step<'_, Array2<f64>>,
            x: Array2<f64>,
            _c: &mut diffusion_solvers::Cache<Array2<f64>>,
            _n: &mut dyn diffusion_core::BrownianPath<Array2<f64>>,
        ) -> diffusion_solvers::Result<Array2<f64>> {
            let e = step.eval(&x, step.t0)?;
            Ok(e.x0.lincomb(
                step.schedule.alpha(step.t1),
                &e.eps,
                -step.schedule.sigma(step.t1),
            ))
        }
    }
    let err = ode_error(&WrongSign, &VpLinear::default(), 1.0, 1e-3, 64);
    assert!(err > 0.5, "wrong-sign error only {err}");
}

#[test]
fn euler_equals_ddim_with_eta_zero() {
    let vp = VpLinear::default();
    let a = ode_error(&Euler, &vp, 1.0, 1e-3, 10);
    let b = ode_error(&Ddim::new(0.0).unwrap(), &vp, 1.0, 1e-3, 10);
    assert!((a - b).abs() < 1e-12, "{a} vs {b}");
}

fn law_w2(
    solver: &dyn Solver<Array2<f64>>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    n: usize,
    seed: u64,
) -> f64 {
    let g = target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(schedule);
    let t0 = grid.times()[0];
    let x = init(n, seed, schedule, t0);
    let mut noise = IndependentIncrements::seeded(seed + 100);
    let out = sample(solver, &den, schedule, grid, x, &mut noise, &mut NoObserver).unwrap();
    let mean: Vec<f64> = (0..2).map(|j| out.column(j).mean().unwrap()).collect();
    let cov: Vec<Vec<f64>> = (0..2)
        .map(|i| {
            (0..2)
                .map(|j| {
                    out.column(i)
                        .iter()
                        .zip(out.column(j))
                        .map(|(a, b)| (a - mean[i]) * (b - mean[j]))
                        .sum::<f64>()
                        / n as f64
                })
                .collect()
        })
        .collect();
    gaussian_w2(&Gaussian::new(mean, cov).unwrap(), &g)
}

#[test]
fn every_registered_solver_reaches_the_target_law_on_a_grid_ending_at_sigma_zero() {
    // 20k samples: the sampling error of the fitted Gaussian's W2 is about 0.01; the threshold
    // 0.05 leaves room for the 50-step discretization and cannot flake with fixed seeds.
    let vp = VpLinear::default();
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 50, true).unwrap();
    for info in registry::SOLVERS {
        let s = registry::build::<Array2<f64>>(info.name).unwrap();
        let w = law_w2(s.as_ref(), &vp, &grid, 20_000, 3);
        assert!(w < 0.05, "{}: W2 to the target {w}", info.name);
    }
    // eta = 1 (DDPM-like ancestral steps) converges in law more slowly: check the trend.
    let ddpm_like = Ddim::new(1.0).unwrap();
    let ws: Vec<f64> = [25, 100, 400]
        .iter()
        .map(|&n| {
            law_w2(
                &ddpm_like,
                &vp,
                &TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, n, true).unwrap(),
                20_000,
                4,
            )
        })
        .collect();
    eprintln!("ddim(eta=1) W2 at 25/100/400 steps: {ws:?}");
    assert!(ws[2] < 0.03 && ws[2] < ws[0], "ddim(eta=1): W2 {ws:?}");
}

#[test]
fn euler_maruyama_converges_strongly_along_a_brownian_tree() {
    let vp = VpLinear::default();
    let g = target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&vp);
    let (t0, t1) = (1.0, 1e-2);
    let x = init(256, 9, &vp, t0);
    let run = |steps: usize| {
        let grid = TimeGrid::uniform(t0, t1, steps).unwrap();
        let mut tree = BrownianTree::new(77, t1, t0, 1e-9).unwrap();
        sample(
            &EulerMaruyama,
            &den,
            &vp,
            &grid,
            x.clone(),
            &mut tree,
            &mut NoObserver,
        )
        .unwrap()
    };
    let reference = run(4096);
    let ns = [32, 64, 128, 256];
    let errs: Vec<f64> = ns.iter().map(|&n| rms_diff(&run(n), &reference)).collect();
    let slope = fitted_slope(&ns, &errs);
    assert!(
        (slope - 1.0).abs() <= 0.3,
        "strong order slope {slope}, errors {errs:?}"
    );
    // Independent noise per run would not converge: the error stays O(1).
    let grid = TimeGrid::uniform(t0, t1, 256).unwrap();
    let indep = sample(
        &EulerMaruyama,
        &den,
        &vp,
        &grid,
        x.clone(),
        &mut IndependentIncrements::seeded(5),
        &mut NoObserver,
    )
    .unwrap();
    assert!(rms_diff(&indep, &reference) > 10.0 * errs[3]);
}

#[test]
fn non_finite_states_are_errors_naming_the_step() {
    let vp = VpLinear::default();
    let grid = TimeGrid::uniform(1.0, 0.01, 5).unwrap();
    let bad = |x: &Array2<f64>, t: f64| -> diffusion_core::Result<Prediction<Array2<f64>>> {
        let v = if t < 0.5 { f64::NAN } else { 0.0 };
        Ok(Prediction::Epsilon(x.mapv(|_| v)))
    };
    let x = Array2::<f64>::zeros((3, 2));
    let err = sample(
        &Euler,
        &bad,
        &vp,
        &grid,
        x,
        &mut IndependentIncrements::seeded(0),
        &mut NoObserver,
    )
    .unwrap_err();
    match err {
        SolverError::Core(e) => assert!(e.to_string().contains("non-finite"), "{e}"),
        SolverError::NonFinite { step, .. } => assert!(step >= 2),
        other => panic!("unexpected error {other}"),
    }
    let out_of_range = TimeGrid::uniform(2.0, 0.0, 4).unwrap();
    let zero = Array2::<f64>::zeros((3, 2));
    assert!(sample(
        &Euler,
        &bad,
        &vp,
        &out_of_range,
        zero,
        &mut IndependentIncrements::seeded(0),
        &mut NoObserver
    )
    .is_err());
}
