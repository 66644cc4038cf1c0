//! Throttling of failed token checks: a per-source back-off and a global budget.
//!
//! Only requests from a source that proved it receives the device's answers (a valid
//! CoAP Echo, see `echo`) ever reach a token check, so an off-path attacker's spoofed
//! datagrams never count here. The per-source back-off keeps a few noisy sources from
//! draining the global budget; the global budget (a token bucket: at most `global_burst`
//! failures at once, refilled at `global_per_hour`) bounds the guesses of everybody
//! together, persisted so that no reboot resets it. docs/device.md has the numbers.

/// Where a request came from, as the transport sees it: an IPv6 address, IPv4 mapped
/// into it. Ports are not part of it (a client may use a new port per request, and an
/// attacker could use 65,536), and an IPv6 source is its /64 (what one host gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source(pub [u8; 16]);

impl Source {
    /// The source of a datagram from `ip`.
    pub fn from_ip(ip: ::core::net::IpAddr) -> Self {
        match ip {
            ::core::net::IpAddr::V4(v4) => Source(v4.to_ipv6_mapped().octets()),
            ::core::net::IpAddr::V6(v6) => {
                let mut bytes = v6.octets();
                if v6.to_ipv4_mapped().is_none() {
                    bytes[8..].fill(0);
                }
                Source(bytes)
            }
        }
    }
}

/// Throttling parameters (the provisioning file's `[throttle]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Failures in a row a source may have before its back-off starts.
    pub free_failures: u32,
    /// A source's first delay, doubled for every further failure.
    pub base_delay_ms: u64,
    /// The longest delay of one source.
    pub max_delay_ms: u64,
    /// A source quiet this long starts afresh.
    pub forget_after_ms: u64,
    /// Global refill: failures per hour, all sources together.
    pub global_per_hour: u32,
    /// Global burst: failures allowed at once (the bucket's size).
    pub global_burst: u32,
    /// Failures reserved per flash write: the budget is debited this many at a time
    /// before they are used, so a power cut loses budget (at most this many failures'
    /// refill, `reserve` minutes by default) but never returns any.
    pub reserve: u32,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Throttle {
    /// The defaults (docs/device.md has the numbers they give).
    pub const DEFAULT: Throttle = Throttle {
        free_failures: 3,
        base_delay_ms: 60_000,
        max_delay_ms: 3_600_000,
        forget_after_ms: 86_400_000,
        global_per_hour: 60,
        global_burst: 320,
        reserve: 16,
    };

    /// Milliseconds of refill one failure costs.
    pub fn cost_ms(&self) -> u64 {
        // A 32-bit division (3,600,000 fits): no 64-bit division routine on the device.
        u64::from(3_600_000 / self.global_per_hour.max(1))
    }

    /// The full bucket, in milliseconds of refill.
    pub fn capacity_ms(&self) -> u64 {
        self.cost_ms().saturating_mul(u64::from(self.global_burst))
    }

    /// Why these parameters cannot work, if they cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self.global_per_hour == 0 || self.global_per_hour > 3_600_000 {
            Some("global_per_hour must be 1 to 3600000")
        } else if self.global_burst == 0 || self.reserve == 0 || self.reserve > self.global_burst {
            Some("global_burst must be at least 1, reserve 1 to global_burst")
        } else if self.max_delay_ms < self.base_delay_ms {
            Some("max_delay_ms must be at least base_delay_ms")
        } else {
            None
        }
    }

    /// The delay after a source's `failures`-th failure in a row.
    fn delay_ms(&self, failures: u32) -> u64 {
        if failures <= self.free_failures {
            return 0;
        }
        let doublings = (failures - self.free_failures - 1).min(63);
        self.base_delay_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_delay_ms)
    }
}

/// How many sources the back-off remembers. Beyond this many failing sources the
/// oldest is forgotten (so from the 33rd attacking address on, only the global budget
/// holds; docs/device.md).
pub const SOURCES: usize = 32;

/// One remembered source; `failures == 0` marks a free slot (no Option: 40 bytes less
/// per slot, which the smallest boards notice). When it is blocked until follows from its
/// last failure and its count (`Throttle::delay_ms`), so it is not stored, and the time
/// is two u32 halves: 28 bytes a slot, not 40 (384 bytes of RAM for the table).
#[derive(Debug, Clone, Copy)]
struct Entry {
    source: Source,
    failures: u32,
    last_failure_ms: [u32; 2],
}

impl Entry {
    fn last_failure_ms(&self) -> u64 {
        u64::from(self.last_failure_ms[0]) | (u64::from(self.last_failure_ms[1]) << 32)
    }

    fn set_last_failure_ms(&mut self, ms: u64) {
        // The two halves of a u64.
        self.last_failure_ms = [ms as u32, (ms >> 32) as u32];
    }

    fn blocked_until_ms(&self, t: &Throttle) -> u64 {
        self.last_failure_ms()
            .saturating_add(t.delay_ms(self.failures))
    }
}

const FREE: Entry = Entry {
    source: Source([0; 16]),
    failures: 0,
    last_failure_ms: [0; 2],
};

