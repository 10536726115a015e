//! Solvers by name: the table behind `diffusion solvers` and `--solver name:key=value,...`.

use crate::adaptive::{
    AdaptiveOptions, DpmSolverAdaptive, GottaGoFast, GottaGoFastOptions, OdeCoordinates, Rk45,
    Rk45Options,
};
use crate::augmented::{
    Baoab, ConjugateIntegrator, ConjugateSplitting, Oba, PhaseEulerMaruyama, PhaseSolver,
    ReducedBaoab, ReducedVelocityVerlet, Sscs, VelocityVerlet,
};
use crate::error::{Result, SolverError};
use crate::ode::{
    int_param, Ddim, Deis, DeisForm, Dpm2, DpmSolver, DpmSolverPp2M, DpmSolverPp2S, DpmSolverPp3M,
    Dpmpp3MWeight, Euler, Heun, Ipndm, Lms, Plms, ResMultistep, UniPc, UniPcVariant,
};
use crate::sde::{
    Consistency, Ddpm, DpmSolverPp2MSde, DpmSolverPp2SAncestral, DpmSolverPp3MSde, DpmSolverPpSde,
    EdmSde, ErSde, EulerAncestral, EulerMaruyama, NoiseScale, PredictorCorrector, Restart,
    ReversibleHeun, SaSolver,
};
use crate::solver::Solver;
use diffusion_core::{Spec, State};

/// What the registry knows about one solver.
#[derive(Debug, Clone, Copy)]
pub struct SolverInfo {
    /// The name used on the command line.
    pub name: &'static str,
    /// The paper (authors, year, arXiv id, algorithm).
    pub paper: &'static str,
    /// Declared order (global for ODE solvers, strong for SDE solvers).
    pub order: f64,
    /// Model evaluations per step.
    pub nfe_per_step: &'static str,
    /// Accepted parameters with defaults.
    pub params: &'static str,
    /// Whether it draws noise.
    pub stochastic: bool,
}

