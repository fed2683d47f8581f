//! The `appliance` command line (cold path).

use crate::config::{Config, IoBackend};
use crate::host::{CheckHostArgs, HostRequirements};
use crate::runtime::launch::{self, StartOptions};
use crate::runtime::signals::Signals;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Low-latency order-matching appliance: FIX 4.4 and binary order entry over io_uring, SPSC
/// rings into pinned matching engines, latency histograms for Prometheus.
///
/// With no subcommand, `appliance` runs on the embedded default configuration (FIX on
/// 127.0.0.1:9878, binary on 127.0.0.1:9879, exporter on 127.0.0.1:9100; see
/// `appliance --print-default-config`). Stop it with SIGINT or SIGTERM: sessions are logged
/// out and the latency summary is printed.
#[derive(Parser, Debug)]
#[command(name = "appliance", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Print the embedded default configuration (TOML) and exit.
    #[arg(long)]
    pub print_default_config: bool,
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `run`, accepted without the subcommand name.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the appliance (the default).
    Run(RunArgs),
    /// Validate a configuration and print it as the appliance understands it.
    CheckConfig(ConfigArg),
    /// Report, item by item, how well this host is tuned for the configuration.
    CheckHost(CheckHostArgs),
    /// Look at the journal offline (the appliance may be running: nothing is changed).
    #[command(subcommand)]
    Journal(JournalCommand),
    /// The operator's console: send a command to the running appliance. Commands:
    /// `sessions`; `kill session NAME`, `unkill session NAME` (NAME a FIX CompID or binary
    /// username, `fix:NAME`/`binary:NAME` for one protocol); `kill firm NAME`, `unkill firm
    /// NAME`; `halt SYMBOL`, `resume SYMBOL`, `instruments`; `disconnect NAME`; `cancel
    /// session|firm NAME [SYMBOL]`; `reload` (credentials, throttles and quotas from the
    /// configuration file). Prints the answer (JSON); exit 0 when it says ok, 1 when refused.
    Admin(AdminArgs),
    /// Watch the market-data feed in the terminal: each instrument's ladder (best levels
    /// each side: price, size, orders), the last trades and the feed's state (sequence, gaps
    /// repaired, heartbeats). Joins late by snapshot. Quit with q or Ctrl-C. `--once --for
    /// SECONDS`: no terminal UI; watch that long, print the view as text, exit 0 (1 if no
    /// packet arrived).
    Watch(WatchArgs),
}

/// `watch` arguments.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Configuration file (TOML) whose `market_data.destinations` (the first one's port; a
    /// multicast group is joined) and `recovery_listen` to use; the embedded default when
    /// absent.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the feed arrives (overrides the configuration): a local address, or a multicast
    /// group to join, and the port.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// The recovery service (overrides `market_data.recovery_listen`).
    #[arg(long, value_name = "ADDR")]
    pub recovery: Option<std::net::SocketAddr>,
    /// Price levels shown each side.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub levels: usize,
    /// No terminal UI: watch for `--for` seconds, then print the view as text and exit.
    #[arg(long)]
    pub once: bool,
    /// With `--once`: how long to watch.
    #[arg(
        long = "for",
        value_name = "SECONDS",
        default_value_t = 5.0,
        requires = "once"
    )]
    pub for_secs: f64,
}

/// `admin` arguments.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Configuration file (TOML) whose `admin.socket` to use; the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The console's socket (overrides the configuration's `admin.socket`).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The command, e.g. `sessions` or `kill session CLIENT1`.
    #[arg(required = true, num_args = 1..)]
    pub command: Vec<String>,
}

/// `journal` subcommands.
#[derive(Subcommand, Debug)]
pub enum JournalCommand {
    /// Check every record and snapshot. Exit 0: intact; 1: a torn record at the tail (the
    /// next start cuts it); 2: damage the appliance refuses to start on (file and offset
    /// named).
    Verify(JournalDir),
    /// Print records readably, one a line.
    Inspect(InspectArgs),
    /// Rebuild the state offline (snapshot + journal) and print its hash.
    Replay(ReplayArgs),
}

