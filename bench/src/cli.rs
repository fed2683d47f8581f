//! `bench latency`, `bench floor` and `bench plot`: arguments, orchestration and output
//! (cold path: everything here runs before or after the measured loop in `crate::load`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use crate::floor::EchoServer;
use crate::latency::Percentiles;
use crate::load::{self, Mode, RunResult, RunSpec, Wait};
use crate::orders::{self, Mix, MixGen, PriceGrid, Replay, Source};
use crate::report::{self, Summary};
use crate::venue::{Identity, Protocol};

/// Protocol choice on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtoArg {
    /// FIX 4.4 (default port 9878).
    Fix,
    /// The appliance's binary protocol (default port 9879).
    Binary,
}

/// Scheduling mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Fixed rate, latency from the intended send time.
    Open,
    /// One outstanding request per connection.
    Closed,
    /// `--window` outstanding requests per connection (throughput).
    Pipelined,
}

/// Options shared by `latency` and `floor`.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Scheduling: open loop at `--rate`, closed loop, or pipelined with `--window`
    /// (default: open for `latency`, closed, a ping-pong, for `floor`).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Requests per second over all connections (open loop).
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
    /// Outstanding requests per connection (pipelined).
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Warm-up seconds: sent, answered, not recorded.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Stop after this many measured requests (or at --duration, whichever comes first).
    #[arg(long)]
    pub orders: Option<u64>,
    /// Client connections.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// How the generator waits: spin (lowest latency, takes a core) or block (ppoll).
    #[arg(long, value_enum, default_value_t = Wait::Block)]
    pub wait: Wait,
    /// Pin the generator thread to this core.
    #[arg(long)]
    pub core: Option<usize>,
    /// Print one JSON line instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// No progress bar (CI logs).
    #[arg(long)]
    pub plain: bool,
    /// Write LABEL.hgrm, LABEL.json and LABEL.svg here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Name of the report files (default: PROTOCOL-MODE-RATE).
    #[arg(long)]
    pub label: Option<String>,
    /// Seconds to wait for the last replies.
    #[arg(long, default_value_t = 2.0)]
    pub drain: f64,
}

/// `bench latency`.
#[derive(Debug, Clone, Args)]
pub struct LatencyArgs {
    /// Wire protocol.
    #[arg(long, value_enum, default_value_t = ProtoArg::Binary)]
    pub protocol: ProtoArg,
    /// Venue host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Venue port (default 9878 for FIX, 9879 for binary: the appliance's defaults).
    #[arg(long)]
    pub port: Option<u16>,
    /// Scheduling, duration and output options.
    #[command(flatten)]
    pub common: Common,
    /// Comma-separated binary usernames / FIX SenderCompIDs, one per connection
    /// (default CLIENT1..CLIENTn).
    #[arg(long, value_delimiter = ',')]
    pub sessions: Vec<String>,
    /// FIX TargetCompID of the venue.
    #[arg(long, default_value = "APPLIANCE")]
    pub target_comp_id: String,
    /// FIX Username (553).
    #[arg(long)]
    pub username: Option<String>,
    /// Password (binary password / FIX 554).
    #[arg(long)]
    pub password: Option<String>,
    /// FIX: do not send ResetSeqNumFlag=Y on Logon (the venue must then expect sequence 1).
    #[arg(long)]
    pub no_reset_seq: bool,
    /// Instruments as SYMBOL:REFERENCE_PRICE, comma-separated.
    #[arg(long, default_value = "ACME:100.00,BOLT:50.00,CRUX:25.00")]
    pub symbols: String,
    /// Implied decimals of a price.
    #[arg(long, default_value_t = 4)]
    pub price_decimals: u8,
    /// Tick size in price units (100 = 0.01 with 4 decimals).
    #[arg(long, default_value_t = 100)]
    pub tick_units: i64,
    /// Order mix (the proportions of `workloads/`), when no --workload is given.
    #[arg(long, value_enum, default_value_t = Mix::Standard)]
    pub mix: Mix,
    /// Replay a workload file (workloads/gen_workload.py) instead of generating the mix.
    #[arg(long)]
    pub workload: Option<PathBuf>,
    /// Seed of the generated mix.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Most orders one connection keeps resting (then it cancels).
    #[arg(long, default_value_t = 1_000)]
    pub max_live: usize,
    /// Also measure the TCP floor with the run's message sizes, right after, and report the
    /// ratio.
    #[arg(long)]
    pub floor: bool,
    /// Floor server waits by spinning (compare with a busy-spinning venue).
    #[arg(long)]
    pub floor_spin: bool,
}

