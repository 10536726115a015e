//! DPM++ SDE (k-diffusion `sample_dpmpp_sde`): DPM-Solver++(2S) (Lu et al. 2022,
//! arXiv:2211.01095, Algorithm 1, r = 1/2) with ancestral noise in both sub-steps; metric: W2
//! between the Gaussian fitted to the samples and the exact Gaussian target (printed with the
//! noise floor of exact samples), with strong order 1 along a Brownian tree as a check.

use anyhow::Result;
use clap::Parser;
use diffusion_examples::{ancestral_example, AncestralArgs};

fn main() -> Result<()> {
    ancestral_example("dpmpp_sde", "dpmpp-sde", &AncestralArgs::parse())
}
