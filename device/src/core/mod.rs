//! The device's decision logic, `no_std` and allocation-free.
//!
//! A client presents a token (`<counter>:<otp>`, [`protocol::hotp::Token`]); the device
//! computes one HMAC, for the named counter, and grants it once if its RFC 4303-style
//! replay window still has the counter open. The new state is saved through
//! [`CounterStore`] *before* a grant is reported, so a crash or reboot at any point can
//! lose a slot but never grant a counter twice.
//!
//! Guessing is bounded in three layers ([`throttle`], docs/device.md): only sources that
//! echo a fresh CoAP Echo value ([`echo`]) get a check at all, a source's failures back
//! off exponentially, and a persisted global budget caps the failures of all sources.
//! The core is sans-I/O: the transport passes the source, the Echo it carried and the
//! monotonic time in milliseconds since boot.
pub(crate) mod echo;
pub(crate) mod flash;
pub(crate) mod page;
pub(crate) mod state;
pub(crate) mod throttle;

use echo::{Echo, EchoKey, ECHO_LEN};
use protocol::hotp::{DeviceKey, Digits, HmacSha256Keyed, HotpError, ReplayWindow, Token};
use state::{CounterStore, DeviceState};
use throttle::{Bucket, SourceTable};
use throttle::{Source, Throttle};

/// Static configuration, set up once (the provisioning file).
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// The key shared with the AS.
    pub key: DeviceKey,
    /// Digits of every OTP this device accepts.
    pub digits: Digits,
    /// Replay window W: a counter stays good until one W above it is granted.
    pub window: u32,
    /// How failed checks are throttled.
    pub throttle: Throttle,
}

/// Why the configuration cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The replay window's size is out of range.
    #[error("{0}")]
    Window(HotpError),
    /// The throttle's parameters cannot work ([`Throttle::problem`]).
    #[error("throttle: {0}")]
    Throttle(&'static str),
    /// The device has not booted ([`Device::unbooted`] before [`Device::start`]).
    #[error("the device has not booted")]
    NotBooted,
}

/// Why a token was refused (or the device could not decide).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal<E: ::core::fmt::Debug> {
    /// The request carried no fresh Echo for its source: nothing was checked. The
    /// transport answers with this value (CoAP 4.01 + Echo) for the client to repeat.
    #[error("repeat the request with the Echo value given")]
    NeedEcho(Echo),
    /// Not a token, or not this device's number of digits. Not a guess: not counted.
    #[error("not a token for this device: {0}")]
    Malformed(HotpError),
    /// The source backs off, or the global budget is empty: nothing was checked.
    #[error("too many failures: retry in {retry_in_ms} ms")]
    Throttled {
        /// When a check becomes possible again.
        retry_in_ms: u64,
    },
    /// The HMAC did not match: a failure, counted against the source and the budget.
    #[error("invalid token")]
    Invalid,
    /// The counter was granted before (checked without an HMAC; not counted).
    #[error("counter {0} was already granted")]
    Used(u64),
    /// The counter is below the replay window (checked without an HMAC; not counted).
    #[error("counter {0} is below the replay window")]
    Expired(u64),
    /// The store failed: nothing was granted (and no failure spent unpaid).
    #[error("the state could not be saved; nothing granted: {0:?}")]
    Storage(E),
    /// The configuration cannot run (at boot).
    #[error("bad device configuration: {0}")]
    Config(ConfigError),
}

/// One granted slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The counter of the token that was accepted.
    pub counter: u64,
}

/// A device: its configuration, its store, and what it keeps in RAM (the replay window
/// as last saved, the keyed HMAC states, the per-source back-off, the global budget).
///
/// [`Device::boot`] makes a booted one. Firmware places an unbooted one in a static
/// ([`Device::unbooted`] is `const`) and boots it there with [`Device::start`], so the
/// device never passes through the stack, which on a small core is smaller than it.
pub struct Device<S: CounterStore> {
    store: S,
    /// What a boot establishes.
    boot: Boot,
    sources: SourceTable,
    bucket: Bucket,
}