/// Every solver the registry can build.
pub const SOLVERS: &[SolverInfo] = &[
    SolverInfo {
        name: "euler",
        paper: "Karras et al. 2022, EDM, arXiv:2206.00364, Alg. 1 (Euler part)",
        order: 1.0,
        nfe_per_step: "1",
        params: "",
        stochastic: false,
    },
    SolverInfo {
        name: "heun",
        paper: "Karras et al. 2022, EDM, arXiv:2206.00364, Alg. 1",
        order: 2.0,
        nfe_per_step: "2 (1 on the step to sigma = 0)",
        params: "",
        stochastic: false,
    },
    SolverInfo {
        name: "ddim",
        paper: "Song, Meng & Ermon 2021, DDIM, arXiv:2010.02502, Eq. 12",
        order: 1.0,
        nfe_per_step: "1",
        params: "eta=0",
        stochastic: false,
    },
    SolverInfo {
        name: "dpmpp-2m",
        paper: "Lu et al. 2022, DPM-Solver++, arXiv:2211.01095, Alg. 2",
        order: 2.0,
        nfe_per_step: "1",
        params: "",
        stochastic: false,
    },
    SolverInfo {
        name: "euler-maruyama",
        paper: "Song et al. 2021, Score SDE, arXiv:2011.13456, Eq. 6",
        order: 1.0,
        nfe_per_step: "1",
        params: "",
        stochastic: true,
    },
    SolverInfo {
        name: "dpm2",
        paper: "Lu et al. 2022, DPM-Solver, arXiv:2206.00927, Alg. 1 (r1 = 1/2) in EDM coordinates (k-diffusion sample_dpm_2)",
        order: 2.0,
        nfe_per_step: "2 (1 on the step to sigma = 0)",
        params: "",
        stochastic: false,
    },
    SolverInfo {
        name: "lms",
        paper: "Adams-Bashforth on variable grids (Hairer et al. 1993, III.5) on the EDM PF-ODE, arXiv:2206.00364 Eq. 4 (k-diffusion sample_lms)",
        order: 4.0,
        nfe_per_step: "1",
        params: "order=4 (1..4)",
        stochastic: false,
    },
    SolverInfo {
        name: "euler-ancestral",
        paper: "Song et al. 2021, DDIM, arXiv:2010.02502, Eq. 16 noise + Karras et al. 2022 Euler step (k-diffusion sample_euler_ancestral)",
        order: 1.0,
        nfe_per_step: "1",
        params: "eta=1,s_noise=1",
        stochastic: true,
    },
    SolverInfo {
        name: "dpmpp-2s-ancestral",
        paper: "Lu et al. 2022, DPM-Solver++, arXiv:2211.01095, Alg. 1 (2S) + DDIM-eta noise (k-diffusion sample_dpmpp_2s_ancestral)",
        order: 1.0,
        nfe_per_step: "2",
        params: "eta=1,s_noise=1",
        stochastic: true,
    },
    SolverInfo {
        name: "dpmpp-sde",
        paper: "Lu et al. 2022, DPM-Solver++, arXiv:2211.01095, Alg. 1 (2S, r = 1/2) with ancestral noise in both sub-steps (k-diffusion sample_dpmpp_sde)",
        order: 1.0,
        nfe_per_step: "2 (1 on the step to sigma = 0)",
        params: "eta=1,s_noise=1",
        stochastic: true,
    },
    SolverInfo {
        name: "dpmpp-2m-sde",
        paper: "Lu et al. 2022, DPM-Solver++, arXiv:2211.01095, Alg. 2, SDE form (k-diffusion sample_dpmpp_2m_sde)",
        order: 1.0,
        nfe_per_step: "1",
        params: "eta=1,s_noise=1,heun=0 (0 midpoint, 1 heun)",
        stochastic: true,
    },
    SolverInfo {
        name: "dpmpp-3m-sde",
        paper: "Lu et al. 2022, DPM-Solver++, arXiv:2211.01095, 3M (authors' code), SDE form (k-diffusion sample_dpmpp_3m_sde)",
        order: 1.0,
        nfe_per_step: "1",
        params: "eta=1,s_noise=1,reference=0 (1: k-diffusion d2 weight)",
        stochastic: true,
    },
    SolverInfo {
        name: "dpm-solver",
        paper: "Lu et al. 2022, DPM-Solver, arXiv:2206.00927, Alg. 1 (order 2) and Alg. 2 (order 3)",
        order: 3.0,
        nfe_per_step: "order (1 on the step to sigma = 0)",
        params: "order=3 (1|2|3)",
        stochastic: false,
    },
    SolverInfo {
        name: "dpm-solver-adaptive",
        paper: "Lu et al. 2022, DPM-Solver, arXiv:2206.00927, Alg. 4 (DPM-Solver-12/23)",
        order: 3.0,
        nfe_per_step: "adaptive: order per attempt inside each grid interval",
        params: "order=3 (2|3),rtol=0.05,atol=0.0078,h_init=0.05",
        stochastic: false,
    },
    SolverInfo {
        name: "dpmpp-2s",
        paper: "Lu et al. 2022, DPM-Solver++, arXiv:2211.01095, Alg. 1 (r = 1/2)",
        order: 2.0,
        nfe_per_step: "2 (1 on the step to sigma = 0)",
        params: "",
        stochastic: false,
    },
    SolverInfo {
        name: "dpmpp-3m",
        paper: "Lu et al. 2022, DPM-Solver++, arXiv:2211.01095, Alg. 2 extended to 3M (dpm-solver/diffusers)",
        order: 3.0,
        nfe_per_step: "1",
        params: "reference=0 (1: the reference D2 weight, order 2)",
        stochastic: false,
    },
    SolverInfo {
        name: "unipc",
        paper: "Zhao et al. 2023, UniPC, arXiv:2302.04867, Alg. 2 and 3 (B(h) variants)",
        order: 3.0,
        nfe_per_step: "1",
        params: "order=2 (1..3),variant=2 (1: bh1, 2: bh2),corrector=1 (order + 1 with it)",
        stochastic: false,
    },
    SolverInfo {
        name: "deis",
        paper: "Zhang & Chen 2022, DEIS, arXiv:2204.13902, tAB-DEIS (form=1: diffusers' log-rho DEISMultistepScheduler)",
        order: 3.0,
        nfe_per_step: "1",
        params: "order=3 (1..3),form=0 (0: tAB, Lagrange in t; 1: diffusers' log-rho, Lagrange in ln rho, lower_order_final below 15 steps)",
        stochastic: false,
    },
    SolverInfo {
        name: "ipndm",
        paper: "Zhang & Chen 2022, DEIS, arXiv:2204.13902, App. (iPNDM)",
        order: 4.0,
        nfe_per_step: "1",
        params: "order=4 (1..4),variable=1 (0: fixed weights as k-diffusion, order min(order, 2))",
        stochastic: false,
    },
    SolverInfo {
        name: "plms",
        paper: "Liu et al. 2022, PNDM, arXiv:2202.09778, Sec. 3 (PLMS)",
        order: 2.0,
        nfe_per_step: "1 (2 on the first step)",
        params: "",
        stochastic: false,
    },
    SolverInfo {
        name: "edm-sde",
        paper: "Karras et al. 2022, EDM, arXiv:2206.00364, Alg. 2 (churn + Heun)",
        order: 2.0,
        nfe_per_step: "2 (1 on the step to sigma = 0)",
        params: "s_churn=40,s_tmin=0.05,s_tmax=50,s_noise=1 (s_churn=0 is heun)",
        stochastic: true,
    },
    SolverInfo {
        name: "sa-solver",
        paper: "Xue et al. 2023, SA-Solver, arXiv:2309.05019, Eq. 15 + 18, Alg. 1 (PEC)",
        order: 1.0,
        nfe_per_step: "1 (2 on the first step; 2 with pece=1; corrector_order=0: 1)",
        params: "predictor_order=3 (1..3),corrector_order=3 (0..3),tau=1,pece=0",
        stochastic: true,
    },
    SolverInfo {
        name: "er-sde",
        paper: "Cui et al. 2023, ER-SDE-Solver, arXiv:2309.06169, VP ER-SDE-Solver-1/2/3",
        order: 1.0,
        nfe_per_step: "1",
        params: "order=3 (1..3),noise_fn=7 (authors' func_type 1..7; 1 = ODE),s_noise=1",
        stochastic: true,
    },
    SolverInfo {
        name: "pc",
        paper: "Song et al. 2021, Score SDE, arXiv:2011.13456, Alg. 2/3 (predictor + Langevin corrector)",
        order: 1.0,
        nfe_per_step: "corrector_steps + 1",
        params: "snr=0.16,corrector_steps=1,predictor=0 (0 reverse diffusion, 1 euler-maruyama)",
        stochastic: true,
    },
    SolverInfo {
        name: "restart",
        paper: "Xu et al. 2023, Restart Sampling, arXiv:2306.14878, Alg. 1 (EDM Heun)",
        order: 2.0,
        nfe_per_step: "2 (1 on the step to sigma = 0); + k * (2 restart_steps) + 2 on the step crossing t_restart_min",
        params: "k=2,t_restart_min=0.1,t_restart_max=2,restart_steps=10",
        stochastic: true,
    },
    SolverInfo {
        name: "ddpm",
        paper: "Ho et al. 2020, DDPM, arXiv:2006.11239, Alg. 2 (continuous-time posterior)",
        order: 1.0,
        nfe_per_step: "1",
        params: "variance=0 (0 beta_tilde posterior, 1 beta upper bound)",
        stochastic: true,
    },
    SolverInfo {
        name: "consistency",
        paper: "Song et al. 2023, Consistency Models, arXiv:2303.01469, Alg. 1 (multistep: x0, then fresh noise)",
        order: 0.0,
        nfe_per_step: "1",
        params: "",
        stochastic: true,
    },
    SolverInfo {
        name: "gotta-go-fast",
        paper: "Jolicoeur-Martineau et al. 2021, Gotta Go Fast, arXiv:2105.14080, Alg. 1",
        order: 1.0,
        nfe_per_step: "adaptive: 2 per attempt (1 per retry) inside each grid interval",
        params: "rtol=0.01,atol=0.0078,h_init=0.01",
        stochastic: true,
    },
    SolverInfo {
        name: "reversible-heun",
        paper: "Kidger et al. 2021, Efficient and Accurate Gradients for Neural SDEs, arXiv:2105.13493, Alg. 1",
        order: 1.0,
        nfe_per_step: "1 (+1 on the first step)",
        params: "eta=1,s_noise=1 (eta=0: PF-ODE, order 2)",
        stochastic: true,
    },
    SolverInfo {
        name: "res-multistep",
        paper: "Zhang, Song & Chen 2023, RES, arXiv:2308.02157, 2nd-order multistep (ComfyUI sample_res_multistep)",
        order: 2.0,
        nfe_per_step: "1",
        params: "",
        stochastic: false,
    },
];

