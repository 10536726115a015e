//! DPM-Solver++(2S) ancestral (k-diffusion `sample_dpmpp_2s_ancestral`): a DPM-Solver++(2S) step
//! (Lu et al. 2022, arXiv:2211.01095, Algorithm 1) down to the DDIM-eta noise level (Song et al.
//! 2021, arXiv:2010.02502, Eq. 16), then fresh noise; metric: W2 between the Gaussian fitted to
//! the samples and the exact Gaussian target (printed with the noise floor of exact samples), with
//! strong order 1 along a Brownian tree as a check.

use anyhow::Result;
use clap::Parser;
use diffusion_examples::{ancestral_example, AncestralArgs};

fn main() -> Result<()> {
    ancestral_example(
        "dpmpp_2s_ancestral",
        "dpmpp-2s-ancestral",
        &AncestralArgs::parse(),
    )
}
