//! Subcommands of the `diffusion` program.

mod demo;
#[cfg(feature = "tch")]
mod demo_train;
mod doctor;
mod eval;
mod generate;
#[cfg(feature = "tch")]
mod heap;
mod list;
mod progress;
#[cfg(feature = "tch")]
mod report;
mod sample;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Diffusion-model research toolkit: sample analytic targets with any solver, evaluate samples,
/// check the libtorch installation, and list every method with its paper.
#[derive(Debug, Parser)]
#[command(name = "diffusion", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check libtorch: version, CUDA availability, device names and a matmul check.
    Doctor,
    /// Sample an analytic Gaussian-mixture target with its exact denoiser.
    Sample(sample::SampleArgs),
    /// Evaluate: samples (.npy) against an analytic target (distances), generated images by
    /// FMNIST-FD (--fmnist-fd), or a trained run's likelihood through the PF-ODE (--nll).
    Eval(eval::EvalArgs),
    /// List every solver with its paper, order and parameters (and the schedules and grids).
    Solvers,
    /// List every method of the toolkit with paper, module, example, test and status.
    Methods,
    /// A short end-to-end run: sample a 2-D mixture with several solvers, print distances to
    /// the truth, write a PNG; then train a small MLP on a 2-D toy (and a tiny U-Net on
    /// Fashion-MNIST when installed), sample it and write PNGs.
    Demo(demo::DemoArgs),
    /// Train a network (MLP, U-Net, DiT) on a 2-D toy or Fashion-MNIST from a TOML
    /// configuration (configs/*.toml), then sample it, write samples and a picture, and print
    /// its sliced W2 to held-out data next to the noise floor.
    Train(train::TrainArgs),
    /// Sample a trained network again without training: a `diffusion train` run folder (its
    /// config and EMA weights) or any PyTorch state_dict with a configuration, with the
    /// configured or another solver; writes samples.npy and samples.png, prints the metric line.
    Generate(generate::GenerateArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Doctor => doctor::run(),
        Command::Sample(a) => sample::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Solvers => list::solvers(),
        Command::Methods => list::methods(),
        Command::Demo(a) => demo::run(a),
        Command::Train(a) => train::run(a),
        Command::Generate(a) => generate::run(a),
    }
}