/// `bench floor`.
#[derive(Debug, Clone, Args)]
pub struct FloorArgs {
    /// Take the message sizes of this protocol (binary: 48 B order, 64 B ack; FIX: typical
    /// NewOrderSingle and ExecutionReport sizes of the appliance).
    #[arg(long, value_enum, default_value_t = ProtoArg::Binary)]
    pub protocol: ProtoArg,
    /// Request bytes (overrides --protocol).
    #[arg(long)]
    pub request_bytes: Option<usize>,
    /// Reply bytes (overrides --protocol).
    #[arg(long)]
    pub reply_bytes: Option<usize>,
    /// The echo server spins instead of blocking in read.
    #[arg(long)]
    pub server_spin: bool,
    /// Pin the echo server's threads to this core.
    #[arg(long)]
    pub server_core: Option<usize>,
    /// Scheduling, duration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `bench plot`.
#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// Output SVG file.
    #[arg(long)]
    pub out: PathBuf,
    /// Plot title.
    #[arg(long, default_value = "Round trip by percentile")]
    pub title: String,
    /// Runs to overlay: LABEL=FILE.hgrm (or FILE.hgrm, labelled by its file name).
    #[arg(required = true)]
    pub runs: Vec<String>,
}

/// Typical FIX sizes on the appliance (NewOrderSingle, ExecutionReport New), measured by
/// `bench latency --protocol fix` (`request_bytes`, `reply_bytes`).
const FIX_SIZES: (usize, usize) = (150, 260);
const BINARY_SIZES: (usize, usize) = (48, 64);

fn mode_of(c: &Common, default: ModeArg) -> Mode {
    match c.mode.unwrap_or(default) {
        ModeArg::Open => Mode::Open { rate: c.rate },
        ModeArg::Closed => Mode::Closed,
        ModeArg::Pipelined => Mode::Pipelined {
            window: c.window.max(1),
        },
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// A token base unique to this run (tokens are unique per user for the venue's whole run, so
/// a second bench run against the same appliance must not reuse the first one's). Layout
/// below the base: connection `i` (< 16) uses `i << 26 ..` (64 Mi tokens each), the closing
/// mass cancels `1 << 30 ..`; runs starting in different seconds never overlap.
fn token_base() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs & 0xFFFF_FFFF) << 31
}

fn summarize(r: &RunResult, protocol: &str, c: &Common, connections: usize, mode: Mode) -> Summary {
    let p = r.corrected();
    Summary {
        protocol: protocol.to_string(),
        mode: mode.name().to_string(),
        connections,
        requested_rate: match mode {
            Mode::Open { rate } => rate,
            _ => 0,
        },
        achieved_rate: r.achieved_rate(),
        reply_rate: r.reply_rate(),
        orders: r.recorder.recorded,
        unanswered: r.unanswered,
        p50_ns: p.p50_ns,
        p90_ns: p.p90_ns,
        p99_ns: p.p99_ns,
        p999_ns: p.p999_ns,
        p9999_ns: p.p9999_ns,
        max_ns: p.max_ns,
        mean_ns: p.mean_ns,
        uncorrected: Percentiles::of(&r.recorder.uncorrected),
        request_bytes: r.avg_request_bytes,
        reply_bytes: r.avg_reply_bytes,
        warmup_s: c.warmup,
        duration_s: c.duration,
        wait: format!("{:?}", c.wait).to_lowercase(),
        floor: None,
        p50_floor_ratio: None,
        errors: r.errors.clone(),
    }
}

