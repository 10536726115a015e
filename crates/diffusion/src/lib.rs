//! # diffusion
//!
//! The umbrella crate of the diffusion workspace: it re-exports every crate under a short name,
//! offers a [`prelude`], small I/O helpers ([`io`]: `.npy` arrays written atomically) and PNG
//! plots ([`plot`]), and builds the `diffusion` command-line program.
//!
//! | module | crate | needs libtorch |
//! |---|---|---|
//! | [`core`] | `diffusion-core` | no |
//! | [`solvers`] | `diffusion-solvers` | no |
//! | [`discrete`] | `diffusion-discrete` | no |
//! | [`bridges`] | `diffusion-bridges` | no |
//! | `models` | `diffusion-models` (feature `tch`, on by default) | yes |
//!
//! Sampling an analytic target with a solver from the registry:
//!
//! ```
//! use diffusion::prelude::*;
//! use diffusion::solvers::registry;
//! use ndarray::Array2;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let target = GaussianMixture::ring(8, 4.0, 0.3)?;
//! let sde = VpLinear::default();
//! let grid = TimeGrid::karras(&sde, 0.002, 80.0, 7.0, 20, true)?;
//! let x_t: Array2<f64> = HostNoise::new(0).standard_normal(&Array2::zeros((1000, 2)));
//! let solver = registry::build::<Array2<f64>>("dpmpp-2m")?;
//! let mut noise = BrownianTree::with_default_tol(1, 0.0, 1.0)?;
//! let x0 = sample(solver.as_ref(), &target.denoiser(&sde), &sde, &grid, x_t, &mut noise, &mut NoObserver)?;
//! assert_eq!(x0.dim(), (1000, 2));
//! # Ok(())
//! # }
//! ```

pub use diffusion_bridges as bridges;
pub use diffusion_core as core;
pub use diffusion_discrete as discrete;
#[cfg(feature = "tch")]
pub use diffusion_models as models;
pub use diffusion_solvers as solvers;

pub mod io;
pub mod plot;

/// The names most programs need.
pub mod prelude {
    pub use diffusion_core::schedule::{Edm, VpLinear};
    pub use diffusion_core::{
        BrownianPath, BrownianTree, Denoiser, Gaussian, GaussianMixture, HostNoise,
        IndependentIncrements, NoiseSchedule, NoiseSource, Prediction, State, TimeGrid,
    };
    pub use diffusion_solvers::{sample, NoObserver, Observer, Solver, Trajectory};
}
