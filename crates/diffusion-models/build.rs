//! Keeps libtorch_cuda.so linked into this package's tests (see build-support/torch_cuda.rs).
include!("../../build-support/torch_cuda.rs");

fn main() {
    link_torch_cuda();
}