/// Whether the device booted. `repr(u8)` with `Off = 0` (not an `Option`, whose `None`
/// could take any bit pattern): an unbooted device is then all zero bytes, so a static
/// one costs no flash (it is placed in .bss, not copied from an image in .data).
// Boxing the large variant (clippy's advice) is what a device without a heap cannot do.
#[allow(clippy::large_enum_variant)]
#[repr(u8)]
enum Boot {
    Off = 0,
    On(Booted) = 1,
}

/// The state of a booted device besides its tables.
struct Booted {
    config: DeviceConfig,
    /// The state as last saved (the window, the boot count; its budget is the one last
    /// written, the live one is the device's `bucket`). Restored and saved in place.
    state: DeviceState,
    echo_key: EchoKey,
    /// HMAC-SHA256 keyed with the device key once: its two chaining values.
    keyed: HmacSha256Keyed,
}

impl Booted {
    /// A booted device's placeholder (written straight into its slot: not inlined).
    #[inline(never)]
    fn blank(config: DeviceConfig) -> Boot {
        Boot::On(Booted {
            echo_key: EchoKey::UNSET,
            keyed: HmacSha256Keyed::UNSET,
            config,
            state: DeviceState::blank(),
        })
    }

    /// Places `config` in `slot`, with a blank state for `Device::restore` to fill in
    /// place: the keys' HMAC states computed once, here.
    #[inline(never)]
    fn place(slot: &mut Boot, config: DeviceConfig) -> &mut Booted {
        // Placeholders first, the keys then derived where they lie: built whole on the
        // stack, the booted device cost it two copies of itself (1.1 KiB on the M0).
        *slot = Self::blank(config);
        let Boot::On(b) = slot else {
            // Just written.
            unreachable!()
        };
        b.echo_key = EchoKey::derive(&b.config.key);
        b.keyed = b.config.key.keyed_state();
        b
    }
}

impl<S: CounterStore> Device<S> {
    /// Boots from the stored state (a fresh window and a full budget on first boot),
    /// and saves the new boot count before answering anything.
    pub fn boot(config: DeviceConfig, store: S) -> Result<Self, Refusal<S::Error>> {
        let mut device = Self::unbooted(store);
        device.start(config)?;
        Ok(device)
    }

    /// A device on `store` that has not booted: until [`Self::start`] succeeds it
    /// checks nothing (`Refusal::Config(ConfigError::NotBooted)`), and its counters and
    /// boots read 0.
    pub const fn unbooted(store: S) -> Self {
        Self {
            store,
            boot: Boot::Off,
            sources: SourceTable::new(),
            bucket: Bucket::EMPTY,
        }
    }

    /// The saved state brought to `config` (a first boot's, if none), with the boot
    /// count raised, saved; the bucket restored from it. All in `state`, in place (on a
    /// small core each copy of a state is 300 bytes of stack). (Not inlined, like the
    /// key derivation in `Booted::place`: `start` holds neither's temporaries while it
    /// runs the other.)
    #[inline(never)]
    fn restore(
        store: &mut S,
        bucket: &mut Bucket,
        config: &DeviceConfig,
        state: &mut DeviceState,
    ) -> Result<(), Refusal<S::Error>> {
        let window = |e| Refusal::Config(ConfigError::Window(e));
        if store.load_into(state).map_err(Refusal::Storage)? {
            state.window.resize(config.window).map_err(window)?;
        } else {
            *state = DeviceState::blank();
            state.window.resize(config.window).map_err(window)?;
            state.budget_ms = i64::try_from(config.throttle.capacity_ms()).unwrap_or(i64::MAX);
        }
        let restored = Bucket::restore(state.budget_ms, &config.throttle);
        state.boots = state.boots.wrapping_add(1);
        state.budget_ms = restored.persisted(&config.throttle);
        store.save(state).map_err(Refusal::Storage)?;
        *bucket = restored;
        Ok(())
    }

    fn booted(&self) -> Option<&Booted> {
        match &self.boot {
            Boot::On(b) => Some(b),
            Boot::Off => None,
        }
    }