/// Builds a solver from a spec such as `heun` or `ddim:eta=0.5`. Unknown names and unknown or
/// invalid parameters are errors that list what is accepted.
pub fn build<S: State>(text: &str) -> Result<Box<dyn Solver<S>>> {
    let mut spec = Spec::parse(text)?;
    let solver: Box<dyn Solver<S>> = match spec.name.as_str() {
        "euler" => Box::new(Euler),
        "heun" => Box::new(Heun),
        "ddim" => Box::new(Ddim::new(spec.take("eta", 0.0))?),
        "dpmpp-2m" => Box::new(DpmSolverPp2M),
        "euler-maruyama" => Box::new(EulerMaruyama),
        "dpm2" => Box::new(Dpm2),
        "lms" => Box::new(Lms::new(integer(spec.take("order", 4.0), "order")?)?),
        "euler-ancestral" => Box::new(EulerAncestral::new(
            spec.take("eta", 1.0),
            spec.take("s_noise", 1.0),
        )?),
        "dpmpp-2s-ancestral" => Box::new(DpmSolverPp2SAncestral::new(
            spec.take("eta", 1.0),
            spec.take("s_noise", 1.0),
        )?),
        "dpmpp-sde" => Box::new(DpmSolverPpSde::new(
            spec.take("eta", 1.0),
            spec.take("s_noise", 1.0),
        )?),
        "dpmpp-2m-sde" => Box::new(DpmSolverPp2MSde::new(
            spec.take("eta", 1.0),
            spec.take("s_noise", 1.0),
            DpmSolverPp2MSde::form_from_flag(spec.take("heun", 0.0))?,
        )?),
        "dpmpp-3m-sde" => Box::new(DpmSolverPp3MSde::new(
            spec.take("eta", 1.0),
            spec.take("s_noise", 1.0),
            match int_param("reference", spec.take("reference", 0.0), 0, 1)? {
                0 => Dpmpp3MWeight::Consistent,
                _ => Dpmpp3MWeight::Reference,
            },
        )?),
        "dpm-solver" => Box::new(DpmSolver::new(int_param(
            "order",
            spec.take("order", 3.0),
            1,
            3,
        )?)?),
        "dpm-solver-adaptive" => Box::new(DpmSolverAdaptive::new(AdaptiveOptions {
            order: int_param("order", spec.take("order", 3.0), 2, 3)?,
            rtol: spec.take("rtol", 0.05),
            atol: spec.take("atol", 0.0078),
            h_init: spec.take("h_init", 0.05),
            ..AdaptiveOptions::default()
        })?),
        "dpmpp-2s" => Box::new(DpmSolverPp2S),
        "dpmpp-3m" => Box::new(DpmSolverPp3M::new(
            match int_param("reference", spec.take("reference", 0.0), 0, 1)? {
                0 => Dpmpp3MWeight::Consistent,
                _ => Dpmpp3MWeight::Reference,
            },
        )),
        "unipc" => Box::new(UniPc::new(
            int_param("order", spec.take("order", 2.0), 1, 3)?,
            match int_param("variant", spec.take("variant", 2.0), 1, 2)? {
                1 => UniPcVariant::Bh1,
                _ => UniPcVariant::Bh2,
            },
            int_param("corrector", spec.take("corrector", 1.0), 0, 1)? == 1,
        )?),
        "deis" => Box::new(Deis::with_form(
            int_param("order", spec.take("order", 3.0), 1, 3)?,
            DeisForm::from_flag(spec.take("form", 0.0))?,
        )?),
        "ipndm" => Box::new(Ipndm::new(
            int_param("order", spec.take("order", 4.0), 1, 4)?,
            int_param("variable", spec.take("variable", 1.0), 0, 1)? == 1,
        )?),
        "plms" => Box::new(Plms),
        "edm-sde" => Box::new(EdmSde::new(
            spec.take("s_churn", 40.0),
            spec.take("s_tmin", 0.05),
            spec.take("s_tmax", 50.0),
            spec.take("s_noise", 1.0),
        )?),
        "sa-solver" => Box::new(SaSolver::new(
            integer(spec.take("predictor_order", 3.0), "predictor_order")?,
            integer(spec.take("corrector_order", 3.0), "corrector_order")?,
            spec.take("tau", 1.0),
            flag(spec.take("pece", 0.0), "pece")?,
        )?),
        "er-sde" => Box::new(ErSde::new(
            integer(spec.take("order", 3.0), "order")?,
            NoiseScale::from_func_type(spec.take("noise_fn", 7.0))?,
            spec.take("s_noise", 1.0),
        )?),
        "pc" => Box::new(PredictorCorrector::new(
            PredictorCorrector::predictor_from_flag(spec.take("predictor", 0.0))?,
            spec.take("snr", 0.16),
            integer(spec.take("corrector_steps", 1.0), "corrector_steps")?,
        )?),
        "restart" => Box::new(Restart::new(
            integer(spec.take("k", 2.0), "k")?,
            spec.take("t_restart_min", 0.1),
            spec.take("t_restart_max", 2.0),
            integer(spec.take("restart_steps", 10.0), "restart_steps")?,
        )?),
        "ddpm" => Box::new(Ddpm::new(Ddpm::variance_from_flag(
            spec.take("variance", 0.0),
        )?)),
        "consistency" => Box::new(Consistency),
        "rk45" => Box::new(Rk45::new(Rk45Options {
            rtol: spec.take("rtol", 1e-5),
            atol: spec.take("atol", 1e-5),
            coordinates: match int_param("time", spec.take("time", 0.0), 0, 1)? {
                0 => OdeCoordinates::Edm,
                _ => OdeCoordinates::Time,
            },
            ..Rk45Options::default()
        })?),
        "gotta-go-fast" => Box::new(GottaGoFast::new(GottaGoFastOptions {
            rtol: spec.take("rtol", 0.01),
            atol: spec.take("atol", 0.0078),
            h_init: spec.take("h_init", 0.01),
            ..GottaGoFastOptions::default()
        })?),
        "reversible-heun" => Box::new(ReversibleHeun::new(
            spec.take("eta", 1.0),
            spec.take("s_noise", 1.0),
        )?),
        "res-multistep" => Box::new(ResMultistep),
        _ => {
            let known: Vec<&str> = SOLVERS.iter().map(|s| s.name).collect();
            return Err(spec.unknown("solver", &known).into());
        }
    };
    spec.finish()?;
    Ok(solver)
}

