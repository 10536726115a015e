//! Hand-written sampling loops: the memory-traffic floor of a solver.
//!
//! Each function runs the steps of one solver on a sigma grid (EDM schedule, `x_{i+1}` from
//! `x_i` and the denoiser's `x0_hat`) the shortest way this crate knows: the denoiser's own
//! output (it writes a new array, as a model does), then one fused in-place pass over the state
//! through the state's run-time dispatched loops, nothing else: no registry, no cache, no
//! finiteness checks, no error paths. `side_by_side` times them next to the registry solvers
//! (target 2 of docs/results.md is also read against them) and checks that each gives the
//! solver's result to rounding, so a floor cannot be fast by doing less work.
//!
//! The updates are the solvers' published forms, written in data-prediction form on the EDM
//! schedule (`alpha = 1`, `sigma = t`):
//! - Euler (Karras et al. 2022, arXiv:2206.00364, Alg. 1 without the correction):
//!   `x' = r x + (1 - r) D`, `r = s_{i+1} / s_i`.
//! - Heun (the same Alg. 1): the Euler predictor into a reused buffer, then
//!   `x' = x + h/2 (d + d')` with `d = (x - D) / s_i`, `d' = (x_pred - D') / s_{i+1}`, which is
//!   one three-term combination of `x`, `D`, `D'`; Euler on the last step (`s_{i+1} = 0`).
//! - DPM-Solver++(2M) (Lu et al. 2022, arXiv:2211.01095, Alg. 2, k-diffusion's form):
//!   `x' = (s_{i+1}/s_i) x - expm1(-h) ((1 + 1/(2r)) D - 1/(2r) D_prev)`, first order on the first
//!   and the last step.
//! - Euler ancestral (k-diffusion's `sample_euler_ancestral`, eta 1): `x' = (s_d/s_i) x +
//!   (1 - s_d/s_i) D - s_u z`, `z` from a [`FastNoise`] stream filled into a reused buffer.
//! - DPM-Solver++(2M) SDE (k-diffusion's `sample_dpmpp_2m_sde`, midpoint, eta 1):
//!   `x' = (s_{i+1}/s_i) e^{-h} x + e D + (e / (2r)) (D - D_prev) - s_{i+1} sqrt(1 - e^{-2h}) z`,
//!   `e = 1 - e^{-2h}`: the three-term pass, then the noise (the state API combines at most three
//!   states a pass, as the solver does).

use diffusion::core::{Denoiser, FastNoise, Prediction, Result, State};
use ndarray::ArrayD;

/// The denoiser's `x0_hat` at `(x, sigma)` (a sample prediction, as the bench denoisers give).
fn x0<D: Denoiser<ArrayD<f64>>>(den: &D, x: &ArrayD<f64>, sigma: f64) -> Result<ArrayD<f64>> {
    match den.predict(x, sigma)? {
        Prediction::Sample(d) => Ok(d),
        _ => Err(diffusion::core::CoreError::InvalidParameter {
            name: "denoiser",
            reason: "the floor loops take a denoiser that predicts x0".into(),
        }),
    }
}

/// Euler on `sigmas` (decreasing, ending at 0).
pub fn euler<D: Denoiser<ArrayD<f64>>>(
    den: &D,
    sigmas: &[f64],
    mut x: ArrayD<f64>,
) -> Result<ArrayD<f64>> {
    for w in sigmas.windows(2) {
        let d = x0(den, &x, w[0])?;
        let r = w[1] / w[0];
        x.lincomb_assign(r, &d, 1.0 - r);
    }
    Ok(x)
}

/// Heun (EDM Algorithm 1, no churn) on `sigmas`.
pub fn heun<D: Denoiser<ArrayD<f64>>>(
    den: &D,
    sigmas: &[f64],
    mut x: ArrayD<f64>,
) -> Result<ArrayD<f64>> {
    let mut pred = x.dup();
    for w in sigmas.windows(2) {
        let (s0, s1) = (w[0], w[1]);
        let d = x0(den, &x, s0)?;
        let r = s1 / s0;
        if s1 == 0.0 {
            x.lincomb_assign(r, &d, 1.0 - r);
            continue;
        }
        x.lincomb_into(r, &d, 1.0 - r, &mut pred);
        let d2 = x0(den, &pred, s1)?;
        // x + h/2 ((x - D)/s0 + (pred - D2)/s1) with pred = r x + (1 - r) D.
        let h = s1 - s0;
        let a = 1.0 + 0.5 * h / s0 + 0.5 * h * r / s1;
        let b = -0.5 * h / s0 + 0.5 * h * (1.0 - r) / s1;
        let c = -0.5 * h / s1;
        x.lincomb3_assign(a, &d, b, &d2, c);
    }
    Ok(x)
}

