//! The device's decision logic, `no_std` and allocation-free.
//!
//! One valid OTP grants one slot. The counter that makes an OTP single-use is saved
//! through [`CounterStore`] *before* the grant is reported, so a crash or reboot at any
//! point can lose a slot but never accept a used OTP again. Repeated failures are
//! throttled (RFC 4226 section 7.3): after `free_failures` consecutive failures every
//! further attempt is refused until a delay, doubling per failure, has passed.
use protocol::hotp::{Digits, HmacSha256, HotpError, HotpVerifier, Otp};

/// What the device persists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceState {
    /// One past the highest counter accepted so far.
    pub next_counter: u64,
    /// Which of the 64 counters below `next_counter` are used (bit i: counter
    /// `next_counter - 1 - i`); the others were skipped and stay good once.
    pub used_below: u64,
}

/// Durable storage for the counter (flash, EEPROM, a file).
pub trait CounterStore {
    type Error: ::core::fmt::Debug;
    /// The last saved state, or `None` on first boot.
    fn load(&mut self) -> Result<Option<DeviceState>, Self::Error>;
    /// Saves durably; returns only once the state survives power loss.
    fn save(&mut self, state: &DeviceState) -> Result<(), Self::Error>;
}

/// Throttling after repeated failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Consecutive failures allowed before delays start.
    pub free_failures: u32,
    /// The first delay, doubled for every further failure.
    pub base_delay_ms: u64,
    /// The longest delay.
    pub max_delay_ms: u64,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            free_failures: 3,
            base_delay_ms: 1_000,
            max_delay_ms: 300_000,
        }
    }
}

/// Static configuration: the key shared with the AS, set up once.
#[derive(Clone)]
pub struct DeviceConfig {
    pub key: [u8; 32],
    pub digits: Digits,
    /// Look-ahead window: how many OTPs the AS may have issued that were never presented.
    pub window: u32,
    pub throttle: Throttle,
}

/// Why an OTP was refused (or the device could not decide).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal<E: ::core::fmt::Debug> {
    #[error("too many failures: retry in {retry_in_ms} ms")]
    Throttled { retry_in_ms: u64 },
    #[error("not an OTP: {0}")]
    Malformed(HotpError),
    #[error("invalid or already used OTP")]
    Invalid,
    #[error("the counter could not be saved; nothing granted: {0:?}")]
    Storage(E),
    #[error("bad device configuration: {0}")]
    Config(HotpError),
}

/// One granted slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The HOTP counter of the OTP that was accepted.
    pub counter: u64,
}

pub struct Device<S: CounterStore> {
    config: DeviceConfig,
    verifier: HotpVerifier<HmacSha256>,
    store: S,
    consecutive_failures: u32,
    blocked_until_ms: u64,
}

impl<S: CounterStore> Device<S> {
    /// Boots the device from its stored state (counter 0 on first boot).
    pub fn boot(config: DeviceConfig, mut store: S) -> Result<Self, Refusal<S::Error>> {
        let state = store
            .load()
            .map_err(Refusal::Storage)?
            .unwrap_or(DeviceState {
                next_counter: 0,
                used_below: u64::MAX,
            });
        let verifier = HotpVerifier::with_history(
            state.next_counter,
            state.used_below,
            config.window,
            config.digits,
        )
        .map_err(Refusal::Config)?;
        Ok(Self {
            config,
            verifier,
            store,
            consecutive_failures: 0,
            blocked_until_ms: 0,
        })
    }

    pub fn next_counter(&self) -> u64 {
        self.verifier.next_counter()
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Presents an OTP as text at monotonic time `now_ms`.
    pub fn present(&mut self, otp: &str, now_ms: u64) -> Result<Grant, Refusal<S::Error>> {
        if now_ms < self.blocked_until_ms {
            return Err(Refusal::Throttled {
                retry_in_ms: self.blocked_until_ms - now_ms,
            });
        }
        let parsed = match Otp::parse(otp, self.config.digits) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.fail(now_ms);
                return Err(Refusal::Malformed(e));
            }
        };
        // Verify on a copy: the real counter moves only once the new one is saved.
        let mut trial = self.verifier.clone();
        match trial.verify(&self.config.key, &parsed) {
            Ok(counter) => {
                self.store
                    .save(&DeviceState {
                        next_counter: trial.next_counter(),
                        used_below: trial.used_below(),
                    })
                    .map_err(Refusal::Storage)?;
                self.verifier = trial;
                self.consecutive_failures = 0;
                Ok(Grant { counter })
            }
            Err(_) => {
                self.fail(now_ms);
                Err(Refusal::Invalid)
            }
        }
    }

    fn fail(&mut self, now_ms: u64) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let t = self.config.throttle;
        if self.consecutive_failures > t.free_failures {
            let doublings = (self.consecutive_failures - t.free_failures - 1).min(63);
            let delay = t
                .base_delay_ms
                .saturating_mul(1u64 << doublings)
                .min(t.max_delay_ms);
            self.blocked_until_ms = now_ms.saturating_add(delay);
        }
    }
}
