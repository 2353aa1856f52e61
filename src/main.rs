//! The `cdcflow` binary: a thin wrapper over [`cdcflow::cli`].

fn main() -> std::process::ExitCode {
    cdcflow::cli::main_with_args(std::env::args_os())
}

/// mimalloc: the dataflow allocates many small rows; glibc's allocator spent about 40% of the
/// time in malloc/free on the scaling benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