fn write_reports(
    dir: &Path,
    label: &str,
    s: &Summary,
    r: &RunResult,
    floor: Option<&RunResult>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let hgrm = report::write_hgrm(&r.recorder.corrected);
    std::fs::write(dir.join(format!("{label}.hgrm")), &hgrm)?;
    std::fs::write(
        dir.join(format!("{label}.json")),
        serde_json::to_string_pretty(s)? + "\n",
    )?;
    let mut series = vec![report::Series {
        label: format!("{} {} ({} loop)", label, s.protocol, s.mode),
        rows: report::parse_hgrm(&hgrm)?,
    }];
    if s.mode == "open" {
        series.push(report::Series {
            label: "same run, uncorrected (from actual send)".into(),
            rows: report::parse_hgrm(&report::write_hgrm(&r.recorder.uncorrected))?,
        });
    }
    if let Some(f) = floor {
        let fh = report::write_hgrm(&f.recorder.corrected);
        std::fs::write(dir.join(format!("{label}-floor.hgrm")), &fh)?;
        series.push(report::Series {
            label: "TCP floor, same sizes".into(),
            rows: report::parse_hgrm(&fh)?,
        });
    }
    report::plot_svg(
        &dir.join(format!("{label}.svg")),
        &format!("{label}: round trip by percentile"),
        &series,
    )
}

fn print(s: &Summary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(s)?);
    } else {
        print!("{}", s.render());
    }
    Ok(())
}

fn run_floor(
    request: usize,
    reply: usize,
    c: &Common,
    mode: Mode,
    server_spin: bool,
    server_core: Option<usize>,
) -> anyhow::Result<RunResult> {
    let proto = Protocol::Echo { request, reply };
    let n = c.connections.max(1);
    let srv = EchoServer::start(request, reply, n, server_spin, server_core)?;
    let grid = PriceGrid {
        decimals: 4,
        tick_units: 100,
    };
    let symbols = orders::parse_symbols("X:1", grid).map_err(anyhow::Error::msg)?;
    let base = token_base();
    let spec = RunSpec {
        addr: srv.addr,
        proto,
        identities: (0..n)
            .map(|i| Identity {
                user: format!("floor{i}"),
                target: String::new(),
                username: None,
                password: None,
                reset_seq: false,
            })
            .collect(),
        mode,
        warmup: secs(c.warmup),
        duration: secs(c.duration),
        orders: c.orders,
        wait: c.wait,
        progress: !c.plain && !c.json,
        sources: (0..n)
            .map(|i| {
                Source::Mix(MixGen::new(
                    Mix::Passive,
                    i as u64 + 1,
                    &symbols,
                    grid,
                    base + ((i as u64) << 26),
                    1_000,
                ))
            })
            .collect(),
        symbols,
        grid,
        core: c.core,
        drain: secs(c.drain),
        mass_cancel_token: Some(base + (1 << 30)),
    };
    let r = load::run(spec)?;
    srv.join();
    Ok(r)
}

