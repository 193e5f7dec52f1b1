fn main() -> std::process::ExitCode {
    cronstack::cli::main()
}
