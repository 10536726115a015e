//! Stochastic solvers of the reverse-time SDE.

mod euler_maruyama;

pub use euler_maruyama::EulerMaruyama;