    /// Boots (or boots again) in place with `config`: the state loaded from the store,
    /// the new boot count saved before anything is answered, the per-source back-off
    /// cleared (it lives in RAM only). On an error the device stays unbooted.
    // Not inlined, nor is `present`: on a small core a caller's frame would otherwise
    // hold the temporaries of both at once (measured: 2.5 KiB more stack).
    #[inline(never)]
    pub fn start(&mut self, config: DeviceConfig) -> Result<(), Refusal<S::Error>> {
        self.boot = Boot::Off;
        if let Some(problem) = config.throttle.problem() {
            return Err(Refusal::Config(ConfigError::Throttle(problem)));
        }
        ReplayWindow::new(config.window).map_err(|e| Refusal::Config(ConfigError::Window(e)))?;
        let b = Booted::place(&mut self.boot, config);
        if let Err(e) = Self::restore(&mut self.store, &mut self.bucket, &b.config, &mut b.state) {
            self.boot = Boot::Off;
            return Err(e);
        }
        self.sources.clear();
        Ok(())
    }

    /// The configuration it booted with (`None` before boot).
    pub fn config(&self) -> Option<&DeviceConfig> {
        self.booted().map(|b| &b.config)
    }

    /// The replay window as last saved (`None` before boot).
    pub fn window(&self) -> Option<&ReplayWindow> {
        self.booted().map(|b| &b.state.window)
    }

    /// One past the highest counter granted (0 before the first grant).
    pub fn next_counter(&self) -> u64 {
        self.window()
            .and_then(ReplayWindow::highest)
            .map_or(0, |h| h.saturating_add(1))
    }

    /// Boots so far, this one included (part of every Echo value; 0 before boot).
    pub fn boots(&self) -> u32 {
        self.booted().map_or(0, |b| b.state.boots)
    }

