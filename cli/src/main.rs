//! The `portal` binary; everything lives in the `portal` library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    portal::main()
}
