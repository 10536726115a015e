//! Solvers by name: the table behind `diffusion solvers` and `--solver name:key=value,...`.

use crate::error::Result;
use crate::ode::{Ddim, DpmSolverPp2M, Euler, Heun};
use crate::sde::EulerMaruyama;
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
        _ => {
            let known: Vec<&str> = SOLVERS.iter().map(|s| s.name).collect();
            return Err(spec.unknown("solver", &known).into());
        }
    };
    spec.finish()?;
    Ok(solver)
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
    }
}
