//! The `cdcflow` binary: a thin wrapper over [`cdcflow::cli`].

fn main() -> std::process::ExitCode {
    cdcflow::cli::main_with_args(std::env::args_os())
}
