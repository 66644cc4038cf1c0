//! CoAP Echo values (RFC 9175 section 2): proof that a request's source receives the
//! device's answers, so an off-path attacker cannot make the device check tokens "from"
//! addresses it does not own.
//!
//! Stateless: an Echo is one byte of the time epoch in clear and 8 bytes of
//! HMAC-SHA256(echo key, boots || epoch || source), under a key derived from the device
//! key. It is good in its 30 s epoch and the next, so for 30 to 60 s, and never after a
//! reboot (the boot count is in the MAC).
use super::throttle::Source;
use protocol::hotp::{DeviceKey, HmacSha256Keyed};
use subtle::ConstantTimeEq;

/// Bytes of an Echo value.
pub const ECHO_LEN: usize = 9;
/// Length of an Echo epoch; a value is accepted in its own epoch and the next.
pub const ECHO_EPOCH_MS: u64 = 30_000;

/// The epoch of `now_ms` (ECHO_EPOCH_MS fits 16 bits: no 64-bit division).
fn epoch(now_ms: u64) -> u64 {
    super::div_rem_u16(now_ms, ECHO_EPOCH_MS as u16).0
}

/// An Echo value as the device hands it out (CoAP option 252).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo(pub [u8; ECHO_LEN]);

impl Echo {
    /// The value's bytes, as the CoAP option carries them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The Echo key's HMAC state, keyed once at boot.
#[derive(Clone)]
pub(crate) struct EchoKey(HmacSha256Keyed);

impl EchoKey {
    /// A placeholder, derived in place at boot (`Booted::place`).
    pub(crate) const UNSET: EchoKey = EchoKey(HmacSha256Keyed::UNSET);

    pub(crate) fn derive(key: &DeviceKey) -> Self {
        EchoKey(DeviceKey(key.derive(b"slotpay coap echo v1")).keyed_state())
    }

    fn value(&self, boots: u32, epoch: u64, source: &Source) -> Echo {
        let tag = self
            .0
            .mac(&[&boots.to_le_bytes(), &epoch.to_le_bytes(), &source.0]);
        let mut echo = [0u8; ECHO_LEN];
        echo[0] = epoch as u8;
        echo[1..].copy_from_slice(&tag[..ECHO_LEN - 1]);
        Echo(echo)
    }

    /// The Echo to hand `source` now.
    pub(crate) fn issue(&self, boots: u32, now_ms: u64, source: &Source) -> Echo {
        self.value(boots, epoch(now_ms), source)
    }

    /// Whether `echo` is one this device gave `source` in this epoch or the last. One
    /// HMAC whatever the input: the clear epoch byte picks which epoch to check.
    pub(crate) fn verify(&self, boots: u32, now_ms: u64, source: &Source, echo: &[u8]) -> bool {
        if echo.len() != ECHO_LEN {
            return false;
        }
        let epoch = epoch(now_ms);
        let claimed = if echo[0] == epoch as u8 {
            epoch
        } else if epoch > 0 && echo[0] == (epoch - 1) as u8 {
            epoch - 1
        } else {
            return false;
        };
        bool::from(self.value(boots, claimed, source).0.ct_eq(echo))
    }
}
