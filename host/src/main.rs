//! The `launch-host` binary: arguments, commands, rendering and the terminal. The work happens
//! in the crates below it: `launch-engine` (runs), which stands on `launch-runtime` (plugins)
//! and `launch-targets` (stores, flags, the probe, the embedded target).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