/// Every phase-space (CLD / PSLD) sampler [`build_phase`] can build: the
/// [`crate::augmented::PhaseSolver`]s, driven by an augmented score through
/// [`crate::augmented::sample_phase`].
pub const PHASE_SOLVERS: &[SolverInfo] = &[
    SolverInfo {
        name: "phase-euler-maruyama",
        paper: "Dockhorn, Vahdat & Kreis 2022, CLD, arXiv:2112.07068, Sec. 3.3 (EM baseline); Pandey & Mandt 2023, PSLD, arXiv:2303.01748",
        order: 1.0,
        nfe_per_step: "1",
        params: "",
        stochastic: true,
    },
    SolverInfo {
        name: "phase-euler",
        paper: "Euler on the augmented probability-flow ODE (Song et al. 2021, arXiv:2011.13456, Eq. 13)",
        order: 1.0,
        nfe_per_step: "1",
        params: "",
        stochastic: false,
    },
    SolverInfo {
        name: "sscs",
        paper: "Dockhorn, Vahdat & Kreis 2022, CLD, arXiv:2112.07068, Alg. 1 (SSCS)",
        order: 1.0,
        nfe_per_step: "1",
        params: "",
        stochastic: true,
    },
    SolverInfo {
        name: "conjugate",
        paper: "Pandey, Rudolph & Mandt 2024, arXiv:2310.07894, Def. 3.1 (lambda-DDIM)",
        order: 1.0,
        nfe_per_step: "1",
        params: "lambda=0",
        stochastic: false,
    },
    SolverInfo {
        name: "velocity-verlet",
        paper: "Pandey, Rudolph & Mandt 2024, arXiv:2310.07894, Sec. 4 (naive velocity Verlet)",
        order: 1.0,
        nfe_per_step: "3",
        params: "",
        stochastic: false,
    },
    SolverInfo {
        name: "reduced-velocity-verlet",
        paper: "Pandey, Rudolph & Mandt 2024, arXiv:2310.07894, Sec. 4 (reduced velocity Verlet)",
        order: 1.0,
        nfe_per_step: "2",
        params: "",
        stochastic: false,
    },
    SolverInfo {
        name: "conjugate-splitting",
        paper: "Pandey, Rudolph & Mandt 2024, arXiv:2310.07894, Sec. 5 (conjugate splitting)",
        order: 2.0,
        nfe_per_step: "2",
        params: "",
        stochastic: false,
    },
    SolverInfo {
        name: "oba",
        paper: "Pandey, Rudolph & Mandt 2024, arXiv:2310.07894, Sec. 4 (stochastic splitting, OBA: exact OU, score kick, position drift); Leimkuhler & Matthews 2013, arXiv:1203.5428",
        order: 1.0,
        nfe_per_step: "1",
        params: "",
        stochastic: true,
    },
    SolverInfo {
        name: "baoab",
        paper: "Pandey, Rudolph & Mandt 2024, arXiv:2310.07894, Sec. 4 (naive stochastic splitting, BAOAB); Leimkuhler & Matthews 2013, arXiv:1203.5428",
        order: 1.0,
        nfe_per_step: "2",
        params: "",
        stochastic: true,
    },
    SolverInfo {
        name: "reduced-baoab",
        paper: "Pandey, Rudolph & Mandt 2024, arXiv:2310.07894, Sec. 4 (reduced stochastic splitting: BAOAB with one score per step)",
        order: 1.0,
        nfe_per_step: "1",
        params: "",
        stochastic: true,
    },
];

