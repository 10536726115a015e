//! The reversible Heun method against the Gaussian target: generating and then inverting along
//! the same Brownian tree returns the initial noise up to rounding, the method converges
//! strongly with order 1 on the reverse SDE (order 2 on the PF-ODE), and it reaches the target
//! law.

mod common;

use common::{fitted_slope, init, law_w2, ode_error, rms_diff, target};
use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::{
    BrownianTree, Counted, GaussianMixture, IndependentIncrements, NoiseSchedule, State, TimeGrid,
};
use diffusion_solvers::sde::{EulerMaruyama, ReversibleHeun};
use diffusion_solvers::{registry, sample, NoObserver, Solver};
use ndarray::Array2;

fn schedules() -> [(Box<dyn NoiseSchedule>, f64); 2] {
    [
        (Box::new(VpLinear::default()), 1.0),
        (Box::new(Edm::default()), 80.0),
    ]
}

#[test]
fn generate_then_invert_returns_the_initial_noise() {
    for (sch, t_max) in schedules() {
        let sch = sch.as_ref();
        let gmm = GaussianMixture::from_gaussian(target());
        let den = gmm.denoiser(sch);
        let counted = Counted::new(&den);
        let grid = TimeGrid::karras(sch, 0.002, sch.noise_ratio(t_max), 7.0, 200, false).unwrap();
        let (lo, hi) = (*grid.times().last().unwrap(), grid.times()[0]);
        let x = init(256, 4, sch, t_max);
        for eta in [1.0, 0.5, 0.0] {
            let rh = ReversibleHeun::new(eta, 1.0).unwrap();
            let mut tree = BrownianTree::new(11, lo, hi, 1e-9).unwrap();
            let end = rh
                .generate(&counted, sch, &grid, x.clone(), &mut tree)
                .unwrap();
            let back = rh.invert(&counted, sch, &grid, end, &mut tree).unwrap();
            let rel = rms_diff(&back.x, &x) / x.rms();
            let rel_hat = rms_diff(&back.x_hat, &x) / x.rms();
            eprintln!(
                "{} eta {eta}: relative round-trip error {rel:.2e} (x_hat {rel_hat:.2e})",
                sch.name()
            );
            assert!(rel < 1e-10, "{} eta {eta}: {rel:e}", sch.name());
            assert_eq!(back.t, hi);
        }
        // One evaluation per step either way, plus one at the start.
        assert_eq!(counted.calls(), 3 * (1 + 2 * 200));
    }
}

#[test]
fn it_converges_strongly_with_order_one_along_a_brownian_tree() {
    // Measured on log-SNR-uniform grids against the 8192-step solution: errors 5.2e-3, 2.5e-3,
    // 1.2e-3, 6.8e-4 at 128 to 1024 steps (slope 1.0); on uniform grids in t the order-2 drift
    // error dominates below 1000 steps (slope 1.5 on 64..512), then slope 1.
    let vp = VpLinear::default();
    let gmm = GaussianMixture::from_gaussian(target());
    let den = gmm.denoiser(&vp);
    let (t0, t1) = (1.0, 1e-2);
    let x = init(128, 9, &vp, t0);
    let run = |solver: &dyn Solver<Array2<f64>>, grid: &TimeGrid| {
        let mut tree = BrownianTree::new(77, t1, t0, 1e-7).unwrap();
        sample(
            solver,
            &den,
            &vp,
            grid,
            x.clone(),
            &mut tree,
            &mut NoObserver,
        )
        .unwrap()
    };
    let rh = ReversibleHeun::default();
    let grid = |n| TimeGrid::log_snr_uniform(&vp, t0, t1, n).unwrap();
    let reference = run(&rh, &grid(8192));
    let ns = [128, 256, 512, 1024];
    let errs: Vec<f64> = ns
        .iter()
        .map(|&n| rms_diff(&run(&rh, &grid(n)), &reference))
        .collect();
    let slope = fitted_slope(&ns, &errs);
    // The path it converges to is Euler-Maruyama's (whose own error at 4096 steps is 5e-4).
    let em = run(&EulerMaruyama, &TimeGrid::uniform(t0, t1, 4096).unwrap());
    let to_em = rms_diff(&em, &reference);
    eprintln!(
        "reversible heun strong errors {errs:?}, slope {slope:.3}; reference vs EM {to_em:.2e}"
    );
    assert!(
        (slope - 1.0).abs() <= 0.25,
        "slope {slope}, errors {errs:?}"
    );
    assert!(to_em < 1.5e-3 && to_em < 3.0 * errs[3], "{to_em}");
}

