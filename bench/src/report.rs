//! Reports: the JSON summary line, the HdrHistogram percentile distribution (`.hgrm`, the text
//! format of Java HdrHistogram's `outputPercentileDistribution`, which the HdrHistogram plotter
//! and most tooling read), and a latency-by-percentile SVG plot that overlays several runs.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::latency::Percentiles;

/// The one-line JSON summary of a `bench latency` or `bench floor` run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// `binary`, `fix` or `tcp-floor`.
    pub protocol: String,
    /// `open`, `closed` or `pipelined`.
    pub mode: String,
    /// Connections.
    pub connections: usize,
    /// Requested rate (requests/s over all connections); 0 for closed and pipelined modes.
    pub requested_rate: u64,
    /// Measured sends per second.
    pub achieved_rate: f64,
    /// Replies per second over the span of recorded replies.
    pub reply_rate: f64,
    /// Requests recorded (answered, after the warm-up).
    pub orders: u64,
    /// Requests never answered.
    pub unanswered: u64,
    /// Median round trip (from the intended send time in open loop).
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// 99.99th percentile.
    pub p9999_ns: u64,
    /// Maximum.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
    /// The same percentiles from the actual send time (no coordinated-omission correction).
    pub uncorrected: Percentiles,
    /// Average request / reply bytes on the wire.
    pub request_bytes: u64,
    /// See `request_bytes`.
    pub reply_bytes: u64,
    /// Warm-up and measured durations, seconds.
    pub warmup_s: f64,
    /// See `warmup_s`.
    pub duration_s: f64,
    /// How the generator waited (`spin` or `block`).
    pub wait: String,
    /// The TCP floor measured in the same run, if asked for.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub floor: Option<Box<Summary>>,
    /// p50 of this run over the floor's p50.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub p50_floor_ratio: Option<f64>,
    /// Connections that closed early and why.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<String>,
}

impl Summary {
    /// A human-readable block.
    pub fn render(&self) -> String {
        let us = |ns: u64| ns as f64 / 1000.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {} loop, {} connection(s): requested {} /s, achieved {:.0} /s, replies {:.0} /s",
            self.protocol,
            self.mode,
            self.connections,
            if self.requested_rate == 0 {
                "-".to_string()
            } else {
                self.requested_rate.to_string()
            },
            self.achieved_rate,
            self.reply_rate
        );
        let _ = writeln!(
            s,
            "  {} orders recorded, {} unanswered; request {} B, reply {} B",
            self.orders, self.unanswered, self.request_bytes, self.reply_bytes
        );
        let _ = writeln!(
            s,
            "  round trip us: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  p99.99 {:.1}  max {:.1}",
            us(self.p50_ns),
            us(self.p90_ns),
            us(self.p99_ns),
            us(self.p999_ns),
            us(self.p9999_ns),
            us(self.max_ns)
        );
        if self.mode == "open" {
            let u = &self.uncorrected;
            let _ = writeln!(
                s,
                "  uncorrected  : p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
                us(u.p50_ns),
                us(u.p90_ns),
                us(u.p99_ns),
                us(u.p999_ns),
                us(u.max_ns)
            );
        }
        if let (Some(f), Some(r)) = (&self.floor, self.p50_floor_ratio) {
            let _ = writeln!(
                s,
                "  TCP floor ({} B / {} B): p50 {:.1} us  p99 {:.1} us  -> p50 ratio {:.2}x",
                f.request_bytes,
                f.reply_bytes,
                us(f.p50_ns),
                us(f.p99_ns),
                r
            );
        }
        for e in &self.errors {
            let _ = writeln!(s, "  ! {e}");
        }
        s
    }
}

/// The keys every `--json` line must carry (checked by the CI smoke step too).
pub const REQUIRED_KEYS: [&str; 11] = [
    "protocol",
    "connections",
    "requested_rate",
    "achieved_rate",
    "orders",
    "p50_ns",
    "p90_ns",
    "p99_ns",
    "p999_ns",
    "p9999_ns",
    "max_ns",
];

