//! Per-session throttles: token buckets for messages and for new orders, in integer
//! nano-tokens (no floats on the order path). A bucket holds one second of its rate (the
//! burst, and the grace before the `disconnect` policy acts) and refills continuously.

/// What happens past a throttle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThrottlePolicy {
    /// Refuse the order or replace with reject 117 (`throttled`); the session stays.
    #[default]
    Reject,
    /// Refuse it, then log the session out (`throttle exceeded`).
    Disconnect,
}

/// One token bucket: `rate` per second, at most one second's worth saved.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bucket {
    /// Tokens per second; 0 = no limit.
    rate: u64,
    /// Nano-tokens (1e9 per token).
    level: u64,
    /// Monotonic ns of the last refill.
    at_ns: u64,
}

const NANO: u64 = 1_000_000_000;

impl Bucket {
    /// A full bucket of `rate` per second (0: no limit).
    pub fn new(rate: u32) -> Self {
        Self {
            rate: rate as u64,
            level: rate as u64 * NANO,
            at_ns: 0,
        }
    }

    /// Tokens per second (0: no limit).
    pub fn rate(&self) -> u32 {
        self.rate as u32
    }

    /// Takes one token at `now_ns`; `false` when the bucket is empty (over the rate).
    #[inline]
    pub fn take(&mut self, now_ns: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        // At most a second of refill: a full bucket stays full and nothing overflows.
        let elapsed = now_ns.saturating_sub(self.at_ns).min(NANO);
        self.at_ns = now_ns;
        self.level = (self.level + elapsed * self.rate).min(self.rate * NANO);
        if self.level >= NANO {
            self.level -= NANO;
            true
        } else {
            false
        }
    }
}

/// A session's throttles.
#[derive(Clone, Copy, Debug, Default)]
pub struct Throttle {
    /// Every order operation (new, replace, cancel, mass cancel) takes from it.
    pub messages: Bucket,
    /// New orders and replaces take from it.
    pub orders: Bucket,
    /// What happens past either.
    pub policy: ThrottlePolicy,
}

impl Throttle {
    /// `messages` and `orders` per second (0: no limit).
    pub fn new(messages: u32, orders: u32, policy: ThrottlePolicy) -> Self {
        Self {
            messages: Bucket::new(messages),
            orders: Bucket::new(orders),
            policy,
        }
    }

    /// A new order or a replace at `now_ns`: whether it may go (it takes from both buckets).
    #[inline]
    pub fn order(&mut self, now_ns: u64) -> bool {
        let m = self.messages.take(now_ns);
        let o = self.orders.take(now_ns);
        m && o
    }

    /// A cancel or mass cancel: counted against the message rate, never refused (it takes
    /// risk off).
    #[inline]
    pub fn cancel(&mut self, now_ns: u64) {
        let _ = self.messages.take(now_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_rate_with_a_one_second_burst() {
        let mut b = Bucket::new(10);
        let t0 = 5 * NANO;
        // A full second's burst at once, then nothing.
        assert!((0..10).all(|_| b.take(t0)));
        assert!(!b.take(t0));
        // 100 ms later: one more.
        assert!(b.take(t0 + NANO / 10));
        assert!(!b.take(t0 + NANO / 10));
        // Long idle: refilled to the burst, not beyond.
        let t1 = t0 + 3600 * NANO;
        assert_eq!((0..20).filter(|_| b.take(t1)).count(), 10);
        // No limit.
        let mut off = Bucket::new(0);
        assert!((0..1_000_000).all(|_| off.take(t0)));
    }

    #[test]
    fn cancels_count_against_messages_but_are_never_refused() {
        let mut t = Throttle::new(3, 0, ThrottlePolicy::Reject);
        let now = NANO;
        t.cancel(now);
        t.cancel(now);
        assert!(t.order(now), "one message left");
        assert!(!t.order(now), "the cancels used the rest");
        t.cancel(now); // still fine: cancels are not refused
        let mut o = Throttle::new(0, 2, ThrottlePolicy::Reject);
        assert!(o.order(now) && o.order(now));
        assert!(!o.order(now));
    }
}
