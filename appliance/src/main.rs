//! `appliance`: the command-line entry point (see `appliance --help`).

/// Large allocations (arenas, rings, buffers, FIX stores) go on hugepages; see
/// `platform::memory::HugePageAllocator`.
#[global_allocator]
static GLOBAL: appliance::platform::memory::HugePageAllocator =
    appliance::platform::memory::HugePageAllocator;

fn main() {
    use std::io::IsTerminal;
    use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // stderr (journald under systemd), and a file too with APPLIANCE_LOG_FILE (appended to;
    // rotate it with copytruncate). Only cold threads log once the appliance runs.
    let file = std::env::var_os("APPLIANCE_LOG_FILE").and_then(|p| {
        let p = std::path::PathBuf::from(p);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| {
                eprintln!(
                    "APPLIANCE_LOG_FILE {}: {e}; logging to stderr only",
                    p.display()
                )
            })
            .ok()
    });
    let (writer, ansi) = match file {
        Some(f) => (
            BoxMakeWriter::new(std::io::stderr.and(std::sync::Arc::new(f))),
            false,
        ),
        None => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        ),
    };
    let log = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal: journald and log files get plain text.
        .with_ansi(ansi);
    // JSON lines (one object per event, its fields under "fields") for log pipelines.
    match std::env::var("APPLIANCE_LOG_FORMAT").as_deref() {
        Ok("json") => log.json().init(),
        _ => log.init(),
    }
    std::process::exit(appliance::cli::main());
}
