//! Forward processes beyond the scalar `x_t = alpha x_0 + sigma eps` schedules: linear SDEs on a
//! small augmented space per coordinate (multivariate diffusions, critically-damped Langevin,
//! phase-space Langevin / the complete recipe, the momentum process of FDM), mean-reverting and
//! mean-shifted SDEs whose terminal law is centred on a condition `mu` (IR-SDE, Grad-TTS), and the
//! PFGM++ heavy-tailed perturbation kernel.
//!
//! Conventions. Augmented processes act coordinate-wise on [`Phase`](crate::Phase) states: every
//! data coordinate `x_i` has its own velocity `v_i`, and the `2 x 2` kernel ([`PhaseKernel`]) is the
//! same for all coordinates. Time enters through one scalar rate `beta(t)` ([`AffineBeta`]), so the
//! transition over `[s, t]` is a function of `B(t) - B(s)` only, `B = int beta`. Matrices are
//! `nalgebra` matrices on the host (`f64`); states are any [`State`](crate::State).

mod cld;
mod fdm;
pub(crate) mod linalg;
mod linear_sde;
mod mean_reverting;
mod mean_shifted;
mod pfgmpp;
mod psld;
pub(crate) mod special;
mod time_change;

pub use cld::Cld;
pub use fdm::Fdm;
pub use linalg::{expm, psd_cholesky, van_loan};
pub use linear_sde::{euler_maruyama_moments, MultivariateSde, PhaseKernel, SampleMoments};
pub use mean_reverting::{MeanReverting, ThetaSchedule};
pub use mean_shifted::MeanShiftedVp;
pub use pfgmpp::Pfgmpp;
pub use psld::Psld;
pub use time_change::AffineBeta;
