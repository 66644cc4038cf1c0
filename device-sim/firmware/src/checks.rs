//! The checks the firmware runs on the emulated core, each against values not computed
//! by the code under test: RFC 4226's Appendix D, HOTP-SHA256 values from Python's
//! hmac module, the replay window's rules, and power cuts during the state save.
use device::{AbStore, CounterStore, Device, DeviceConfig, RamFlash, Refusal, Source, Throttle};
use protocol::hotp::{hotp, DeviceKey, Digits, HmacSha1, Token};

/// The simulated flash: two 512-byte pages.
pub type Flash = RamFlash<512>;
type Result = core::result::Result<(), &'static str>;

const RFC4226_SECRET: &[u8] = b"12345678901234567890";
const RFC4226_VALUES: [u32; 10] = [
    755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
];
/// HOTP-SHA256 of RFC 6238's 32-byte seed, 8 digits, computed with Python 3's hmac.
const SEED: [u8; 32] = *b"12345678901234567890123456789012";
const PYTHON_8: [u32; 10] = [
    18920136, 46119246, 30882438, 2975832, 54791148, 89744399, 75668833, 11276785, 53778880,
    43242340,
];
const PYTHON_LARGE: [(u64, &str); 4] = [
    (1000, "1000:40926047"),
    (1 << 32, "4294967296:66351443"),
    (1 << 63, "9223372036854775808:73107488"),
    (u64::MAX, "18446744073709551615:40635627"),
];
const CLIENT: Source = Source([0xC1; 16]);

/// A token's text in a stack buffer (no heap, no `core::fmt` on the device).
pub struct Text {
    buf: [u8; Token::MAX_TEXT_LEN],
    len: usize,
}

impl Text {
    /// `<counter>:<otp>`, the OTP zero-padded to its digits (docs/device.md).
    pub fn of(token: &Token) -> Self {
        let mut text = Text {
            buf: [0; Token::MAX_TEXT_LEN],
            len: 0,
        };
        text.decimal(token.counter(), 1);
        text.push(b':');
        text.decimal(
            u64::from(token.otp().value()),
            usize::from(token.digits().get()),
        );
        text
    }

