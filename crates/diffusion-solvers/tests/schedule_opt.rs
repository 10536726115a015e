//! Schedule optimization on a 2-D Gaussian mixture with its exact denoiser: Align Your Steps
//! (KLUB minimization with early stopping) against the EDM rho = 7 grid, and GITS (dynamic
//! programming on pilot trajectories) against the EDM and uniform grids, at equal NFE.

use diffusion_core::metrics::sliced_w2;
use diffusion_core::schedule::Edm;
use diffusion_core::{
    GaussianMixture, HostNoise, IndependentIncrements, NoiseSchedule, State, TimeGrid,
};
use diffusion_solvers::ode::{Ddim, DpmSolverPp2M, Euler, Heun};
use diffusion_solvers::schedule_opt::{
    dp_schedule, gits_schedule, optimize_ays, refine_ays, AysOptions, Klub,
};
use diffusion_solvers::{sample, NoObserver, Solver};
use ndarray::Array2;

/// Five Gaussians (std 0.3) on a circle of radius 1.5.
fn target() -> GaussianMixture {
    GaussianMixture::ring(5, 1.5, 0.3).unwrap()
}

/// `n` draws of the EDM prior `N(0, 80^2 I)`.
fn prior(n: usize, seed: u64) -> Array2<f64> {
    Array2::<f64>::zeros((n, 2))
        .from_host_like(&HostNoise::new(seed).normals(2 * n))
        .scale(80.0)
}

fn run(
    solver: &dyn Solver<Array2<f64>>,
    g: &GaussianMixture,
    s: &dyn NoiseSchedule,
    grid: &TimeGrid,
    x: Array2<f64>,
    seed: u64,
) -> Array2<f64> {
    let den = g.denoiser(s);
    let mut noise = IndependentIncrements::seeded(seed);
    sample(solver, &den, s, grid, x, &mut noise, &mut NoObserver).unwrap()
}

/// 256 fresh prior draws and their PF-ODE solutions by 400 Heun steps.
struct OdeReference {
    x: Array2<f64>,
    exact: Array2<f64>,
}

impl OdeReference {
    fn new(g: &GaussianMixture, s: &dyn NoiseSchedule) -> Self {
        let x = prior(256, 5);
        let fine = TimeGrid::karras(s, 0.002, 80.0, 7.0, 400, true).unwrap();
        let exact = run(&Heun, g, s, &fine, x.clone(), 0);
        OdeReference { x, exact }
    }

    /// Root-mean-square distance of a solver's PF-ODE solution on `grid` to the reference.
    fn error(
        &self,
        solver: &dyn Solver<Array2<f64>>,
        g: &GaussianMixture,
        s: &dyn NoiseSchedule,
        grid: &TimeGrid,
    ) -> f64 {
        run(solver, g, s, grid, self.x.clone(), 0)
            .lincomb(1.0, &self.exact, -1.0)
            .rms()
    }
}

