//! The check-host report: items with a status, what was observed and the fix; rendered as
//! aligned text for people and as JSON for machines.

use std::fmt::Write as _;

use serde::Serialize;

/// The verdict on one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not applicable here or purely informative (e.g. no cpufreq interface on a VM).
    Info,
    /// As the appliance wants it.
    Ok,
    /// Works, but costs latency or predictability; the fix says how to improve it.
    Warn,
    /// Contradicts the configuration or a latency requirement outright.
    Fail,
}

impl Status {
    /// Fixed-width tag for text output.
    pub fn tag(self) -> &'static str {
        match self {
            Status::Info => "info",
            Status::Ok => " ok ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One checked item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Stable identifier (`cpu.isolation`, `mem.hugepages.2m`, ...), for scripts and docs.
    pub id: &'static str,
    /// What is checked, for people.
    pub title: &'static str,
    /// The verdict.
    pub status: Status,
    /// What was found on this host.
    pub observed: String,
    /// What to do about it (absent when nothing needs doing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Item {
    /// An item with no fix.
    pub fn new(
        id: &'static str,
        title: &'static str,
        status: Status,
        observed: impl Into<String>,
    ) -> Self {
        Self {
            id,
            title,
            status,
            observed: observed.into(),
            fix: None,
        }
    }

    /// Adds the fix.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// Counts per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Items that are fine.
    pub ok: usize,
    /// Items that cost latency.
    pub warn: usize,
    /// Items that contradict the configuration or a latency requirement.
    pub fail: usize,
    /// Items not applicable here.
    pub info: usize,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Kernel release (`uname -r`), when readable.
    pub kernel: Option<String>,
    /// Every item, in a fixed order.
    pub items: Vec<Item>,
    /// Counts per status.
    pub summary: Summary,
}

impl Report {
    /// Builds a report and its summary.
    pub fn new(kernel: Option<String>, items: Vec<Item>) -> Self {
        let mut summary = Summary::default();
        for i in &items {
            match i.status {
                Status::Ok => summary.ok += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
                Status::Info => summary.info += 1,
            }
        }
        Self {
            kernel,
            items,
            summary,
        }
    }

    /// The item with `id`, if checked.
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }

    /// The worst status present (`Info` for an empty report).
    pub fn worst(&self) -> Status {
        self.items
            .iter()
            .map(|i| i.status)
            .max()
            .unwrap_or(Status::Info)
    }

    /// Exit status policy: 1 when any item fails (or, with `strict`, warns), else 0. A script
    /// provisioning a host runs `appliance check-host --strict` and stops on non-zero.
    pub fn exit_code(&self, strict: bool) -> i32 {
        let bad = self.summary.fail > 0 || (strict && self.summary.warn > 0);
        i32::from(bad)
    }

    /// The report as pretty-printed JSON (`check-host --json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serialises: only strings and counts")
    }

    /// The report as text: one line per item, the fix indented under it, a summary last.
    pub fn render_text(&self) -> String {
        let width = self.items.iter().map(|i| i.id.len()).max().unwrap_or(0);
        let mut out = String::new();
        if let Some(k) = &self.kernel {
            let _ = writeln!(out, "check-host: Linux {k}");
        }
        for i in &self.items {
            let _ = writeln!(
                out,
                "[{}] {:<width$}  {}: {}",
                i.status.tag(),
                i.id,
                i.title,
                i.observed
            );
            if let Some(fix) = &i.fix {
                let _ = writeln!(out, "       {:<width$}  fix: {fix}", "");
            }
        }
        let s = self.summary;
        let _ = writeln!(
            out,
            "{} ok, {} warn, {} fail, {} info",
            s.ok, s.warn, s.fail, s.info
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report::new(
            Some("6.1.0".into()),
            vec![
                Item::new("a.one", "first", Status::Ok, "fine"),
                Item::new("b.two", "second", Status::Warn, "meh").fix("do x"),
                Item::new("c", "third", Status::Info, "n/a"),
            ],
        )
    }

    #[test]
    fn summary_worst_and_exit_codes() {
        let r = sample();
        assert_eq!(
            r.summary,
            Summary {
                ok: 1,
                warn: 1,
                fail: 0,
                info: 1
            }
        );
        assert_eq!(r.worst(), Status::Warn);
        assert_eq!(r.exit_code(false), 0);
        assert_eq!(r.exit_code(true), 1);
        let mut items = r.items.clone();
        items.push(Item::new("d", "fourth", Status::Fail, "bad").fix("do y"));
        let r = Report::new(None, items);
        assert_eq!(r.exit_code(false), 1);
        assert_eq!(r.worst(), Status::Fail);
    }

    #[test]
    fn text_has_one_line_per_item_with_fix_under_it() {
        let text = sample().render_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "check-host: Linux 6.1.0");
        assert_eq!(lines[1], "[ ok ] a.one  first: fine");
        assert_eq!(lines[2], "[WARN] b.two  second: meh");
        assert_eq!(lines[3], "              fix: do x");
        assert_eq!(lines[4], "[info] c      third: n/a");
        assert_eq!(lines[5], "1 ok, 1 warn, 0 fail, 1 info");
    }

    #[test]
    fn json_names_statuses_in_lowercase_and_omits_empty_fixes() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(v["items"][1]["status"], "warn");
        assert_eq!(v["items"][1]["fix"], "do x");
        assert!(v["items"][0].get("fix").is_none());
        assert_eq!(v["summary"]["warn"], 1);
        assert_eq!(v["kernel"], "6.1.0");
    }
}
