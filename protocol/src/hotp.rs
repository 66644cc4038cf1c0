//! HOTP one-time passwords (RFC 4226) and the tokens slotpay's devices accept.
//!
//! A [`Token`] names its counter: the client presents `<counter>:<otp>`, so the device
//! computes exactly one HMAC (for the named counter) per attempt and a guess succeeds
//! with probability about 10^-digits ([`Digits::best_guess_odds`] has the exact figure).
//! Which counters are still acceptable is the device's [`ReplayWindow`] (RFC 4303
//! section 3.4.3 style): every counter once, in any order, until W newer ones pass it.
//!
//! slotpay uses HMAC-SHA256 ([`HmacSha256`]); HMAC-SHA1 ([`HmacSha1`]) is here to prove
//! conformance with RFC 4226's own test vectors.
use hmac::digest::KeyInit;
use hmac::Mac;
use subtle::ConstantTimeEq;

mod keyed;
mod window;
pub use keyed::HmacSha256Keyed;
pub use window::{ReplayWindow, DEFAULT_WINDOW, MAX_WINDOW};

/// HMAC-SHA1, RFC 4226's original hash.
pub type HmacSha1 = hmac::Hmac<sha1::Sha1>;
/// HMAC-SHA256, slotpay's default.
pub type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Length of the key a device shares with the AS: the one rule, used by the AS, the
/// device, its provisioning file and the firmware alike.
pub const KEY_LEN: usize = 32;

/// Why an OTP, a token, a key or a window set-up was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HotpError {
    /// A digit count outside 6 to 9 ([`Digits::new`]).
    #[error("{0} digits: an OTP has 6 to 9 digits")]
    InvalidDigits(u8),
    /// An OTP's text or value that is not exactly its digit count's decimal digits.
    #[error("OTP must be exactly {expected} decimal digits")]
    Malformed {
        /// The digit count the OTP was parsed for.
        expected: u8,
    },
    /// A token's text that is not `<counter>:<otp>` in the one strict spelling.
    #[error("not a token: expected <counter>:<6 to 9 digits>")]
    BadToken,
    /// A device key of another length than [`KEY_LEN`] (the length given).
    #[error("device key of {0} bytes: it must be exactly 32")]
    KeyLength(usize),
    /// A replay window of 0 or more than [`MAX_WINDOW`] counters, or persisted words
    /// that do not fit its size ([`ReplayWindow::from_parts`]).
    #[error("replay window of {0} counters: it must be 1 to {max}", max = MAX_WINDOW)]
    WindowSize(u32),
    /// The device granted this counter before: the token is a replay.
    #[error("counter {0} was already granted")]
    AlreadyGranted(u64),
    /// The counter fell out of the window (a counter at least W above it was granted);
    /// whether it was ever granted is no longer known, so it never will be.
    #[error("counter {0} is below the replay window")]
    Expired(u64),
}

/// The secret a device shares with the AS: exactly [`KEY_LEN`] bytes, by construction.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey(pub [u8; KEY_LEN]);

impl DeviceKey {
    /// The key from raw bytes; anything but exactly 32 bytes is refused.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HotpError> {
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| HotpError::KeyLength(bytes.len()))?;
        Ok(Self(key))
    }

    /// The raw secret (for HMAC keying and the provisioning file; never log it).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// HMAC-SHA256 keyed with this key, for [`Token::matches_keyed`].
    pub fn keyed(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("HMAC accepts keys of any length")
    }

    /// HMAC-SHA256 keyed with this key as its two precomputed chaining values (64
    /// bytes), for [`Token::matches_state`]: what a device keeps.
    pub fn keyed_state(&self) -> HmacSha256Keyed {
        HmacSha256Keyed::new(&self.0)
    }

    /// A key for another purpose, HMAC-SHA256(key, label): the device derives its CoAP
    /// Echo key this way, so a value it hands out never relates to an OTP.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        self.keyed_state().mac(&[label])
    }
}

impl core::fmt::Debug for DeviceKey {
    // Never print the secret (configs and errors get logged).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

/// Number of decimal digits of an OTP, 6 to 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digits(u8);

impl Digits {
    /// Six digits, RFC 4226's minimum (a guess succeeds about once in 10^6).
    pub const SIX: Digits = Digits(6);
    /// Eight digits, slotpay's default for device tokens.
    pub const EIGHT: Digits = Digits(8);
    /// Nine digits, the most a 31-bit truncated code can fill.
    pub const NINE: Digits = Digits(9);