/// Per-source back-off, in RAM: a reboot clears it (the global budget is what survives).
#[derive(Debug, Clone)]
pub(crate) struct SourceTable {
    entries: [Entry; SOURCES],
}

impl SourceTable {
    pub(crate) const fn new() -> Self {
        Self {
            entries: [FREE; SOURCES],
        }
    }

    /// Forgets every source, in place (a reboot: the back-off lives in RAM only).
    pub(crate) fn clear(&mut self) {
        self.entries.fill(FREE);
    }

    fn find(&self, source: &Source) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.failures > 0 && e.source == *source)
    }

    /// How long `source` must still wait, if it must.
    pub(crate) fn blocked(&self, source: &Source, now_ms: u64, t: &Throttle) -> Option<u64> {
        let until = self.entries.get(self.find(source)?)?.blocked_until_ms(t);
        (now_ms < until).then(|| until - now_ms)
    }

    pub(crate) fn record_failure(&mut self, source: &Source, now_ms: u64, t: &Throttle) {
        let slot = self.find(source).unwrap_or_else(|| {
            // A free slot, else the one whose last failure is oldest.
            self.entries
                .iter()
                .position(|e| e.failures == 0)
                .unwrap_or_else(|| {
                    (0..SOURCES)
                        .min_by_key(|&i| self.entries[i].last_failure_ms())
                        .unwrap_or(0)
                })
        });
        let Some(stored) = self.entries.get_mut(slot) else {
            return;
        };
        let mut entry = match *stored {
            e if e.failures > 0 && e.source == *source => e,
            _ => {
                let mut fresh = FREE;
                fresh.source = *source;
                fresh.set_last_failure_ms(now_ms);
                fresh
            }
        };
        if now_ms.saturating_sub(entry.last_failure_ms()) >= t.forget_after_ms {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.set_last_failure_ms(now_ms);
        *stored = entry;
    }

    /// A success clears the source's record (RFC 4226 section 7.3's reset).
    pub(crate) fn forgive(&mut self, source: &Source) {
        if let Some(entry) = self.find(source).and_then(|i| self.entries.get_mut(i)) {
            *entry = FREE;
        }
    }
}

/// The global budget: a token bucket counted in milliseconds of refill. The level may
/// go below zero after a reboot: reservations are debited in full even when the bucket
/// held fewer failures, and that debt is refilled before the next check.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    level_ms: i64,
    last_ms: u64,
    /// Failures already debited in the last saved state but not yet used.
    reserved: u32,
}

impl Bucket {
    /// Before boot: nothing to spend (boot restores the saved budget).
    pub(crate) const EMPTY: Bucket = Bucket {
        level_ms: 0,
        last_ms: 0,
        reserved: 0,
    };
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Bucket {
    /// The bucket as saved: no credit for the time the device was off (it cannot know
    /// it), and what was reserved counts as spent. It refills from boot on (the core's
    /// clock is milliseconds since boot).
    pub(crate) fn restore(saved_ms: i64, t: &Throttle) -> Self {
        // A debt deeper than one reservation cannot have been written (nor should a
        // corrupt value lock the device for long).
        let deepest = -ms(u64::from(t.reserve).saturating_mul(t.cost_ms()));
        Self {
            level_ms: saved_ms.clamp(deepest, ms(t.capacity_ms())),
            last_ms: 0,
            reserved: 0,
        }
    }

    pub(crate) fn refill(&mut self, now_ms: u64, t: &Throttle) {
        if now_ms > self.last_ms {
            self.level_ms = self
                .level_ms
                .saturating_add(ms(now_ms - self.last_ms))
                .min(ms(t.capacity_ms()));
            self.last_ms = now_ms;
        }
    }

    /// How long until one more failure is affordable, if it is not now.
    pub(crate) fn wait_ms(&self, t: &Throttle) -> Option<u64> {
        let short = ms(t.cost_ms()) - self.level_ms;
        (short > 0).then_some(short.unsigned_abs())
    }

    /// Whether a check needs a new reservation saved first.
    pub(crate) fn needs_reservation(&self) -> bool {
        self.reserved == 0
    }

    /// Reserves `reserve` failures (one flash write per that many failures, even when
    /// the bucket refills one at a time); returns the budget to persist.
    pub(crate) fn reserve(&mut self, t: &Throttle) -> i64 {
        self.reserved = t.reserve;
        self.persisted(t)
    }

    /// One failure: spends a reserved unit.
    pub(crate) fn spend(&mut self, t: &Throttle) {
        self.level_ms = self.level_ms.saturating_sub(ms(t.cost_ms()));
        self.reserved = self.reserved.saturating_sub(1);
    }

    /// The budget to write: what is left with every reserved failure counted as spent.
    /// Never more than the level in RAM, so a power cut at any moment can only lose.
    pub(crate) fn persisted(&self, t: &Throttle) -> i64 {
        self.level_ms
            .saturating_sub(ms(u64::from(self.reserved).saturating_mul(t.cost_ms())))
    }

    /// Whole failures affordable now (for status and tests).
    pub(crate) fn failures_left(&self, t: &Throttle) -> u64 {
        (self.level_ms.max(0).unsigned_abs()) / t.cost_ms()
    }
}
