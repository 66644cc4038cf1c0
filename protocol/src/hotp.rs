//! HOTP one-time passwords (RFC 4226), generic over the HMAC hash.
//!
//! slotpay uses HMAC-SHA256 ([`HmacSha256`]); HMAC-SHA1 ([`HmacSha1`]) is here to prove
//! conformance with RFC 4226's own test vectors.
use hmac::digest::KeyInit;
use hmac::Mac;
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// HMAC-SHA1, RFC 4226's original hash.
pub type HmacSha1 = hmac::Hmac<sha1::Sha1>;
/// HMAC-SHA256, slotpay's default.
pub type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Shortest shared secret accepted by the verifier (RFC 4226 R6: at least 128 bits).
pub const MIN_KEY_LEN: usize = 16;
/// Widest look-ahead window a verifier accepts; bounds the work per attempt.
pub const MAX_WINDOW: u32 = 1024;

/// Why an OTP, or a verifier set-up, was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HotpError {
    #[error("{0} digits: an OTP has 6 to 9 digits")]
    InvalidDigits(u8),
    #[error("OTP must be exactly {expected} decimal digits")]
    Malformed { expected: u8 },
    #[error("shared key of {0} bytes is shorter than 16")]
    KeyTooShort(usize),
    #[error("look-ahead window {0} is larger than {max}", max = MAX_WINDOW)]
    WindowTooLarge(u32),
    #[error("OTP does not match any counter in the window")]
    NoMatch,
    #[error("the counter space is used up: re-key the device")]
    CounterExhausted,
}

/// Number of decimal digits of an OTP, 6 to 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digits(u8);

impl Digits {
    pub const SIX: Digits = Digits(6);
    pub const EIGHT: Digits = Digits(8);

    pub const fn new(digits: u8) -> Result<Self, HotpError> {
        if digits >= 6 && digits <= 9 {
            Ok(Digits(digits))
        } else {
            Err(HotpError::InvalidDigits(digits))
        }
    }

    pub const fn get(self) -> u8 {
        self.0
    }

    const fn modulus(self) -> u32 {
        10u32.pow(self.0 as u32)
    }
}

/// A one-time password: a value below 10^digits, shown zero-padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Otp {
    value: u32,
    digits: Digits,
}

impl Otp {
    pub fn value(&self) -> u32 {
        self.value
    }

    pub fn digits(&self) -> Digits {
        self.digits
    }

    /// Parses exactly `digits` ASCII decimal digits (leading zeros included).
    pub fn parse(text: &str, digits: Digits) -> Result<Self, HotpError> {
        let malformed = HotpError::Malformed {
            expected: digits.get(),
        };
        if text.len() != usize::from(digits.get()) || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed);
        }
        let value = text.parse::<u32>().map_err(|_| malformed)?;
        Ok(Otp { value, digits })
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
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(&counter.to_be_bytes());
    let tag = mac.finalize().into_bytes();
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

/// How many counters below `next_counter` a verifier still remembers, one bit each.
pub const HISTORY: u64 = 64;

/// The validating side: accepts an OTP for any counter in
/// `next_counter .. next_counter + window`, and any counter among the [`HISTORY`] below
/// it that was skipped (issued but not yet presented), each at most once.
///
/// Several clients of one device present their OTPs in any order, so a later counter
/// arriving first must not void an earlier, paid one. A bitmap of the counters used below
/// `next_counter` (as in IPsec's anti-replay window) keeps every counter single-use.
/// Persist [`Self::next_counter`] and [`Self::used_below`] durably before acting on a
/// success.
#[derive(Debug, Clone)]
pub struct HotpVerifier<M> {
    next_counter: u64,
    /// Bit i set: counter `next_counter - 1 - i` is used (or was never issued).
    used_below: u64,
    window: u32,
    digits: Digits,
    _mac: core::marker::PhantomData<M>,
}

impl<M: Mac + KeyInit> HotpVerifier<M> {
    /// A verifier whose next acceptable counter is `next_counter`; every counter below it
    /// counts as used.
    pub fn new(next_counter: u64, window: u32, digits: Digits) -> Result<Self, HotpError> {
        Self::with_history(next_counter, u64::MAX, window, digits)
    }

    /// A verifier restored from its persisted state.
    pub fn with_history(
        next_counter: u64,
        used_below: u64,
        window: u32,
        digits: Digits,
    ) -> Result<Self, HotpError> {
        if window == 0 || window > MAX_WINDOW {
            return Err(HotpError::WindowTooLarge(window));
        }
        // Counters below 0 do not exist: mark them used.
        let nonexistent = if next_counter >= HISTORY {
            0
        } else {
            u64::MAX << next_counter
        };
        Ok(Self {
            next_counter,
            used_below: used_below | nonexistent,
            window,
            digits,
            _mac: core::marker::PhantomData,
        })
    }

    pub fn next_counter(&self) -> u64 {
        self.next_counter
    }

    /// The bitmap of used counters below [`Self::next_counter`], for persistence.
    pub fn used_below(&self) -> u64 {
        self.used_below
    }

    pub fn window(&self) -> u32 {
        self.window
    }

    pub fn digits(&self) -> Digits {
        self.digits
    }

    /// Checks `otp` against every counter in the window, in constant time with respect to
    /// which counter (if any) matches. On success returns the matched counter and moves the
    /// next acceptable counter just past it; on failure changes nothing.
    pub fn verify(&mut self, key: &[u8], otp: &Otp) -> Result<u64, HotpError> {
        if key.len() < MIN_KEY_LEN {
            return Err(HotpError::KeyTooShort(key.len()));
        }
        if otp.digits != self.digits {
            return Err(HotpError::Malformed {
                expected: self.digits.get(),
            });
        }
        let mut found = subtle::Choice::from(0);
        let mut matched = 0u64;
        // Every candidate is computed whatever matches, so timing does not tell which
        // counter matched. Used history counters are skipped: the bitmap is not secret,
        // and in the usual in-order case this costs no HMAC at all.
        for back in 0..HISTORY {
            if (self.used_below >> back) & 1 == 1 {
                continue;
            }
            let Some(counter) = self.next_counter.checked_sub(back + 1) else {
                break;
            };
            let candidate = hotp::<M>(key, counter, self.digits);
            let hit = candidate.value.ct_eq(&otp.value) & !found;
            matched.conditional_assign(&counter, hit);
            found |= hit;
        }
        for step in 0..u64::from(self.window) {
            let Some(counter) = self.next_counter.checked_add(step) else {
                break;
            };
            let candidate = hotp::<M>(key, counter, self.digits);
            let hit = candidate.value.ct_eq(&otp.value) & !found;
            matched.conditional_assign(&counter, hit);
            found |= hit;
        }
        if !bool::from(found) {
            return Err(HotpError::NoMatch);
        }
        if matched < self.next_counter {
            self.used_below |= 1 << (self.next_counter - 1 - matched);
        } else {
            let next = matched.checked_add(1).ok_or(HotpError::CounterExhausted)?;
            let shift = next - self.next_counter;
            let shifted = if shift >= HISTORY {
                0
            } else {
                self.used_below << shift
            };
            // The matched counter is used; the ones skipped over stay available.
            self.used_below = shifted | 1;
            self.next_counter = next;
        }
        Ok(matched)
    }
}