#[test]
fn on_the_pf_ode_it_is_second_order() {
    let rh = ReversibleHeun::ode();
    assert_eq!(Solver::<Array2<f64>>::order(&rh), 2.0);
    for (sch, t_max) in schedules() {
        let t_min = if t_max > 1.0 { 0.01 } else { 1e-3 };
        let ns = [16, 32, 64, 128];
        let errs: Vec<f64> = ns
            .iter()
            .map(|&n| ode_error(&rh, sch.as_ref(), t_max, t_min, n))
            .collect();
        let slope = fitted_slope(&ns, &errs);
        eprintln!(
            "reversible heun ODE on {}: errors {errs:?}, slope {slope:.3}",
            sch.name()
        );
        assert!((slope - 2.0).abs() <= 0.3, "{}: slope {slope}", sch.name());
    }
}

#[test]
fn it_reaches_the_target_law_and_the_grid_solver_is_generate() {
    // Measured W2 on VP Karras grids at 25 / 50 / 100 / 200 steps: reverse SDE 0.100 / 0.028 /
    // 0.012 / 0.0044 (Euler-Maruyama: 0.087 / 0.043 / 0.016 / 0.014), PF-ODE 0.030 / 0.0096 /
    // 0.0066 / 0.0064 (Heun: 0.026 / 0.0087 / 0.0066 / 0.0064). Sampling noise is about 0.006.
    let vp = VpLinear::default();
    let karras = |n| TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, n, true).unwrap();
    let sde = registry::build::<Array2<f64>>("reversible-heun").unwrap();
    let w = law_w2(sde.as_ref(), &vp, &karras(200), 20_000, 3);
    let ode = registry::build::<Array2<f64>>("reversible-heun:eta=0").unwrap();
    let w_ode = law_w2(ode.as_ref(), &vp, &karras(50), 20_000, 3);
    eprintln!("W2: reverse SDE (200 steps) {w:.4}, PF-ODE (50 steps) {w_ode:.4}");
    assert!(w < 0.02 && w_ode < 0.02, "{w} {w_ode}");
    // As a grid solver (auxiliary state in the cache) it reproduces `generate`.
    let gmm = GaussianMixture::from_gaussian(target());
    let den = gmm.denoiser(&vp);
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 30, false).unwrap();
    let x = init(8, 1, &vp, 1.0);
    let rh = ReversibleHeun::default();
    let tree = || BrownianTree::new(3, 0.0, 1.0, 1e-9).unwrap();
    let a = sample(
        &rh,
        &den,
        &vp,
        &grid,
        x.clone(),
        &mut tree(),
        &mut NoObserver,
    )
    .unwrap();
    let b = rh
        .generate(&den, &vp, &grid, x.clone(), &mut tree())
        .unwrap();
    assert_eq!(a, b.x);
    // A state that is not at the grid's end, and a grid reaching sigma = 0, are errors.
    let e = rh
        .invert(&den, &vp, &karras(10), b, &mut tree())
        .unwrap_err()
        .to_string();
    assert!(e.contains("grid ends"), "{e}");
    let e = rh
        .generate(
            &den,
            &vp,
            &karras(10),
            x.clone(),
            &mut IndependentIncrements::seeded(0),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("sigma > 0"), "{e}");
    assert!(registry::build::<Array2<f64>>("reversible-heun:eta=-1").is_err());
}