/// `bench latency`.
pub fn latency(a: &LatencyArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let (proto, default_port, pname) = match a.protocol {
        ProtoArg::Fix => (Protocol::Fix, 9878, "fix"),
        ProtoArg::Binary => (Protocol::Binary, 9879, "binary"),
    };
    let port = a.port.unwrap_or(default_port);
    let addr: SocketAddr = (a.host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {}", a.host))?
        .next()
        .context("no address")?;
    let n = c.connections.max(1);
    if n > 16 {
        bail!("at most 16 connections (the token layout gives each 64 Mi tokens)");
    }
    let users: Vec<String> = if a.sessions.is_empty() {
        (1..=n).map(|i| format!("CLIENT{i}")).collect()
    } else {
        a.sessions.clone()
    };
    if users.len() < n {
        bail!(
            "{n} connections need {n} sessions/users, got {}: pass --sessions A,B,... \
             (each session can have one connection; bench/configs/many-sessions.toml has 8)",
            users.len()
        );
    }
    let grid = PriceGrid {
        decimals: a.price_decimals,
        tick_units: a.tick_units,
    };
    let symbols = orders::parse_symbols(&a.symbols, grid).map_err(anyhow::Error::msg)?;
    let base = token_base();
    let sources: Vec<Source> = match &a.workload {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let w = crate::workload::parse(&text)?;
            orders::partition(&w.commands, n)
                .into_iter()
                .enumerate()
                .map(|(i, cmds)| {
                    Source::Replay(
                        Replay::new(cmds, &symbols, grid, base + ((i as u64) << 26))
                            .same_token_replace(proto == Protocol::Binary),
                    )
                })
                .collect()
        }
        None => (0..n)
            .map(|i| {
                Source::Mix(
                    MixGen::new(
                        a.mix,
                        a.seed.wrapping_add(i as u64),
                        &symbols,
                        grid,
                        base + ((i as u64) << 26),
                        a.max_live,
                    )
                    .same_token_replace(proto == Protocol::Binary),
                )
            })
            .collect(),
    };
    let mode = mode_of(c, ModeArg::Open);
    let spec = RunSpec {
        addr,
        proto,
        identities: users[..n]
            .iter()
            .map(|u| Identity {
                user: u.clone(),
                target: a.target_comp_id.clone(),
                username: a.username.clone(),
                password: a.password.clone(),
                reset_seq: !a.no_reset_seq,
            })
            .collect(),
        mode,
        warmup: secs(c.warmup),
        duration: secs(c.duration),
        orders: c.orders,
        wait: c.wait,
        progress: !c.plain && !c.json,
        symbols,
        grid,
        sources,
        core: c.core,
        drain: secs(c.drain),
        // The rest mix builds a book to keep: no closing mass cancel.
        mass_cancel_token: (a.workload.is_some() || a.mix != Mix::Rest).then_some(base + (1 << 30)),
    };
    let r = load::run(spec)?;
    let mut s = summarize(&r, pname, c, n, mode);
    let floor = if a.floor {
        let (req, rep) = if r.avg_request_bytes >= 8 {
            (
                r.avg_request_bytes as usize,
                (r.avg_reply_bytes as usize).max(8),
            )
        } else {
            match proto {
                Protocol::Fix => FIX_SIZES,
                _ => BINARY_SIZES,
            }
        };
        // The floor runs in the venue run's mode, so the ratio compares like with like.
        let f = run_floor(req, rep, c, mode, a.floor_spin, None)?;
        let fs = summarize(&f, "tcp-floor", c, n, mode);
        if fs.p50_ns > 0 {
            s.p50_floor_ratio = Some(s.p50_ns as f64 / fs.p50_ns as f64);
        }
        s.floor = Some(Box::new(fs));
        Some(f)
    } else {
        None
    };
    let label = c.label.clone().unwrap_or_else(|| match mode {
        Mode::Open { rate } => format!("{pname}-open-{rate}"),
        Mode::Closed => format!("{pname}-closed"),
        Mode::Pipelined { window } => format!("{pname}-pipelined-w{window}"),
    });
    if let Some(dir) = &c.out {
        write_reports(dir, &label, &s, &r, floor.as_ref())?;
    }
    print(&s, c.json)?;
    if r.recorder.recorded == 0 {
        bail!("no replies recorded: {}", r.errors.join("; "));
    }
    Ok(())
}

/// `bench floor`.
pub fn floor(a: &FloorArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let (dreq, drep) = match a.protocol {
        ProtoArg::Fix => FIX_SIZES,
        ProtoArg::Binary => BINARY_SIZES,
    };
    let req = a.request_bytes.unwrap_or(dreq).max(8);
    let rep = a.reply_bytes.unwrap_or(drep).max(8);
    let mode = mode_of(c, ModeArg::Closed);
    let r = run_floor(req, rep, c, mode, a.server_spin, a.server_core)?;
    let s = summarize(&r, "tcp-floor", c, c.connections.max(1), mode);
    let label = c
        .label
        .clone()
        .unwrap_or_else(|| format!("floor-{req}-{rep}"));
    if let Some(dir) = &c.out {
        write_reports(dir, &label, &s, &r, None)?;
    }
    print(&s, c.json)?;
    if r.recorder.recorded == 0 {
        bail!("no replies recorded: {}", r.errors.join("; "));
    }
    Ok(())
}

/// `bench plot`.
pub fn plot(a: &PlotArgs) -> anyhow::Result<()> {
    let mut series = Vec::new();
    for run in &a.runs {
        let (label, path) = match run.split_once('=') {
            Some((l, p)) => (l.to_string(), PathBuf::from(p)),
            None => {
                let p = PathBuf::from(run);
                let l = p
                    .file_stem()
                    .map_or_else(|| run.clone(), |s| s.to_string_lossy().into_owned());
                (l, p)
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let rows =
            report::parse_hgrm(&text).with_context(|| format!("parsing {}", path.display()))?;
        series.push(report::Series { label, rows });
    }
    report::plot_svg(&a.out, &a.title, &series)?;
    println!("wrote {}", a.out.display());
    Ok(())
}