/// Where the journal is.
#[derive(Args, Debug, Default)]
pub struct JournalDir {
    /// Configuration file (TOML) whose `journal.dir` to use; the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The journal directory (overrides the configuration's `journal.dir`).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl JournalDir {
    fn resolve(&self) -> anyhow::Result<(Config, PathBuf)> {
        let cfg = load_config(self.config.as_deref())?;
        let dir = self.dir.clone().unwrap_or_else(|| cfg.journal.dir.clone());
        Ok((cfg, dir))
    }
}

/// `journal inspect` options.
#[derive(Args, Debug, Default)]
pub struct InspectArgs {
    /// Where the journal is.
    #[command(flatten)]
    pub at: JournalDir,
    /// First record to print (journal sequence number).
    #[arg(long, value_name = "SEQ")]
    pub from: Option<u64>,
    /// Print at most this many records.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Only records of this kind: command, out, seq, start, stop, control.
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
}

/// `journal replay` options.
#[derive(Args, Debug, Default)]
pub struct ReplayArgs {
    /// Where the journal is.
    #[command(flatten)]
    pub at: JournalDir,
    /// Start from this snapshot (the journal sequence number it covers; see `journal
    /// verify`) instead of the newest valid one.
    #[arg(long, value_name = "SEQ", conflicts_with = "no_snapshot")]
    pub snapshot: Option<u64>,
    /// Replay the whole journal from its first record, ignoring snapshots.
    #[arg(long)]
    pub no_snapshot: bool,
}

fn journal(cmd: JournalCommand) -> anyhow::Result<i32> {
    use crate::recovery::recover::SnapshotChoice;
    use crate::recovery::tool;
    let mut out = std::io::stdout().lock();
    match cmd {
        JournalCommand::Verify(at) => {
            let (_, dir) = at.resolve()?;
            tool::verify(&dir, &mut out)
        }
        JournalCommand::Inspect(a) => {
            let (_, dir) = a.at.resolve()?;
            let only = match &a.kind {
                Some(k) => Some(tool::parse_kind(k).ok_or_else(|| {
                    anyhow::anyhow!("--kind {k}: one of command, out, seq, start, stop")
                })?),
                None => None,
            };
            tool::inspect(&dir, a.from, a.count, only, &mut out)
        }
        JournalCommand::Replay(a) => {
            let (cfg, dir) = a.at.resolve()?;
            let choice = match (a.snapshot, a.no_snapshot) {
                (Some(s), _) => SnapshotChoice::At(s),
                (None, true) => SnapshotChoice::None,
                (None, false) => SnapshotChoice::Latest,
            };
            tool::replay(&cfg, &dir, choice, &mut out)
        }
    }
}

/// `--config FILE`.
#[derive(Args, Debug, Default)]
pub struct ConfigArg {
    /// Configuration file (TOML); the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// I/O backend override.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum IoArg {
    /// io_uring, falling back to epoll if the host refuses it.
    Auto,
    /// io_uring or fail.
    IoUring,
    /// epoll.
    Epoll,
}

/// `run` options.
#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// Configuration file (TOML); the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override `gateway.io`: which I/O backend the gateways use.
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub io: Option<IoArg>,
    /// Stop by itself after this many seconds (tests, benchmarks); default: run until signalled.
    #[arg(long, value_name = "SECONDS")]
    pub run_for: Option<f64>,
    /// Also write the latency summary to this file at shutdown.
    #[arg(long, value_name = "FILE")]
    pub histograms: Option<PathBuf>,
}

/// Loads `path`, or the embedded default.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default_config(),
    })
}