    /// A digit count, refused outside 6 to 9.
    pub const fn new(digits: u8) -> Result<Self, HotpError> {
        if digits >= 6 && digits <= 9 {
            Ok(Digits(digits))
        } else {
            Err(HotpError::InvalidDigits(digits))
        }
    }

    /// The digit count, 6 to 9.
    pub const fn get(self) -> u8 {
        self.0
    }

    const fn modulus(self) -> u32 {
        10u32.pow(self.0 as u32)
    }

    /// The best single guess's chance is `best_guess_odds() / 2^31`: truncation yields a
    /// uniform 31-bit code, reduced mod 10^digits, so the likeliest value has
    /// ceil(2^31 / 10^digits) codes (22 for 8 digits: 1.0245e-8, not exactly 1e-8).
    pub const fn best_guess_odds(self) -> u32 {
        (1u32 << 31).div_ceil(self.modulus())
    }
}

/// A one-time password: a value below 10^digits, shown zero-padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Otp {
    value: u32,
    digits: Digits,
}

impl Otp {
    /// An OTP value, which must be below 10^digits.
    pub fn new(value: u32, digits: Digits) -> Result<Self, HotpError> {
        if value < digits.modulus() {
            Ok(Otp { value, digits })
        } else {
            Err(HotpError::Malformed {
                expected: digits.get(),
            })
        }
    }

    /// The numeric value, below 10^digits (its text form is zero-padded).
    pub fn value(&self) -> u32 {
        self.value
    }

    /// How many digits the OTP is shown and compared with.
    pub fn digits(&self) -> Digits {
        self.digits
    }

    /// Parses exactly `digits` ASCII decimal digits (leading zeros included).
    pub fn parse(text: &str, digits: Digits) -> Result<Self, HotpError> {
        if text.len() != usize::from(digits.get()) {
            return Err(HotpError::Malformed {
                expected: digits.get(),
            });
        }
        let value = decimal(text.as_bytes()).ok_or(HotpError::Malformed {
            expected: digits.get(),
        })?;
        let value = u32::try_from(value).map_err(|_| HotpError::Malformed {
            expected: digits.get(),
        })?;
        Otp::new(value, digits)
    }
}

impl core::fmt::Display for Otp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:0width$}",
            self.value,
            width = usize::from(self.digits.get())
        )
    }
}

/// HOTP(K, C) = Truncate(HMAC(K, C)) mod 10^digits (RFC 4226 section 5.3).
pub fn hotp<M: Mac + KeyInit>(key: &[u8], counter: u64, digits: Digits) -> Otp {
    // HMAC takes keys of any length, so new_from_slice cannot fail for Hmac<_>.
    let mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    hotp_keyed(mac, counter, digits)
}

/// [`hotp`] from an HMAC already keyed (clone a keyed one: a device's key never changes,
/// so it hashes the key's two padded blocks once, at boot, not per check; that halves
/// the SHA-256 compressions per token).
pub fn hotp_keyed<M: Mac>(mut mac: M, counter: u64, digits: Digits) -> Otp {
    mac.update(&counter.to_be_bytes());
    truncate(&mac.finalize().into_bytes(), digits)
}

/// HOTP-SHA256 from the key's precomputed state ([`DeviceKey::keyed_state`]): the same
/// value as [`hotp`] with [`HmacSha256`], computed with no HMAC object on the stack.
pub fn hotp_from_state(keyed: &HmacSha256Keyed, counter: u64, digits: Digits) -> Otp {
    truncate(&keyed.mac(&[&counter.to_be_bytes()]), digits)
}

/// RFC 4226 section 5.3: dynamic truncation of an HMAC tag, mod 10^digits.
fn truncate(tag: &[u8], digits: Digits) -> Otp {
    // Dynamic truncation: the low nibble of the last byte picks 4 bytes; works for any
    // tag of 20 bytes or more (SHA-1, SHA-256, SHA-512), as RFC 6238 uses it.
    let offset = usize::from(tag[tag.len() - 1] & 0x0f);
    let code = u32::from_be_bytes([
        tag[offset] & 0x7f,
        tag[offset + 1],
        tag[offset + 2],
        tag[offset + 3],
    ]);
    Otp {
        value: code % digits.modulus(),
        digits,
    }
}