    /// Whole failures the global budget allows right now, all sources together.
    pub fn failures_left(&mut self, now_ms: u64) -> u64 {
        let Some(t) = self.booted().map(|b| b.config.throttle) else {
            return 0;
        };
        self.bucket.refill(now_ms, &t);
        self.bucket.failures_left(&t)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, mutably (tests cut its power).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The store back, e.g. to boot again from it (a reboot, in tests).
    pub fn into_store(self) -> S {
        self.store
    }

    /// The Echo value `source` must repeat (what a 4.01 answer carries). Before boot,
    /// all zeros: an unbooted device checks no Echo at all.
    pub fn echo(&self, source: &Source, now_ms: u64) -> Echo {
        match self.booted() {
            Some(b) => b.echo_key.issue(b.state.boots, now_ms, source),
            None => Echo([0; ECHO_LEN]),
        }
    }

    /// Checks a token presented by `source` carrying `echo`, at `now_ms` since boot.
    ///
    /// Order matters: only a fresh Echo earns any work; a malformed, used or expired
    /// token costs no HMAC and counts as no guess; a throttled source or an empty budget
    /// gets nothing checked; and before the one HMAC that could fail, the failure is
    /// already paid for in flash.
    #[inline(never)]
    pub fn present(
        &mut self,
        source: &Source,
        echo: Option<&[u8]>,
        token: &[u8],
        now_ms: u64,
    ) -> Result<Grant, Refusal<S::Error>> {
        let Boot::On(b) = &mut self.boot else {
            return Err(Refusal::Config(ConfigError::NotBooted));
        };
        let fresh = echo.is_some_and(|e| b.echo_key.verify(b.state.boots, now_ms, source, e));
        if !fresh {
            return Err(Refusal::NeedEcho(b.echo_key.issue(
                b.state.boots,
                now_ms,
                source,
            )));
        }
        let token = Token::parse_bytes(token).map_err(Refusal::Malformed)?;
        if token.digits() != b.config.digits {
            return Err(Refusal::Malformed(HotpError::Malformed {
                expected: b.config.digits.get(),
            }));
        }
        if let Some(retry_in_ms) = self.sources.blocked(source, now_ms, &b.config.throttle) {
            return Err(Refusal::Throttled { retry_in_ms });
        }
        match b.state.window.check(token.counter()) {
            Ok(()) => {}
            Err(HotpError::AlreadyGranted(c)) => return Err(Refusal::Used(c)),
            Err(_) => return Err(Refusal::Expired(token.counter())),
        }
        let t = b.config.throttle;
        self.bucket.refill(now_ms, &t);
        if let Some(retry_in_ms) = self.bucket.wait_ms(&t) {
            return Err(Refusal::Throttled { retry_in_ms });
        }
        if self.bucket.needs_reservation() {
            // Saved in place: the window is unchanged, the budget the reserved one.
            b.state.budget_ms = self.bucket.reserve(&t);
            self.store.save(&b.state).map_err(Refusal::Storage)?;
        }
        if !token.matches_state(&b.keyed) {
            self.bucket.spend(&t);
            self.sources.record_failure(source, now_ms, &t);
            return Err(Refusal::Invalid);
        }
        Self::grant(
            &mut self.store,
            b,
            self.bucket.persisted(&t),
            token.counter(),
        )?;
        self.sources.forgive(source);
        Ok(Grant {
            counter: token.counter(),
        })
    }

    /// Grants `counter` in `b`'s window, the new state (with `budget_ms`) saved first.
    /// (Not inlined: its copy of the state, 296 bytes, is then not in `present`'s frame
    /// while the HMAC runs.)
    #[inline(never)]
    fn grant(
        store: &mut S,
        b: &mut Booted,
        budget_ms: i64,
        counter: u64,
    ) -> Result<(), Refusal<S::Error>> {
        // The state as it will be once granted, saved before the grant is: the only
        // copy of the window (each is 280 bytes of a small core's stack).
        let mut next = DeviceState {
            budget_ms,
            ..b.state
        };
        next.window
            .accept(counter)
            .map_err(|_| Refusal::Used(counter))?;
        store.save(&next).map_err(Refusal::Storage)?;
        b.state = next;
        Ok(())
    }
}

/// Writes `value` in decimal at the end of `buf`, without `core::fmt`; returns where its
/// digits start (the bytes before are left as they were: a buffer of `b'0'` gives zero
/// padding). The device's answers and the firmware's output and tokens use it.
pub fn decimal(value: u64, buf: &mut [u8; 20]) -> usize {
    let mut at = buf.len();
    let mut v = value;
    loop {
        at -= 1;
        let (q, r) = div_rem_u16(v, 10);
        buf[at] = b'0' + r as u8;
        v = q;
        if v == 0 {
            return at;
        }
    }
}

/// `n / d` and `n % d` for a divisor below 2^16, in three 32-bit divisions: a core
/// without 64-bit division (every Cortex-M; the M0 has no divider at all) would otherwise
/// link the generic 64-bit routine (about 1 KB of flash) for the device's few divisions
/// of a u64 by a constant (the Echo epoch, seconds, decimal digits).
pub fn div_rem_u16(n: u64, d: u16) -> (u64, u16) {
    let d = u32::from(d.max(1));
    let (hi, lo) = ((n >> 32) as u32, n as u32);
    let (q2, r) = (hi / d, hi % d);
    // Each step divides r * 2^16 + 16 more bits, below d * 2^16: it fits a u32.
    let x = (r << 16) | (lo >> 16);
    let (q1, r) = (x / d, x % d);
    let y = (r << 16) | (lo & 0xffff);
    let (q0, r) = (y / d, y % d);
    (
        (u64::from(q2) << 32) | (u64::from(q1) << 16) | u64::from(q0),
        r as u16,
    )
}

#[cfg(test)]
mod div_tests {
    use super::div_rem_u16;

    #[test]
    fn div_rem_u16_is_u64_division() {
        let mut buf = [b'0'; 20];
        for n in [0, 7, 10, 12_345, u64::MAX] {
            let at = super::decimal(n, &mut buf);
            assert_eq!(&buf[at..], n.to_string().as_bytes());
        }
        let ns = [
            0,
            1,
            9,
            10,
            29_999,
            30_000,
            1 << 32,
            u64::MAX,
            u64::MAX - 1,
            0x1234_5678_9abc_def0,
        ];
        for n in ns {
            for d in [1u16, 2, 10, 1000, 30_000, u16::MAX] {
                assert_eq!(
                    div_rem_u16(n, d),
                    (n / u64::from(d), (n % u64::from(d)) as u16),
                    "{n} / {d}"
                );
            }
        }
    }
}
