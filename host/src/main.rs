fn main() -> std::process::ExitCode {
    launch_host::cli::main()
}