/// What the host must provide for `cfg` (for `check-host`).
pub fn host_requirements(cfg: &Config, nic: Option<String>) -> HostRequirements {
    let mut pinned_cores: Vec<usize> = cfg.engine.cores.clone();
    pinned_cores.extend(&cfg.gateway.cores);
    HostRequirements {
        pinned_cores,
        hugepage_bytes: cfg.memory_estimate(),
        nic,
    }
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    if cli.print_default_config {
        print!("{}", crate::config::DEFAULT_TOML);
        return 0;
    }
    let result = match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(args),
        Some(Command::CheckConfig(a)) => load_config(a.config.as_deref()).map(|c| {
            for w in c.security_warnings() {
                eprintln!("warning: {w}");
            }
            print!("{}", c.to_toml());
            0
        }),
        Some(Command::CheckHost(args)) => (|| {
            let cfg = load_config(args.config.as_deref())?;
            let req = host_requirements(&cfg, args.nic.clone());
            Ok(crate::host::run(&req, &args, &mut std::io::stdout())?)
        })(),
        Some(Command::Journal(cmd)) => journal(cmd),
        Some(Command::Admin(a)) => admin(a),
        Some(Command::Watch(a)) => watch(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("appliance: {e:#}");
            2
        }
    }
}

fn admin(a: AdminArgs) -> anyhow::Result<i32> {
    let socket = match a.socket {
        Some(p) => p,
        None => {
            let cfg = load_config(a.config.as_deref())?;
            if cfg.admin.socket.is_empty() {
                anyhow::bail!("admin.socket is empty in the configuration: no console");
            }
            PathBuf::from(cfg.admin.socket)
        }
    };
    let answer = crate::admin::client::request(&socket, &a.command)?;
    println!("{answer}");
    let ok = serde_json::from_str::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v["ok"].as_bool())
        .unwrap_or(false);
    Ok(if ok { 0 } else { 1 })
}