/// What a client presents to a device: a counter and its HOTP-SHA256 value.
///
/// Text form (the AS's API, the CLI, the CoAP payload): `<counter>:<otp>`, the counter
/// in decimal without leading zeros (`0` itself excepted), the OTP zero-padded to its
/// 6 to 9 digits, nothing else (no sign, no spaces): e.g. `1042:07081804`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    counter: u64,
    otp: Otp,
}

impl Token {
    /// Longest text form: 20 counter digits, the colon, 9 OTP digits.
    pub const MAX_TEXT_LEN: usize = 30;

    /// The token for `counter` of the device holding `key` (what the AS sells).
    pub fn issue(key: &DeviceKey, counter: u64, digits: Digits) -> Self {
        Token {
            counter,
            otp: hotp_from_state(&key.keyed_state(), counter, digits),
        }
    }

    /// A token from its parts, unchecked: whether `otp` belongs to `counter` is
    /// [`Self::matches`]'s question.
    pub fn new(counter: u64, otp: Otp) -> Self {
        Token { counter, otp }
    }

    /// The device counter the token claims to be for (the one HMAC a check computes).
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// The one-time password presented for [`Self::counter`].
    pub fn otp(&self) -> Otp {
        self.otp
    }

    /// The OTP's digit count, as the text form carried it.
    pub fn digits(&self) -> Digits {
        self.otp.digits
    }

    /// Checks the OTP against the one counter the token names: exactly one
    /// HMAC-SHA256, compared in constant time. Says nothing about replay: that is the
    /// [`ReplayWindow`]'s job.
    pub fn matches(&self, key: &DeviceKey) -> bool {
        self.matches_keyed(&key.keyed())
    }

    /// [`Self::matches`] with the key's HMAC state computed once ([`DeviceKey::keyed`]).
    pub fn matches_keyed(&self, keyed: &HmacSha256) -> bool {
        let expected = hotp_keyed(keyed.clone(), self.counter, self.otp.digits);
        bool::from(expected.value.ct_eq(&self.otp.value))
    }

    /// [`Self::matches`] with the key's precomputed state ([`DeviceKey::keyed_state`]),
    /// what a device checks with.
    pub fn matches_state(&self, keyed: &HmacSha256Keyed) -> bool {
        let expected = hotp_from_state(keyed, self.counter, self.otp.digits);
        bool::from(expected.value.ct_eq(&self.otp.value))
    }

    /// Parses the text form `<counter>:<otp>`, strictly (see [`Token`]).
    pub fn parse(text: &str) -> Result<Self, HotpError> {
        Self::parse_bytes(text.as_bytes())
    }

    /// Parses the text form from raw bytes (a CoAP payload), strictly.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, HotpError> {
        if bytes.len() > Self::MAX_TEXT_LEN {
            return Err(HotpError::BadToken);
        }
        let colon = bytes
            .iter()
            .position(|&b| b == b':')
            .ok_or(HotpError::BadToken)?;
        let (counter, otp) = (&bytes[..colon], &bytes[colon + 1..]);
        // One spelling per counter: "007" and "7" must not both name counter 7.
        if counter.len() > 1 && counter[0] == b'0' {
            return Err(HotpError::BadToken);
        }
        let counter = decimal(counter).ok_or(HotpError::BadToken)?;
        let digits = u8::try_from(otp.len())
            .ok()
            .and_then(|n| Digits::new(n).ok())
            .ok_or(HotpError::BadToken)?;
        let value = decimal(otp)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(HotpError::BadToken)?;
        Ok(Token {
            counter,
            otp: Otp::new(value, digits)?,
        })
    }
}

impl core::fmt::Display for Token {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}", self.counter, self.otp)
    }
}

impl core::str::FromStr for Token {
    type Err = HotpError;
    fn from_str(text: &str) -> Result<Self, HotpError> {
        Token::parse(text)
    }
}

/// 1 to 20 ASCII decimal digits as a u64; `None` for anything else or an overflow.
fn decimal(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}
