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
