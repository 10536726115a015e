//! `diffusion doctor`.

use anyhow::Result;

#[cfg(feature = "tch")]
pub fn run() -> Result<()> {
    let report = diffusion::models::doctor();
    print!("{report}");
    if !report.healthy() {
        anyhow::bail!(
            "libtorch's matrix product disagrees with the reference: the installation is broken"
        );
    }
    Ok(())
}

#[cfg(not(feature = "tch"))]
pub fn run() -> Result<()> {
    anyhow::bail!(
        "this `diffusion` was built without the `tch` feature, so libtorch is not linked; \
         build it with `cargo xtask run -- build -p diffusion` (the feature is on by default)"
    )
}
