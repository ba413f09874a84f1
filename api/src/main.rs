//! The `portal` binary; everything lives in [`api::cli`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    api::cli::main()
}
