//! The SDE solvers reach the Gaussian target law with the opt-in `FastNoise` stream
//! (`IndependentIncrements::new(FastNoise::new(seed))`), as they do with `HostNoise` in
//! gaussian_oracle.rs, with independent increments and on a Brownian tree with FastNoise nodes.

mod common;

use common::{fitted_w2, init, run};
use diffusion_core::schedule::VpLinear;
use diffusion_core::{
    BrownianTree, FastNoise, IndependentIncrements, NoiseSchedule, NoiseSource, TimeGrid, TreeNoise,
};
use diffusion_solvers::registry;
use ndarray::Array2;

/// FastNoise with every number scaled by `c` (a deliberately wrong noise law).
struct Scaled(FastNoise, f64);

impl NoiseSource<Array2<f64>> for Scaled {
    fn standard_normal(&mut self, like: &Array2<f64>) -> Array2<f64> {
        let z: Array2<f64> = self.0.standard_normal(like);
        z * self.1
    }
}

#[test]
fn sde_solvers_reach_the_target_law_with_fast_noise() {
    // Same setting and threshold as gaussian_oracle.rs: 20k exact samples at t = 1 (VP-linear),
    // 200 Karras steps, W2 of the fitted Gaussian to the target < 0.05 (sampling error ~0.01).
    let vp = VpLinear::default();
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 200, true).unwrap();
    let n = 20_000;
    for name in [
        "euler-maruyama",
        "euler-ancestral",
        "dpmpp-2m-sde",
        "dpmpp-3m-sde",
        "er-sde",
    ] {
        let s = registry::build::<Array2<f64>>(name).unwrap();
        let x = init(n, 3, &vp, grid.times()[0]);
        let w = fitted_w2(&run(
            s.as_ref(),
            &vp,
            &grid,
            x.clone(),
            &mut IndependentIncrements::new(FastNoise::new(103)),
        ));
        assert!(w < 0.05, "{name}: W2 to the target {w} with FastNoise");
        if !matches!(name, "euler-maruyama" | "dpmpp-2m-sde") {
            continue;
        }
        // The same check rejects noise 30% too large (W2 0.24 / 0.23).
        let bad = fitted_w2(&run(
            s.as_ref(),
            &vp,
            &grid,
            x,
            &mut IndependentIncrements::new(Scaled(FastNoise::new(103), 1.3)),
        ));
        eprintln!("{name}: W2 {w:.4} (FastNoise), {bad:.4} (noise x1.3)");
        assert!(
            bad > 0.05,
            "{name}: wrong noise scale not detected, W2 {bad}"
        );
    }
}

#[test]
fn sde_solvers_reach_the_target_law_on_a_fast_brownian_tree() {
    // As above, along a virtual Brownian tree whose node normals come from FastNoise streams.
    let vp = VpLinear::default();
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 200, true).unwrap();
    let n = 20_000;
    for name in ["dpmpp-2m-sde", "dpmpp-sde"] {
        let s = registry::build::<Array2<f64>>(name).unwrap();
        let x = init(n, 3, &vp, grid.times()[0]);
        let mut tree = BrownianTree::with_default_tol(11, 0.0, grid.times()[0])
            .unwrap()
            .with_noise(TreeNoise::Fast);
        let w = fitted_w2(&run(s.as_ref(), &vp, &grid, x, &mut tree));
        eprintln!("{name}: W2 {w:.4} (fast tree)");
        assert!(w < 0.05, "{name}: W2 to the target {w} on the fast tree");
    }
}
