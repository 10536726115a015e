// Shared by the build scripts of every package that links libtorch into a binary or test
// (`include!`d, not a module). It makes tch binaries see CUDA when libtorch has it.
//
// The pip wheel of PyTorch splits CUDA kernels into libtorch_cuda.so. Nothing in a tch binary
// references a symbol of it directly (kernels register themselves from static initializers), so
// the default `--as-needed` linking drops it from DT_NEEDED and `tch::Cuda::is_available()` is
// false even on a GPU machine. torch-sys (links = "tch") tells direct dependents where libtorch
// lives through DEP_TCH_LIBTORCH_LIB; when libtorch_cuda.so is there we link it with
// `--no-as-needed`. On a CPU-only libtorch nothing changes.

/// Emits the link arguments that keep libtorch_cuda.so (and libc10_cuda.so) in DT_NEEDED.
fn link_torch_cuda() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rustc-check-cfg=cfg(torch_cuda_linked)");
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    println!("cargo:rustc-env=DIFFUSION_LIBTORCH_LIB_AT_BUILD={}", dir.display());
    if dir.join("libtorch_cuda.so").exists() {
        let mut libs = String::from("-Wl,--no-as-needed,-ltorch_cuda");
        if dir.join("libc10_cuda.so").exists() {
            libs.push_str(",-lc10_cuda");
        }
        libs.push_str(",--as-needed");
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-arg={libs}");
        println!("cargo:rustc-cfg=torch_cuda_linked");
    }
}