/// Writes `h` (values in ns) as an HdrHistogram percentile distribution with values in
/// microseconds, 5 ticks per half distance (the Java defaults the plotter expects).
pub fn write_hgrm(h: &Histogram<u64>) -> String {
    const SCALE: f64 = 1000.0; // ns -> us
    let digits = h.sigfig() as usize;
    let mut s = String::new();
    let _ = write!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if h.is_empty() {
        let _ = writeln!(
            s,
            "#[Mean    = {:>12.d$}, StdDeviation   = {:>12.d$}]",
            0.0,
            0.0,
            d = digits
        );
        let _ = writeln!(
            s,
            "#[Max     = {:>12.d$}, Total count    = {:>12}]",
            0.0,
            0,
            d = digits
        );
        return s;
    }
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let value = h.highest_equivalent(v.value_iterated_to()) as f64 / SCALE;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            let _ = writeln!(
                s,
                "{:>12.d$} {:>2.12} {:>10} {:>14.2}",
                value,
                q,
                total,
                1.0 / (1.0 - q),
                d = digits
            );
        } else {
            let _ = writeln!(s, "{:>12.d$} {:>2.12} {:>10}", value, q, total, d = digits);
        }
    }
    let sub_buckets = (2.0 * 10f64.powi(digits as i32)).log2().ceil().exp2() as u64;
    let _ = writeln!(
        s,
        "#[Mean    = {:>12.d$}, StdDeviation   = {:>12.d$}]",
        h.mean() / SCALE,
        h.stdev() / SCALE,
        d = digits
    );
    let _ = writeln!(
        s,
        "#[Max     = {:>12.d$}, Total count    = {:>12}]",
        h.highest_equivalent(h.max()) as f64 / SCALE,
        h.len(),
        d = digits
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_buckets
    );
    s
}

/// One row of a `.hgrm` file: value (us), quantile, total count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HgrmRow {
    /// Latency in microseconds.
    pub value_us: f64,
    /// Quantile in [0, 1].
    pub quantile: f64,
    /// Samples at or below this value.
    pub total_count: u64,
}

/// Parses the rows of a `.hgrm` percentile distribution (header and `#[` footer skipped).
pub fn parse_hgrm(text: &str) -> anyhow::Result<Vec<HgrmRow>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with("Value") {
            continue;
        }
        let mut f = l.split_whitespace();
        let parse = |x: Option<&str>| -> anyhow::Result<f64> {
            x.context("missing column")?
                .parse::<f64>()
                .with_context(|| format!("line {}", i + 1))
        };
        let value_us = parse(f.next())?;
        let quantile = parse(f.next())?;
        let total_count = parse(f.next())? as u64;
        if !(0.0..=1.0).contains(&quantile) {
            bail!("line {}: percentile {quantile} outside [0, 1]", i + 1);
        }
        rows.push(HgrmRow {
            value_us,
            quantile,
            total_count,
        });
    }
    if rows.is_empty() {
        bail!("no percentile rows");
    }
    Ok(rows)
}

/// One series of a plot.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Rows of its distribution.
    pub rows: Vec<HgrmRow>,
}

