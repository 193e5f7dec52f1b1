// glibc's malloc was a fifth of an API read's CPU time (perf, bench/RESULTS.md "API reads"):
// a request allocates many small strings. mimalloc's thread-local free lists are much cheaper.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cronstack::cli::main()
}
