//! `bench`: the command-line entry point.

use std::path::PathBuf;

use anyhow::Context;
use bench::book::{self, BookBenchOptions};
use bench::cli::{FloorArgs, LatencyArgs, PlotArgs};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bench",
    version,
    about = "Latency bench for the matching appliance"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load a FIX 4.4 or binary venue (the appliance by default) and measure the round trip
    /// of every order: open loop at a fixed rate (coordinated-omission corrected), closed loop
    /// (one outstanding order per connection) or pipelined (throughput).
    Latency(Box<LatencyArgs>),
    /// Measure the machine's floor: a plain loopback TCP ping-pong with the venue's message
    /// sizes, against an in-process echo server.
    Floor(FloorArgs),
    /// Overlay the latency-by-percentile curves of several `.hgrm` files in one SVG.
    Plot(PlotArgs),
    /// Replay a workload file (workloads/gen_workload.py) through one engine on this thread
    /// and print throughput and per-command latency percentiles.
    Book {
        /// Workload file.
        #[arg(long)]
        workload: PathBuf,
        /// Print one JSON line instead of the text report.
        #[arg(long)]
        json: bool,
        /// Runs; every figure is the median over runs.
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Order arena size (default: the workload's worst case, every GTC order resting).
        #[arg(long)]
        max_orders: Option<u32>,
        /// Price levels reserved per book side.
        #[arg(long, default_value_t = 8192)]
        levels: u32,
        /// Do not pass the next commands' prefetch hints to the engine.
        #[arg(long)]
        no_prefetch: bool,
    },
    /// Time mass cancels (by owner, on disconnect) on one book holding many resting orders.
    MassCancel {
        /// Resting orders in the book before the first mass cancel.
        #[arg(long, default_value_t = 1_000_000)]
        orders: u32,
        /// Print one JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Latency(a) => bench::cli::latency(&a)?,
        Cmd::Floor(a) => bench::cli::floor(&a)?,
        Cmd::Plot(a) => bench::cli::plot(&a)?,
        Cmd::Book {
            workload,
            json,
            runs,
            max_orders,
            levels,
            no_prefetch,
        } => {
            let text = std::fs::read_to_string(&workload)
                .with_context(|| format!("reading {}", workload.display()))?;
            let mut w = bench::workload::parse(&text)?;
            if w.name.is_empty() {
                w.name = workload
                    .file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            }
            drop(text);
            let report = book::run(
                &w,
                &BookBenchOptions {
                    runs,
                    max_orders,
                    levels_per_side: levels,
                    prefetch: !no_prefetch,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", report.render());
            }
        }
        Cmd::MassCancel { orders, json } => {
            let timings = bench::mass::run(orders)?;
            if json {
                println!("{}", serde_json::to_string(&timings)?);
            } else {
                for t in timings {
                    println!(
                        "{:<34} {:>8} cancelled of {:>8} resting in {:>7} us",
                        t.what, t.cancelled, t.resting_before, t.micros
                    );
                }
            }
        }
    }
    Ok(())
}
