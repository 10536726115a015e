//! `diffusion solvers` and `diffusion methods`.

use anyhow::Result;
use diffusion::core::{grid::GRIDS, schedule::SCHEDULES};
use diffusion::solvers::registry::{PHASE_SOLVERS, SOLVERS};

pub fn solvers() -> Result<()> {
    let table = |list: &[diffusion::solvers::registry::SolverInfo]| {
        println!(
            "{:<22} {:<6} {:<11} {:<32} paper",
            "solver", "order", "stochastic", "params (defaults)"
        );
        for s in list {
            println!(
                "{:<22} {:<6} {:<11} {:<32} {}",
                s.name,
                s.order,
                s.stochastic,
                if s.params.is_empty() { "-" } else { s.params },
                s.paper
            );
        }
    };
    table(SOLVERS);
    println!(
        "
phase-space samplers for CLD / PSLD (registry::build_phase, augmented (x, v) state):"
    );
    table(PHASE_SOLVERS);
    println!("\nschedules (--schedule name:key=value,...):");
    for (name, params) in SCHEDULES {
        println!("  {name:<20} {params}");
    }
    println!("\ngrids (--grid name:key=value,...):");
    for (name, params) in GRIDS {
        println!("  {name:<20} {params}");
    }
    Ok(())
}

/// docs/methods.md is the one list of methods; the program prints it.
const METHODS: &str = include_str!("../../../../docs/methods.md");

pub fn methods() -> Result<()> {
    print!("{METHODS}");
    Ok(())
}
