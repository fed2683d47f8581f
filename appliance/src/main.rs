//! `appliance`: the command-line entry point (see `appliance --help`).

/// Large allocations (arenas, rings, buffers, FIX stores) go on hugepages; see
/// `platform::memory::HugePageAllocator`.
#[global_allocator]
static GLOBAL: appliance::platform::memory::HugePageAllocator =
    appliance::platform::memory::HugePageAllocator;

fn main() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let log = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal: journald and log files get plain text.
        .with_ansi(std::io::stderr().is_terminal());
    // JSON lines (one object per event, its fields under "fields") for log pipelines.
    match std::env::var("APPLIANCE_LOG_FORMAT").as_deref() {
        Ok("json") => log.json().init(),
        _ => log.init(),
    }
    std::process::exit(appliance::cli::main());
}
