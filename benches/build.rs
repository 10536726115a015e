//! Keeps libtorch_cuda.so linked into the training and sampling benchmarks, so they see a GPU
//! (see build-support/torch_cuda.rs; without the `train` feature there is no libtorch to link).
include!("../build-support/torch_cuda.rs");

fn main() {
    link_torch_cuda();
}