#[test]
fn ays_beats_the_edm_grid_at_ten_steps() {
    let g = target();
    let s = Edm::default();
    let den = g.denoiser(&s);
    let karras = TimeGrid::karras(&s, 0.002, 80.0, 7.0, 10, true).unwrap();
    let data = g.sample(64, &mut HostNoise::new(1));
    let stochastic_ddim = Ddim::new(1.0).unwrap();
    // Early-stopping proxy (Sec. 3.3 / App. B.1 of the paper): the sliced W2 of 1000 stochastic
    // DDIM samples to 1000 held-out data points, on seeds the evaluation below does not use.
    let held_out = g.sample(1000, &mut HostNoise::new(501));
    let mut proxy = |grid: &TimeGrid| {
        let out = run(&stochastic_ddim, &g, &s, grid, prior(1000, 601), 701);
        Ok(sliced_w2(&out.view(), &held_out.view(), 32, 5)?)
    };
    let opts = AysOptions {
        nodes: 4,
        ..AysOptions::default()
    };
    let res = optimize_ays(
        &den,
        &s,
        &data,
        &karras,
        &opts,
        &mut HostNoise::new(2),
        Some(&mut proxy),
    )
    .unwrap();
    let h = &res.history;
    // Measured: KLUB 71 -> 16 (selected at sweep 5), proxy 0.21 -> 0.13.
    assert!(res.selected > 0, "{h:?}");
    assert!(res.klub < 0.5 * h[0].klub, "{h:?}");
    assert!(h.windows(2).all(|w| w[1].klub <= w[0].klub), "{h:?}");
    assert_eq!(res.grid.steps(), 10);
    assert_eq!(res.grid.times()[0], karras.times()[0]);
    assert_eq!(res.grid.times()[9], karras.times()[9]);
    assert_eq!(res.grid.times()[10], 0.0);

    // The law of the sampler whose KLUB was minimized (stochastic DDIM), on fresh seeds:
    // measured sliced W2 ~0.22 (EDM) vs ~0.14 (AYS); two independent data samples of this size
    // are 0.056 apart.
    let big = g.sample(4000, &mut HostNoise::new(78));
    let law = |grid: &TimeGrid| -> f64 {
        (0..2)
            .map(|k| {
                let out = run(&stochastic_ddim, &g, &s, grid, prior(4000, 9 + k), 3 + k);
                sliced_w2(&out.view(), &big.view(), 64, 1).unwrap()
            })
            .sum::<f64>()
            / 2.0
    };
    let (w_edm, w_ays) = (law(&karras), law(&res.grid));
    assert!(
        w_ays < w_edm - 0.04,
        "sliced W2: AYS {w_ays} vs EDM {w_edm}"
    );
    // The schedule also helps deterministic solvers on the PF-ODE (measured Euler 0.18 -> 0.12,
    // DPM-Solver++(2M) 0.21 -> 0.07).
    let ode = OdeReference::new(&g, &s);
    let (e_edm, e_ays) = (
        ode.error(&Euler, &g, &s, &karras),
        ode.error(&Euler, &g, &s, &res.grid),
    );
    assert!(
        e_ays < 0.8 * e_edm,
        "Euler PF-ODE error: AYS {e_ays} vs EDM {e_edm}"
    );
    let (d_edm, d_ays) = (
        ode.error(&DpmSolverPp2M, &g, &s, &karras),
        ode.error(&DpmSolverPp2M, &g, &s, &res.grid),
    );
    assert!(
        d_ays < 0.6 * d_edm,
        "DPM-Solver++(2M): AYS {d_ays} vs EDM {d_edm}"
    );

    // Subdivision stage: 9 positive steps + the final one; the old levels stay.
    let opts = AysOptions {
        nodes: 4,
        max_sweeps: 3,
        ..AysOptions::default()
    };
    let (fine, klub_fine) =
        refine_ays(&den, &s, &data, &res.grid, &opts, &mut HostNoise::new(3)).unwrap();
    assert_eq!(fine.steps(), 19);
    for i in 0..10 {
        assert_eq!(fine.times()[2 * i], res.grid.times()[i]);
    }
    // It starts from the log-midpoints and never raises the KLUB.
    let mids: Vec<f64> = {
        let l = &res.noise_levels;
        let mut v = vec![l[0]];
        for w in l.windows(2) {
            v.push((w[0] * w[1]).sqrt());
            v.push(w[1]);
        }
        v
    };
    let k = Klub::new(&den, &s, &data, 4, &mut HostNoise::new(3)).unwrap();
    assert!(klub_fine <= k.total(&mids).unwrap() + 1e-12);
}

#[test]
fn gits_beats_uniform_and_edm_grids_at_nfe_5_to_10() {
    let g = target();
    let s = Edm::default();
    let den = g.denoiser(&s);
    // 80 candidate steps (rho = 3 spacing, then 0); 64 pilot trajectories by Heun with 2
    // sub-steps per candidate step; the schedule is fitted for Euler (1 NFE per step).
    let candidates = TimeGrid::karras(&s, 0.002, 80.0, 3.0, 80, true).unwrap();
    let fit = gits_schedule(&Euler, &Heun, &den, &s, &candidates, prior(64, 11), 5, 2).unwrap();
    assert_eq!(fit.indices.len(), 6);
    assert_eq!((fit.indices[0], fit.indices[5]), (0, 80));
    let ode = OdeReference::new(&g, &s);
    for k in 5..=10 {
        let (idx, _) = dp_schedule(&fit.costs, k).unwrap();
        let grid = TimeGrid::new(idx.iter().map(|&i| candidates.times()[i]).collect()).unwrap();
        // Errors on 256 fresh prior draws (not the pilots). Measured at k = 5 / 10:
        // GITS 0.18 / 0.086, EDM 0.47 / 0.18, uniform 1.03 / 0.96.
        let edm = TimeGrid::karras(&s, 0.002, 80.0, 7.0, k, true).unwrap();
        let e_gits = ode.error(&Euler, &g, &s, &grid);
        let e_edm = ode.error(&Euler, &g, &s, &edm);
        let e_uni = ode.error(&Euler, &g, &s, &TimeGrid::uniform(80.0, 0.0, k).unwrap());
        assert!(e_gits < 0.7 * e_edm, "k={k}: GITS {e_gits} vs EDM {e_edm}");
        assert!(
            e_gits < 0.3 * e_uni,
            "k={k}: GITS {e_gits} vs uniform {e_uni}"
        );
    }
}
