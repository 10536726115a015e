//! ComfyUI's `res_multistep` against the exact Gaussian PF-ODE: order 2 on every schedule, its
//! first step is the closed-form Euler step, and its second step is ComfyUI's formula written
//! with `c2`, `b1`, `b2`.

mod common;

use common::{fitted_slope, init, ode_error, rms_diff, run, target};
use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::{GaussianMixture, IndependentIncrements, NoiseSchedule, TimeGrid};
use diffusion_solvers::ode::{DpmSolverPp2M, ResMultistep};
use diffusion_solvers::{Cache, Solver, Step};
use ndarray::Array2;

#[test]
fn it_converges_with_order_two() {
    let vp = VpLinear::default();
    let edm = Edm::default();
    let cases: [(&dyn NoiseSchedule, f64, f64); 2] = [(&vp, 1.0, 1e-3), (&edm, 80.0, 0.01)];
    let ns = [16, 32, 64, 128];
    for (sch, t0, t1) in cases {
        let errs: Vec<f64> = ns
            .iter()
            .map(|&n| ode_error(&ResMultistep, sch, t0, t1, n))
            .collect();
        let slope = fitted_slope(&ns, &errs);
        let errs_2m: Vec<f64> = ns
            .iter()
            .map(|&n| ode_error(&DpmSolverPp2M, sch, t0, t1, n))
            .collect();
        eprintln!(
            "res-multistep on {}: errors {errs:?}, slope {slope:.3} (dpmpp-2m {errs_2m:?})",
            sch.name()
        );
        assert!((slope - 2.0).abs() <= 0.3, "{}: slope {slope}", sch.name());
        assert!(errs[3] < 0.01, "{errs:?}");
    }
}

#[test]
fn first_step_is_euler_and_second_step_is_comfyuis_formula() {
    let vp = VpLinear::default();
    let gmm = GaussianMixture::from_gaussian(target());
    let den = gmm.denoiser(&vp);
    let times = [0.9, 0.6, 0.35];
    let x0 = init(8, 2, &vp, times[0]);
    let mut cache = Cache::new();
    let mut noise = IndependentIncrements::seeded(0);
    let step = |i: usize| Step {
        model: &den,
        schedule: &vp,
        t0: times[i],
        t1: times[i + 1],
        index: i,
        n_steps: 2,
    };
    let x1 = ResMultistep
        .step(&step(0), x0.clone(), &mut cache, &mut noise)
        .unwrap();
    // k-diffusion's variables: x_k = x / alpha, sigma_k = sigma / alpha.
    let sk = |t: f64| vp.noise_ratio(t);
    let (a0, a1, a2) = (vp.alpha(times[0]), vp.alpha(times[1]), vp.alpha(times[2]));
    let e0 = step(0).eval(&x0, times[0]).unwrap();
    let xk0 = x0.mapv(|v| v / a0);
    // Euler: x + (sigma_next - sigma) (x - denoised) / sigma.
    let d0 = (&xk0 - &e0.x0) / sk(times[0]);
    let euler = (&xk0 + &(d0 * (sk(times[1]) - sk(times[0])))).mapv(|v| v * a1);
    assert!(rms_diff(&x1, &euler) < 1e-13, "{}", rms_diff(&x1, &euler));
    // Second step, literally as sample_res_multistep (eta = 0, so old_sigma_down = sigma).
    let x2 = ResMultistep
        .step(&step(1), x1.clone(), &mut cache, &mut noise)
        .unwrap();
    let e1 = step(1).eval(&x1, times[1]).unwrap();
    let t_fn = |s: f64| -s.ln();
    let (t, t_old, t_next, t_prev) = (
        t_fn(sk(times[1])),
        t_fn(sk(times[1])),
        t_fn(sk(times[2])),
        t_fn(sk(times[0])),
    );
    let h = t_next - t;
    let c2 = (t_prev - t_old) / h;
    let phi1 = |v: f64| v.exp_m1() / v;
    let phi2 = |v: f64| (phi1(v) - 1.0) / v;
    let (b1, b2) = (phi1(-h) - phi2(-h) / c2, phi2(-h) / c2);
    let xk1 = x1.mapv(|v| v / a1);
    let comfy = (&xk1 * (-h).exp() + &((&e1.x0 * b1 + &e0.x0 * b2) * h)).mapv(|v| v * a2);
    assert!(rms_diff(&x2, &comfy) < 1e-13, "{}", rms_diff(&x2, &comfy));
    // It is not DPM-Solver++(2M) (whose last weight is only an approximation of phi_2).
    let grid = TimeGrid::new(times.to_vec()).unwrap();
    let a = run(
        &ResMultistep,
        &vp,
        &grid,
        x0.clone(),
        &mut IndependentIncrements::seeded(0),
    );
    let b: Array2<f64> = run(
        &DpmSolverPp2M,
        &vp,
        &grid,
        x0,
        &mut IndependentIncrements::seeded(0),
    );
    assert!(rms_diff(&a, &b) > 1e-6);
}
