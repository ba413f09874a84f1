//! The `portal` command line, built inside the test package so the HTTP tests
//! start exactly the code they were compiled with.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    portal::main()
}