fn watch(a: WatchArgs) -> anyhow::Result<i32> {
    let md = if a.listen.is_some() && a.recovery.is_some() {
        crate::config::MarketDataSection::default()
    } else {
        load_config(a.config.as_deref())?.market_data
    };
    let listen = match a.listen {
        Some(l) => l,
        None => *md.destinations.first().ok_or_else(|| {
            anyhow::anyhow!("market_data.destinations is empty: give --listen ADDR")
        })?,
    };
    let recovery = match a.recovery {
        Some(r) => Some(r),
        None if md.recovery_listen.is_empty() => None,
        None => {
            let mut r: std::net::SocketAddr = md.recovery_listen.parse().map_err(|e| {
                anyhow::anyhow!("market_data.recovery_listen {:?}: {e}", md.recovery_listen)
            })?;
            // A service listening on every interface is reached on loopback.
            if r.ip().is_unspecified() {
                r.set_ip(match r {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            Some(r)
        }
    };
    if !(a.for_secs.is_finite() && a.for_secs >= 0.0) {
        anyhow::bail!("--for {}: a number of seconds", a.for_secs);
    }
    crate::marketdata::watch::run(&crate::marketdata::watch::Options {
        listen,
        recovery,
        levels: a.levels.max(1),
        once: a.once.then(|| Duration::from_secs_f64(a.for_secs)),
    })
}

/// Exit status when a thread died (EX_SOFTWARE): systemd's `Restart=on-failure` restarts.
pub const EXIT_THREAD_DIED: i32 = 70;

fn run(args: RunArgs) -> anyhow::Result<i32> {
    let cfg = load_config(args.config.as_deref())?;
    for w in cfg.security_warnings() {
        tracing::warn!("{w}");
    }
    if let Some(t) = crate::runtime::fault::arm_from_env() {
        tracing::warn!(
            "APPLIANCE_INJECT_PANIC: thread {t} will panic about a second after it starts (a \
             test hook for supervision)"
        );
    }
    // Before any thread exists, so every thread inherits the blocked mask.
    let signals = Signals::block();
    let lock = crate::platform::lock_memory();
    tracing::info!("memory locking: {lock}");
    let opts = StartOptions {
        io: args.io.map(|i| match i {
            IoArg::Auto => IoBackend::Auto,
            IoArg::IoUring => IoBackend::IoUring,
            IoArg::Epoll => IoBackend::Epoll,
        }),
        config_path: args.config.clone(),
        ..StartOptions::default()
    };
    let running = launch::start(&cfg, &opts)?;
    let mib = |b: usize| b.div_ceil(1 << 20);
    let [(_, huge), (_, thp), (_, small)] = crate::platform::memory::large_allocation_bytes();
    tracing::info!(
        "memory: {} MiB on explicit 2 MiB hugepages, {} MiB on transparent hugepages (advised), {} MiB on normal pages",
        mib(huge),
        mib(thp),
        mib(small)
    );
    for (g, (name, fallback)) in running.backends.iter().enumerate() {
        match fallback {
            None => tracing::info!("gateway {g}: I/O backend {name}"),
            Some(why) => {
                tracing::warn!("gateway {g}: io_uring unavailable ({why}); running on {name}")
            }
        }
    }
    tracing::info!(
        "threading: {} ({})",
        running.plan.mode.name(),
        running.plan.reason
    );
    tracing::info!(
        "ready: FIX on {}, binary on {}, exporter on {}, {} engine(s), {} gateway(s), {}",
        running.fix_addr,
        running.binary_addr,
        running
            .exporter_addr
            .map_or_else(|| "none".to_string(), |a| a.to_string()),
        cfg.engine.threads,
        cfg.gateway.threads,
        match running.plan.mode {
            crate::runtime::threading::Mode::Shared => "on one shared thread".to_string(),
            crate::runtime::threading::Mode::Dedicated =>
                format!("{} hot threads", cfg.engine.threads + cfg.gateway.threads),
        }
    );
    let _ = crate::platform::notify_ready();
    let started = Instant::now();
    let deadline = args
        .run_for
        .map(|s| started + Duration::from_secs_f64(s.max(0.0)));
    let mut journal_watch = JournalWatch::default();
    loop {
        if let Some(stats) = &running.journal_stats {
            journal_watch.check(stats);
        }
        let dead = running.dead_threads();
        if !dead.is_empty() {
            tracing::error!(
                "thread(s) {} died (the panic is above): exiting with status {EXIT_THREAD_DIED} \
                 for the supervisor to restart the appliance; the journal holds everything \
                 acknowledged",
                dead.join(", ")
            );
            // A moment for a scrape to see /health/live fail, then out, without the graceful
            // shutdown (which would wait on the dead thread).
            std::thread::sleep(Duration::from_secs(1));
            std::process::exit(EXIT_THREAD_DIED);
        }
        let slice = match deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1)),
            None => Duration::from_secs(1),
        };
        if let Some(sig) = signals.wait(slice) {
            tracing::info!("signal {sig}: shutting down (logging sessions out)");
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            tracing::info!("--run-for elapsed: shutting down");
            break;
        }
    }
    let _ = crate::platform::notify_stopping();
    let stopped = running.stop();
    match stopped.replica_hash {
        Some(h) if h == stopped.state_hash => tracing::info!(
            "state hash at shutdown {:016x}; the journal's replica agrees (final snapshot written)",
            stopped.state_hash
        ),
        Some(h) => tracing::error!(
            "state hash at shutdown {:016x}, but the journal's replica has {h:016x}: replay is \
             not deterministic (a bug)",
            stopped.state_hash
        ),
        None => tracing::info!("state hash at shutdown {:016x}", stopped.state_hash),
    }
    if let Some(e) = &stopped.journal_error {
        tracing::error!("journal at shutdown: {e}");
    }
    let summary = stopped.histograms.summary();
    eprint!("latency (TSC, inside the appliance):\n{summary}");
    if let Some(path) = args.histograms {
        std::fs::write(&path, &summary)?;
    }
    tracing::info!("stopped");
    Ok(0)
}

/// Logs the journal's failing spells from the main thread (the journal agent never logs):
/// once when writes or segment preparation start failing, with the first error, and once
/// when they succeed again.
#[derive(Default)]
struct JournalWatch {
    refusing: bool,
}

impl JournalWatch {
    fn check(&mut self, stats: &crate::runtime::journal_agent::JournalStats) {
        let refusing = stats.gate.refusing();
        if refusing == self.refusing {
            return;
        }
        self.refusing = refusing;
        let error = stats.last_error.lock().ok().and_then(|mut e| e.take());
        if refusing {
            tracing::error!(
                "journal unavailable ({}): new orders, cancels and replaces are refused with \
                 reject 114 (journal_unavailable) until it can write again; acknowledgements \
                 of what was accepted wait for it",
                error.as_deref().unwrap_or("no error text")
            );
        } else {
            tracing::warn!("journal writing again: orders are accepted");
        }
    }
}