/// DPM-Solver++(2M) on `sigmas`.
pub fn dpmpp_2m<D: Denoiser<ArrayD<f64>>>(
    den: &D,
    sigmas: &[f64],
    mut x: ArrayD<f64>,
) -> Result<ArrayD<f64>> {
    let mut prev: Option<ArrayD<f64>> = None;
    for (i, w) in sigmas.windows(2).enumerate() {
        let (s0, s1) = (w[0], w[1]);
        let d = x0(den, &x, s0)?;
        let h = (s0 / s1).ln();
        let e = -(-h).exp_m1();
        match &prev {
            Some(p) if s1 > 0.0 => {
                let r = (sigmas[i - 1] / s0).ln() / h;
                x.lincomb3_assign(s1 / s0, &d, e * (1.0 + 0.5 / r), p, -e * 0.5 / r);
            }
            _ => x.lincomb_assign(s1 / s0, &d, e),
        }
        prev = Some(d);
    }
    Ok(x)
}

/// Euler ancestral (eta 1) on `sigmas`, its normals from `noise`.
pub fn euler_ancestral<D: Denoiser<ArrayD<f64>>>(
    den: &D,
    sigmas: &[f64],
    mut x: ArrayD<f64>,
    noise: &mut FastNoise,
) -> Result<ArrayD<f64>> {
    let mut z = x.dup();
    for w in sigmas.windows(2) {
        let (s0, s1) = (w[0], w[1]);
        let d = x0(den, &x, s0)?;
        let su = s1.min((s1 * s1 * (s0 * s0 - s1 * s1) / (s0 * s0)).sqrt());
        let sd = (s1 * s1 - su * su).sqrt();
        let r = sd / s0;
        if s1 == 0.0 {
            x.lincomb_assign(r, &d, 1.0 - r);
            continue;
        }
        noise.fill(
            z.as_slice_mut()
                .expect("a fresh array is in standard order"),
        );
        // The registry solvers take the normalized Brownian increment over [s_i, s_{i+1}],
        // which runs backward in time: `-z` (same law; the sign keeps the results equal).
        x.lincomb3_assign(r, &d, 1.0 - r, &z, -su);
    }
    Ok(x)
}

/// DPM-Solver++(2M) SDE (midpoint, eta 1) on `sigmas`, its normals from `noise`.
pub fn dpmpp_2m_sde<D: Denoiser<ArrayD<f64>>>(
    den: &D,
    sigmas: &[f64],
    mut x: ArrayD<f64>,
    noise: &mut FastNoise,
) -> Result<ArrayD<f64>> {
    let mut z = x.dup();
    let mut prev: Option<(ArrayD<f64>, f64)> = None;
    for w in sigmas.windows(2) {
        let (s0, s1) = (w[0], w[1]);
        let d = x0(den, &x, s0)?;
        if s1 == 0.0 {
            x.lincomb_assign(0.0, &d, 1.0);
            continue;
        }
        let h = (s0 / s1).ln();
        let e = -(-2.0 * h).exp_m1();
        let a = s1 / s0 * (-h).exp();
        match &prev {
            Some((p, h_last)) => {
                let c = 0.5 * e * h / h_last;
                x.lincomb3_assign(a, &d, e + c, p, -c);
            }
            None => x.lincomb_assign(a, &d, e),
        }
        noise.fill(
            z.as_slice_mut()
                .expect("a fresh array is in standard order"),
        );
        // Backward in time: `-z` (see `euler_ancestral`).
        x.lincomb_assign(1.0, &z, -s1 * e.sqrt());
        prev = Some((d, h));
    }
    Ok(x)
}
