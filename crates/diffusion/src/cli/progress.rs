//! An indicatif progress bar as a sampling observer.

use diffusion::solvers::Observer;
use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `total` steps, hidden when stderr is not a terminal.
pub fn bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>14} [{bar:30}] {pos}/{len} steps, {elapsed_precise} (eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Advances a bar on every step (the initial state is not a step).
pub struct BarObserver<'a>(pub &'a ProgressBar);

impl<S> Observer<S> for BarObserver<'_> {
    fn on_step(&mut self, index: usize, _t: f64, _x: &S) {
        if index > 0 {
            self.0.inc(1);
        }
    }
}
