//! The `tfhub` command line. Uses only the library's public API (and, as its allocator, the
//! kernels crate's [`tfhub_kernels::alloc::CacheAligned`]).
mod cli;

/// Large tensors on cache-line boundaries, so the vector kernels' loads do not straddle lines.
#[global_allocator]
static ALLOC: tfhub_kernels::alloc::CacheAligned = tfhub_kernels::alloc::CacheAligned;

fn main() -> std::process::ExitCode {
    cli::main()
}