/// Builds a phase-space sampler from a spec such as `reduced-baoab` or `conjugate:lambda=2`.
/// Unknown names and unknown or invalid parameters are errors that list what is accepted.
pub fn build_phase<S: State>(text: &str) -> Result<Box<dyn PhaseSolver<S>>> {
    let mut spec = Spec::parse(text)?;
    let solver: Box<dyn PhaseSolver<S>> = match spec.name.as_str() {
        "phase-euler-maruyama" => Box::new(PhaseEulerMaruyama::sde()),
        "phase-euler" => Box::new(PhaseEulerMaruyama::ode()),
        "sscs" => Box::new(Sscs),
        "conjugate" => Box::new(ConjugateIntegrator::new(spec.take("lambda", 0.0))?),
        "velocity-verlet" => Box::new(VelocityVerlet),
        "reduced-velocity-verlet" => Box::new(ReducedVelocityVerlet),
        "conjugate-splitting" => Box::new(ConjugateSplitting),
        "oba" => Box::new(Oba),
        "baoab" => Box::new(Baoab),
        "reduced-baoab" => Box::new(ReducedBaoab),
        _ => {
            let known: Vec<&str> = PHASE_SOLVERS.iter().map(|s| s.name).collect();
            return Err(spec.unknown("phase-space solver", &known).into());
        }
    };
    spec.finish()?;
    Ok(solver)
}

