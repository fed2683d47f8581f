//! The venue's clock: each instrument's session end in its time zone, when every Day order
//! still working on it expires. A cold thread sleeps until the next session end and asks a
//! gateway (over a control ring of its own) to send the instrument's engine an
//! `ExpireDayOrders`; the engine cancels the Day orders (reason `DayExpired`, FIX ExecType
//! C) and journals the command like any other, so a replay expires the same orders.

use crate::engine::InstrumentId;
use crate::gateway::control::{AdminLink, Control, ControlReply, ControlRequest};
use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `HH:MM` or `HH:MM:SS` (24 h) as a time of day.
pub fn parse_hh_mm(s: &str) -> Option<Time> {
    let mut parts = s.split(':');
    let mut field = |max: i8| -> Option<i8> {
        let p = parts.next()?;
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok().filter(|v| *v <= max)
    };
    let (h, m) = (field(23)?, field(59)?);
    let sec = match s.len() {
        5 => 0,
        8 => field(59)?,
        _ => return None,
    };
    Time::new(h, m, sec, 0).ok()
}

/// The first instant after `now` at which the wall clock in `tz` reads `at` (on a day when
/// that time does not exist, a daylight-saving gap, the instant just after the gap).
pub fn next_end(now: Timestamp, at: Time, tz: &TimeZone) -> Timestamp {
    let local: Zoned = now.to_zoned(tz.clone());
    let mut day = local.date();
    loop {
        if let Ok(z) = day.to_datetime(at).to_zoned(tz.clone()) {
            if z.timestamp() > now {
                return z.timestamp();
            }
        }
        day = day.tomorrow().expect("dates far from the end of time");
    }
}

/// One instrument's session end.
#[derive(Clone, Debug)]
pub struct SessionEnd {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Its symbol (for the log).
    pub symbol: String,
    /// Local time of day.
    pub at: Time,
    /// Its time zone.
    pub tz: TimeZone,
}

/// The running scheduler.
pub struct Scheduler {
    thread: super::cold_thread::ColdThread,
}

impl Scheduler {
    /// Starts the thread: at each instrument's session end, asks the gateway behind `link`
    /// to expire its Day orders.
    pub fn start(ends: Vec<SessionEnd>, link: AdminLink) -> std::io::Result<Self> {
        let thread =
            super::cold_thread::ColdThread::spawn("schedule", move |stop| run(ends, link, stop))?;
        Ok(Self { thread })
    }

    /// Stops the thread.
    pub fn stop(mut self) {
        self.thread.join();
    }
}

fn run(ends: Vec<SessionEnd>, mut link: AdminLink, stop: &AtomicBool) {
    let mut next: Vec<Timestamp> = ends
        .iter()
        .map(|e| next_end(Timestamp::now(), e.at, &e.tz))
        .collect();
    for (e, t) in ends.iter().zip(&next) {
        tracing::info!(
            "schedule: {} Day orders expire at {} ({})",
            e.symbol,
            t.to_zoned(e.tz.clone()),
            e.tz.iana_name().unwrap_or("UTC")
        );
    }
    while !stop.load(Ordering::Acquire) {
        let now = Timestamp::now();
        for (i, e) in ends.iter().enumerate() {
            if next[i] > now {
                continue;
            }
            if expire(&mut link, e.instrument, stop) {
                tracing::info!("schedule: session end of {}: Day orders expired", e.symbol);
            } else {
                tracing::warn!(
                    "schedule: session end of {}: the gateway did not take the expiry",
                    e.symbol
                );
            }
            next[i] = next_end(now, e.at, &e.tz);
        }
        // Sleep to the next end, a fifth of a second at most (to notice the stop flag).
        let soonest = next.iter().min().copied().unwrap_or(now);
        let wait = (soonest - Timestamp::now())
            .total(jiff::Unit::Millisecond)
            .unwrap_or(0.0)
            .clamp(1.0, 200.0);
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
}

/// Asks the gateway to send `ExpireDayOrders` for `instrument`, again while its rings are
/// full (it answers 0 then), for up to 5 s.
fn expire(link: &mut AdminLink, instrument: InstrumentId, stop: &AtomicBool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !stop.load(Ordering::Acquire) {
        while link.replies.pop().is_some() {}
        if link
            .requests
            .push(Control {
                // The scheduler, not an operator: the process's own uid.
                request: ControlRequest::ExpireDay { instrument },
                uid: crate::admin::own_uid(),
                credentials: None,
            })
            .is_err()
        {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        link.waker.wake_after_publish();
        let answer = Instant::now() + Duration::from_secs(1);
        while Instant::now() < answer {
            match link.replies.pop() {
                Some(ControlReply::Done { affected: 1 }) => return true,
                Some(ControlReply::Done { .. }) => break,
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_and_the_next_session_end_in_a_time_zone() {
        assert_eq!(parse_hh_mm("17:30"), Some(Time::new(17, 30, 0, 0).unwrap()));
        assert_eq!(
            parse_hh_mm("17:30:05"),
            Some(Time::new(17, 30, 5, 0).unwrap())
        );
        for bad in [
            "7:30", "24:00", "17:60", "1730", "aa:bb", "", "17:30:60", "17:30:5", "+1:30",
        ] {
            assert_eq!(parse_hh_mm(bad), None, "{bad:?}");
        }
        let ny = TimeZone::get("America/New_York").unwrap();
        let at = parse_hh_mm("16:00").unwrap();
        // 2026-03-06 15:00 New York (EST, UTC-5): today at 16:00 = 21:00 UTC.
        let now: Timestamp = "2026-03-06T20:00:00Z".parse().unwrap();
        assert_eq!(
            next_end(now, at, &ny),
            "2026-03-06T21:00:00Z".parse().unwrap()
        );
        // Just after: tomorrow's (a Saturday: the schedule has no calendar).
        let now: Timestamp = "2026-03-06T21:00:00Z".parse().unwrap();
        assert_eq!(
            next_end(now, at, &ny),
            "2026-03-07T21:00:00Z".parse().unwrap()
        );
        // Across the change to summer time (2026-03-08): 16:00 EDT = 20:00 UTC.
        let now: Timestamp = "2026-03-08T12:00:00Z".parse().unwrap();
        assert_eq!(
            next_end(now, at, &ny),
            "2026-03-08T20:00:00Z".parse().unwrap()
        );
        let utc = TimeZone::UTC;
        let now: Timestamp = "2026-12-06T23:59:00Z".parse().unwrap();
        let midnight = parse_hh_mm("00:00").unwrap();
        assert_eq!(
            next_end(now, midnight, &utc),
            "2026-12-07T00:00:00Z".parse().unwrap()
        );
    }
}