/// Plots latency (us, log scale) against percentile (on the "number of nines" axis,
/// -log10(1 - q), as HdrHistogram's plotter does) for every series, into an SVG file.
pub fn plot_svg(path: &Path, title: &str, series: &[Series]) -> anyhow::Result<()> {
    if series.is_empty() {
        bail!("nothing to plot");
    }
    const MAX_NINES: f64 = 5.0; // up to 99.999%
    let nines = |q: f64| (-(1.0 - q).max(1e-5).log10()).min(MAX_NINES);
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for s in series {
        for r in &s.rows {
            lo = lo.min(r.value_us.max(0.01));
            hi = hi.max(r.value_us);
        }
    }
    let lo = (lo / 1.5).max(0.01);
    let hi = (hi * 1.5).max(lo * 10.0);
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..MAX_NINES, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("round trip (us, log scale)")
        .x_labels(6)
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 10f64.powf(-x));
            match x.round() as i32 {
                0 => "0%".into(),
                1 => "90%".into(),
                2 => "99%".into(),
                n => format!("{p:.*}%", (n - 2).max(0) as usize),
            }
        })
        .y_label_formatter(&|y| format!("{y}"))
        .draw()?;
    let palette = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    for (i, s) in series.iter().enumerate() {
        let color = palette[i % palette.len()];
        let pts: Vec<(f64, f64)> = s
            .rows
            .iter()
            .map(|r| (nines(r.quantile), r.value_us.max(lo)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::new_histogram;

    fn sample() -> Histogram<u64> {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 1_000).unwrap(); // 1 us .. 10 ms
        }
        h
    }

    #[test]
    fn hgrm_has_the_java_layout_and_round_trips_through_the_parser() {
        let h = sample();
        let text = write_hgrm(&h);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines.next().unwrap(), "");
        let rows = parse_hgrm(&text).unwrap();
        assert!(rows.len() > 50, "{} rows", rows.len());
        // Monotonic, starting at the minimum, ending at 100% with every sample counted.
        for w in rows.windows(2) {
            assert!(w[1].quantile >= w[0].quantile && w[1].value_us >= w[0].value_us);
            assert!(w[1].total_count >= w[0].total_count);
        }
        let last = rows.last().unwrap();
        assert_eq!(last.quantile, 1.0);
        assert_eq!(last.total_count, 10_000);
        assert!(
            (last.value_us - 10_000.0).abs() / 10_000.0 < 0.002,
            "{last:?}"
        );
        // The median row is where the values say.
        let mid = rows.iter().find(|r| r.quantile >= 0.5).unwrap();
        assert!((mid.value_us - 5_000.0).abs() < 10.0, "{mid:?}");
        assert!(text.contains("#[Max     ="));
        assert!(text.contains("Total count    =        10000]"));
        assert!(text.contains("SubBuckets     =         2048]"));
        // A non-final row carries the 1/(1-q) column.
        let row = text.lines().nth(3).unwrap();
        assert_eq!(row.split_whitespace().count(), 4, "{row}");
    }

    #[test]
    fn hgrm_parser_refuses_garbage() {
        assert!(parse_hgrm("").is_err());
        assert!(parse_hgrm("  1.0 2.0 5 1.0\n").is_err()); // percentile > 1
        assert!(parse_hgrm("abc def\n").is_err());
    }

    #[test]
    fn summary_json_carries_the_required_keys() {
        let p = Percentiles::of(&sample());
        let s = Summary {
            protocol: "binary".into(),
            mode: "open".into(),
            connections: 1,
            requested_rate: 1000,
            achieved_rate: 999.5,
            reply_rate: 999.0,
            orders: p.count,
            unanswered: 0,
            p50_ns: p.p50_ns,
            p90_ns: p.p90_ns,
            p99_ns: p.p99_ns,
            p999_ns: p.p999_ns,
            p9999_ns: p.p9999_ns,
            max_ns: p.max_ns,
            mean_ns: p.mean_ns,
            uncorrected: p,
            request_bytes: 48,
            reply_bytes: 64,
            warmup_s: 1.0,
            duration_s: 10.0,
            wait: "block".into(),
            floor: None,
            p50_floor_ratio: None,
            errors: vec![],
        };
        let line = serde_json::to_string(&s).unwrap();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for k in REQUIRED_KEYS {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["p50_ns"], p.p50_ns);
        assert!(s.render().contains("p50 5000.0") || s.render().contains("p50 500"));
        let back: Summary = serde_json::from_str(&line).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn plot_overlays_several_runs_into_one_svg() {
        let a = parse_hgrm(&write_hgrm(&sample())).unwrap();
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 20_000).unwrap();
        }
        let b = parse_hgrm(&write_hgrm(&h)).unwrap();
        let path = std::env::temp_dir().join(format!("bench-plot-{}.svg", std::process::id()));
        plot_svg(
            &path,
            "test",
            &[
                Series {
                    label: "appliance".into(),
                    rows: a,
                },
                Series {
                    label: "other venue".into(),
                    rows: b,
                },
            ],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg"), "{}", &svg[..50.min(svg.len())]);
        assert!(svg.contains("appliance") && svg.contains("other venue"));
        assert!(svg.matches("<polyline").count() >= 2);
    }
}