/// A parameter that must be a non-negative integer (the spec grammar only knows numbers).
fn integer(value: f64, name: &'static str) -> Result<usize> {
    if value >= 0.0 && value.fract() == 0.0 && value <= u32::MAX as f64 {
        Ok(value as usize)
    } else {
        Err(SolverError::InvalidParameter {
            name,
            reason: format!("must be a non-negative integer, got {value}"),
        })
    }
}

/// A parameter that must be 0 (off) or 1 (on).
fn flag(value: f64, name: &'static str) -> Result<bool> {
    if value == 0.0 || value == 1.0 {
        Ok(value == 1.0)
    } else {
        Err(SolverError::InvalidParameter {
            name,
            reason: format!("must be 0 or 1, got {value}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn every_listed_solver_builds_and_reports_its_order() {
        for info in SOLVERS {
            let s = build::<Array2<f64>>(info.name).unwrap();
            assert_eq!(s.order(), info.order, "{}", info.name);
            assert_eq!(s.is_stochastic(), info.stochastic, "{}", info.name);
        }
        let d = build::<Array2<f64>>("ddim:eta=1").unwrap();
        assert!(d.is_stochastic());
        // At eta = 0 the k-diffusion samplers are ODE solvers with their ODE order.
        for (spec, order) in [
            ("euler-ancestral:eta=0", 1.0),
            ("dpmpp-2s-ancestral:eta=0", 2.0),
            ("dpmpp-sde:eta=0", 2.0),
            ("dpmpp-2m-sde:eta=0,heun=1", 2.0),
            ("dpmpp-3m-sde:eta=0", 3.0),
            ("dpmpp-3m-sde:eta=0,reference=1", 2.0),
            ("lms:order=2", 2.0),
        ] {
            let s = build::<Array2<f64>>(spec).unwrap();
            assert_eq!(s.order(), order, "{spec}");
            assert!(!s.is_stochastic(), "{spec}");
        }
        assert!(!build::<Array2<f64>>("euler-ancestral:s_noise=0")
            .unwrap()
            .is_stochastic());
    }

    #[test]
    fn every_listed_phase_solver_builds_and_reports_its_order() {
        for info in PHASE_SOLVERS {
            let s = build_phase::<Array2<f64>>(info.name).unwrap();
            assert_eq!(s.order(), info.order, "{}", info.name);
            assert_eq!(s.is_stochastic(), info.stochastic, "{}", info.name);
            assert_eq!(
                s.evals_per_step().to_string(),
                info.nfe_per_step,
                "{}",
                info.name
            );
            assert!(s.name().starts_with(info.name), "{}", info.name);
        }
        let e = build_phase::<Array2<f64>>("boa").err().unwrap().to_string();
        assert!(e.contains("boa") && e.contains("reduced-baoab"), "{e}");
        assert!(build_phase::<Array2<f64>>("oba:eta=1").is_err());
        assert!(build_phase::<Array2<f64>>("conjugate:lambda=inf").is_err());
        assert!(build_phase::<Array2<f64>>("conjugate:lambda=2").is_ok());
    }

    #[test]
    fn bad_specs_are_clear_errors() {
        let e = build::<Array2<f64>>("rk99").err().unwrap().to_string();
        assert!(
            e.contains("unknown solver `rk99`") && e.contains("heun"),
            "{e}"
        );
        assert!(build::<Array2<f64>>("ddim:eta=-1").is_err());
        assert!(build::<Array2<f64>>("ddim:eta").is_err());
        assert!(build::<Array2<f64>>("heun:x=1").is_err());
        assert!(build::<Array2<f64>>("ddim:eta=abc").is_err());
        for bad in [
            "lms:order=0",
            "lms:order=5",
            "lms:order=2.5",
            "euler-ancestral:eta=-1",
            "dpmpp-sde:s_noise=-0.5",
            "dpmpp-2m-sde:heun=2",
            "dpmpp-3m-sde:eta=inf",
            "dpm2:eta=1",
        ] {
            assert!(build::<Array2<f64>>(bad).is_err(), "{bad}");
        }
    }
}