    fn push(&mut self, b: u8) {
        // At most 20 + 1 + 9 bytes: MAX_TEXT_LEN.
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// `value` in decimal, zero-padded to at least `width` digits.
    fn decimal(&mut self, value: u64, width: usize) {
        let mut digits = [0u8; 20];
        let at = device::decimal(value, &mut digits);
        for _ in digits.len() - at..width {
            self.push(b'0');
        }
        for &d in &digits[at..] {
            self.push(d);
        }
    }

    /// The text, as a device receives it in a CoAP payload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The settings every check boots its device with: `key`, 8 digits, a window of 1024
/// counters, the default throttle.
pub fn config(key: [u8; 32]) -> DeviceConfig {
    DeviceConfig {
        key: DeviceKey(key),
        digits: Digits::EIGHT,
        window: 1024,
        throttle: Throttle::default(),
    }
}

fn token(counter: u64) -> Text {
    Text::of(&Token::issue(&DeviceKey(SEED), counter, Digits::EIGHT))
}

/// A certainly wrong token for `counter`: the right OTP plus one.
fn wrong(counter: u64) -> Text {
    let right = Token::issue(&DeviceKey(SEED), counter, Digits::EIGHT).otp();
    let otp = protocol::hotp::Otp::new((right.value() + 1) % 100_000_000, Digits::EIGHT);
    Text::of(&Token::new(counter, otp.unwrap_or(right)))
}

fn present<S: CounterStore>(
    device: &mut Device<S>,
    source: Source,
    text: &Text,
    now_ms: u64,
) -> core::result::Result<u64, Refusal<S::Error>> {
    let echo = device.echo(&source, now_ms);
    device
        .present(&source, Some(echo.as_bytes()), text.as_bytes(), now_ms)
        .map(|g| g.counter)
}

fn erase(flash: &mut Flash) {
    for page in flash.pages.iter_mut() {
        page.fill(0xFF);
    }
    flash.cut_after = None;
}

/// Boots a device on `flash`; `None` if it cannot. (An Option, not a Result with a
/// message: that would be one more 2 KiB copy of the device on an 8 KiB board.)
fn boot(flash: &mut Flash) -> Option<Device<AbStore<&mut Flash>>> {
    Device::boot(config(SEED), AbStore::new(flash)).ok()
}

fn ensure(ok: bool, why: &'static str) -> Result {
    if ok {
        Ok(())
    } else {
        Err(why)
    }
}

/// HOTP-SHA1 of RFC 4226's secret for counters 0 to 9 equals Appendix D's values.
#[inline(never)]
pub fn rfc4226_appendix_d() -> Result {
    for (counter, expected) in RFC4226_VALUES.iter().enumerate() {
        let otp = hotp::<HmacSha1>(RFC4226_SECRET, counter as u64, Digits::SIX);
        ensure(
            otp.value() == *expected,
            "RFC 4226 Appendix D value differs",
        )?;
    }
    Ok(())
}

/// Tokens (HOTP-SHA256, 8 and 6 digits) equal Python's values, large counters included;
/// their text round-trips and a counter with a leading zero does not parse.
#[inline(never)]
pub fn hotp_sha256_python_values() -> Result {
    let key = DeviceKey(SEED);
    for (counter, expected) in PYTHON_8.iter().enumerate() {
        let t = Token::issue(&key, counter as u64, Digits::EIGHT);
        ensure(
            t.otp().value() == *expected,
            "HOTP-SHA256 differs from Python",
        )?;
        let six = Token::issue(&key, counter as u64, Digits::SIX)
            .otp()
            .value();
        ensure(six == expected % 1_000_000, "6-digit HOTP-SHA256 differs")?;
    }
    for (counter, text) in PYTHON_LARGE {
        let issued = Token::issue(&key, counter, Digits::EIGHT);
        ensure(
            Text::of(&issued).as_bytes() == text.as_bytes(),
            "token text differs",
        )?;
        let parsed = Token::parse(text).map_err(|_| "token text does not parse")?;
        ensure(
            parsed == issued && parsed.matches(&key),
            "parsed token differs",
        )?;
    }
    ensure(
        Token::parse("01:12345678").is_err(),
        "a leading zero parsed",
    )
}

/// In order, out of order, replayed, expired: through the whole device core.
#[inline(never)]
pub fn replay_window(flash: &mut Flash) -> Result {
    erase(flash);
    let Some(mut d) = boot(flash) else {
        return Err("boot failed");
    };
    for c in 0..64 {
        ensure(
            present(&mut d, CLIENT, &token(c), 0) == Ok(c),
            "in order: refused",
        )?;
    }
    for c in [70, 66, 68, 65, 69, 67] {
        ensure(
            present(&mut d, CLIENT, &token(c), 0) == Ok(c),
            "out of order: refused",
        )?;
    }
    for c in (0..=70).filter(|c| *c != 64) {
        ensure(
            present(&mut d, CLIENT, &token(c), 0) == Err(Refusal::Used(c)),
            "replayed: not refused as used",
        )?;
    }
    // 1099 slides the window of 1024 up to 76..=1099: 64 and 71..=75 expire unused.
    ensure(
        present(&mut d, CLIENT, &token(1_099), 0) == Ok(1_099),
        "far ahead: refused",
    )?;
    for c in [64, 71, 75] {
        ensure(
            present(&mut d, CLIENT, &token(c), 0) == Err(Refusal::Expired(c)),
            "expired: not refused as expired",
        )?;
    }
    ensure(
        present(&mut d, CLIENT, &token(76), 0) == Ok(76),
        "lowest open: refused",
    )?;
    // The device computes one HMAC for the named counter: counter 77's OTP presented as
    // 78 matches nothing though both are open.
    let mut as_78 = token(77);
    as_78.buf[1] = b'8';
    ensure(
        present(&mut d, CLIENT, &as_78, 0) == Err(Refusal::Invalid),
        "an OTP matched another counter",
    )
}

/// Sold counters never presented block nothing: 3000 sold, 2000 never presented.
#[inline(never)]
pub fn jammed_by_unused(flash: &mut Flash) -> Result {
    erase(flash);
    let Some(mut d) = boot(flash) else {
        return Err("boot failed");
    };
    for c in (2_000..5_000).step_by(4) {
        ensure(
            present(&mut d, CLIENT, &token(c), 0) == Ok(c),
            "a later token refused",
        )?;
    }
    // Highest 4996: the unpresented ones from 3973 up are still good, once.
    for c in [4_995, 3_973, 4_001] {
        ensure(
            present(&mut d, CLIENT, &token(c), 0) == Ok(c),
            "an unpresented one refused",
        )?;
        ensure(
            present(&mut d, CLIENT, &token(c), 0) == Err(Refusal::Used(c)),
            "granted twice",
        )?;
    }
    for c in [0, 1_999, 3_972] {
        ensure(
            present(&mut d, CLIENT, &token(c), 0) == Err(Refusal::Expired(c)),
            "not expired",
        )?;
    }
    Ok(())
}

/// Spoofed requests (no Echo) are never checked; 320 failures empty the budget; a
/// reboot does not refill it.
#[inline(never)]
pub fn throttle_survives_reboot(flash: &mut Flash) -> Result {
    erase(flash);
    {
        let Some(mut d) = boot(flash) else {
            return Err("boot failed");
        };
        for i in 0..1_000u32 {
            let mut s = [0u8; 16];
            s[..4].copy_from_slice(&i.to_le_bytes());
            let r = d.present(&Source(s), None, wrong(9).as_bytes(), 0);
            ensure(
                matches!(r, Err(Refusal::NeedEcho(_))),
                "a spoofed request was checked",
            )?;
        }
        ensure(d.failures_left(0) == 320, "spoofed requests spent budget")?;
        let mut failures = 0;
        for i in 0..400u32 {
            let mut s = [0xAA; 16];
            s[..4].copy_from_slice(&i.to_le_bytes());
            match present(&mut d, Source(s), &wrong(100 + u64::from(i)), 0) {
                Err(Refusal::Invalid) => failures += 1,
                Err(Refusal::Throttled { .. }) => break,
                _ => return Err("unexpected answer to a wrong token"),
            }
        }
        ensure(failures == 320, "the global budget is not 320 failures")?;
    }
    let Some(mut d) = boot(flash) else {
        return Err("boot failed");
    };
    ensure(
        present(&mut d, CLIENT, &token(0), 0)
            == Err(Refusal::Throttled {
                retry_in_ms: 60_000,
            }),
        "a reboot reset the throttle",
    )?;
    ensure(
        present(&mut d, CLIENT, &token(0), 60_000) == Ok(0),
        "not granted after refill",
    )
}

/// A power cut at every byte of the erases and programs of a grant (the budget
/// reservation and the grant's save): the device always boots again, from the old or
/// the new state, and never grants the token twice.
#[inline(never)]
pub fn power_cut_during_save(flash: &mut Flash, base: &mut [[u8; 512]; 2]) -> Result {
    erase(flash);
    {
        let Some(mut d) = boot(flash) else {
            return Err("boot failed");
        };
        for c in 0..5 {
            ensure(
                present(&mut d, CLIENT, &token(c), 0) == Ok(c),
                "set-up refused",
            )?;
        }
    }
    *base = flash.pages;
    let mut cuts = 0u32;
    for cut in 0..4_000 {
        flash.pages = *base;
        flash.cut_after = None;
        let first = {
            let Some(mut d) = boot(flash) else {
                return Err("boot failed");
            };
            d.store_mut().pages().cut_after = Some(cut);
            present(&mut d, CLIENT, &token(7), 0)
        };
        flash.cut_after = None;
        let Some(mut d) = boot(flash) else {
            return Err("no valid state after a power cut");
        };
        for c in 0..5 {
            ensure(
                present(&mut d, CLIENT, &token(c), 0) == Err(Refusal::Used(c)),
                "old grant lost",
            )?;
        }
        let second = present(&mut d, CLIENT, &token(7), 0);
        match first {
            Ok(_) => {
                ensure(
                    second == Err(Refusal::Used(7)),
                    "granted twice after a power cut",
                )?;
                break;
            }
            Err(Refusal::Storage(_)) => {
                cuts += 1;
                ensure(
                    matches!(second, Ok(7) | Err(Refusal::Used(7))),
                    "unexpected answer after a power cut",
                )?;
            }
            Err(_) => return Err("unexpected refusal"),
        }
    }
    ensure(cuts > 1_000, "too few cut points")
}
