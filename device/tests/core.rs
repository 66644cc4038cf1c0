//! The device core against tokens computed independently (Python's hmac, see
//! protocol/tests/hotp_rfc.rs): grants, the replay window, persistence and reboots.
//! Throttling and floods: tests/throttle.rs. Power cuts: tests/power_cut.rs.
use device::{CounterStore, Device, DeviceConfig, DeviceState, Refusal, Source, Throttle};
use protocol::hotp::{DeviceKey, Digits, HotpError, Token};

/// RFC 6238's SHA-256 seed; its HOTP-SHA256 values below come from Python 3's hmac.
const KEY: [u8; 32] = *b"12345678901234567890123456789012";
const PYTHON_8_DIGITS: [&str; 10] = [
    "18920136", "46119246", "30882438", "02975832", "54791148", "89744399", "75668833", "11276785",
    "53778880", "43242340",
];
const CLIENT: Source = Source([7; 16]);

/// Storage that survives "reboots" (it is lent to one Device after another).
#[derive(Default)]
struct Flash {
    saved: Option<DeviceState>,
}

impl CounterStore for &mut Flash {
    type Error = &'static str;
    fn load(&mut self) -> Result<Option<DeviceState>, Self::Error> {
        Ok(self.saved)
    }
    fn save(&mut self, state: &DeviceState) -> Result<(), Self::Error> {
        self.saved = Some(*state);
        Ok(())
    }
}

fn config(window: u32) -> DeviceConfig {
    DeviceConfig {
        key: DeviceKey(KEY),
        digits: Digits::EIGHT,
        window,
        throttle: Throttle::default(),
    }
}

fn token(counter: u64) -> String {
    Token::issue(&DeviceKey(KEY), counter, Digits::EIGHT).to_string()
}

/// Presents `text` from `source` with a fresh Echo, as a client does after one round trip.
fn present<S: CounterStore>(
    device: &mut Device<S>,
    source: Source,
    text: &str,
    now_ms: u64,
) -> Result<u64, Refusal<S::Error>> {
    let echo = device.echo(&source, now_ms);
    device
        .present(&source, Some(echo.as_bytes()), text.as_bytes(), now_ms)
        .map(|g| g.counter)
}

#[test]
fn tokens_are_the_independently_computed_values() {
    let mut flash = Flash::default();
    let mut device = Device::boot(config(1024), &mut flash).unwrap();
    for (counter, otp) in PYTHON_8_DIGITS.iter().enumerate() {
        let text = format!("{counter}:{otp}");
        assert_eq!(token(counter as u64), text);
        assert_eq!(present(&mut device, CLIENT, &text, 0), Ok(counter as u64));
    }
}

/// Issue 12's jam: today's device looked 32 counters ahead of its own, so 32 sold and
/// never presented counters made every later OTP fail. Before this fix this test failed
/// with "counter 32: left: Err(Invalid)".
#[test]
fn unpresented_counters_do_not_jam_later_ones() {
    let mut flash = Flash::default();
    let mut device = Device::boot(config(1024), &mut flash).unwrap();
    // The AS sold 0..40; a buyer took 0..32 and never presented them.
    for c in 32..40 {
        assert_eq!(
            present(&mut device, CLIENT, &token(c), 0),
            Ok(c),
            "counter {c}"
        );
    }
    // Then 5000 more were sold and 4000 of them never presented: the rest still open.
    for c in (40..5_040).step_by(5) {
        assert_eq!(
            present(&mut device, CLIENT, &token(c), 0),
            Ok(c),
            "counter {c}"
        );
    }
    // The unpresented ones within 1024 of the highest (5035) are still good, once.
    for c in [5_034, 4_012, 4_021] {
        assert_eq!(
            present(&mut device, CLIENT, &token(c), 0),
            Ok(c),
            "counter {c}"
        );
        assert_eq!(
            present(&mut device, CLIENT, &token(c), 0),
            Err(Refusal::Used(c))
        );
    }
    // Only a counter 1024 below the highest granted has expired.
    for c in [0, 31, 4_011] {
        assert_eq!(
            present(&mut device, CLIENT, &token(c), 0),
            Err(Refusal::Expired(c))
        );
    }
}

/// Before this fix one OTP (no counter) was compared with every counter of the look-ahead
/// and the history: "one attempt matched 32 counters". Now a guess is one HMAC.
#[test]
fn a_guess_is_checked_against_its_named_counter_only() {
    let mut flash = Flash::default();
    let mut device = Device::boot(config(1024), &mut flash).unwrap();
    // Counters 0..9 are all open. The OTP of each, presented as counter 5, matches once
    // (counter 5's own OTP comes last: once granted, 5 is used).
    let mut order: Vec<usize> = (0..10).filter(|&c| c != 5).collect();
    order.push(5);
    for counter in order {
        let otp = PYTHON_8_DIGITS[counter];
        let result = present(
            &mut device,
            Source([counter as u8; 16]),
            &format!("5:{otp}"),
            0,
        );
        if counter == 5 {
            assert_eq!(result, Ok(5));
        } else {
            assert_eq!(result, Err(Refusal::Invalid), "OTP of {counter} as 5");
        }
    }
}

#[test]
fn each_token_grants_once_in_any_order_and_survives_reboot() {
    let mut flash = Flash::default();
    {
        let mut device = Device::boot(config(1024), &mut flash).unwrap();
        assert_eq!(present(&mut device, CLIENT, &token(0), 0), Ok(0));
        assert_eq!(
            present(&mut device, CLIENT, &token(0), 1),
            Err(Refusal::Used(0))
        );
        assert_eq!(present(&mut device, CLIENT, &token(3), 2), Ok(3));
        assert_eq!(device.next_counter(), 4);
    }
    let saved = flash.saved.expect("saved");
    assert_eq!(
        (saved.window.highest(), saved.window.words()[0] & 0b1111),
        (Some(3), 0b1001)
    );
    let mut rebooted = Device::boot(config(1024), &mut flash).unwrap();
    assert_eq!(rebooted.boots(), 2);
    // The skipped counters are still good after the reboot, once.
    assert_eq!(present(&mut rebooted, CLIENT, &token(2), 5), Ok(2));
    assert_eq!(present(&mut rebooted, CLIENT, &token(1), 6), Ok(1));
    for used in 0..=3 {
        assert_eq!(
            present(&mut rebooted, CLIENT, &token(used), 10),
            Err(Refusal::Used(used))
        );
    }
    assert_eq!(present(&mut rebooted, CLIENT, &token(4), 11), Ok(4));
}

#[test]
fn nothing_is_granted_if_the_state_cannot_be_saved() {
    let mut failing = FailingAfter(1, Flash::default());
    let mut device = Device::boot(config(1024), &mut failing).unwrap();
    // The first save after boot (the budget reservation) fails: nothing is checked.
    assert_eq!(
        present(&mut device, CLIENT, &token(0), 0),
        Err(Refusal::Storage("flash write failed"))
    );
    assert_eq!(device.next_counter(), 0, "the window did not move");
    failing.0 = 2;
    let mut device = Device::boot(config(1024), &mut failing).unwrap();
    // Now the reservation is saved but the grant's save fails: still nothing granted.
    assert_eq!(
        present(&mut device, CLIENT, &token(0), 0),
        Err(Refusal::Storage("flash write failed"))
    );
    assert_eq!(device.next_counter(), 0);
    failing.0 = u32::MAX;
    let mut device = Device::boot(config(1024), &mut failing).unwrap();
    assert_eq!(present(&mut device, CLIENT, &token(0), 0), Ok(0));
}

/// Saves succeed `.0` times more, then fail.
struct FailingAfter(u32, Flash);

impl CounterStore for &mut FailingAfter {
    type Error = &'static str;
    fn load(&mut self) -> Result<Option<DeviceState>, Self::Error> {
        Ok(self.1.saved)
    }
    fn save(&mut self, state: &DeviceState) -> Result<(), Self::Error> {
        if self.0 == 0 {
            return Err("flash write failed");
        }
        self.0 = self.0.saturating_sub(1);
        self.1.saved = Some(*state);
        Ok(())
    }
}

#[test]
fn tokens_of_another_device_key_or_digits_are_refused() {
    let mut flash = Flash::default();
    let mut device = Device::boot(config(1024), &mut flash).unwrap();
    let other = Token::issue(&DeviceKey([0x99; 32]), 0, Digits::EIGHT).to_string();
    assert_eq!(
        present(&mut device, CLIENT, &other, 0),
        Err(Refusal::Invalid)
    );
    let six = Token::issue(&DeviceKey(KEY), 0, Digits::SIX).to_string();
    assert!(matches!(
        present(&mut device, CLIENT, &six, 0),
        Err(Refusal::Malformed(HotpError::Malformed { expected: 8 }))
    ));
}

#[test]
fn malformed_used_and_expired_tokens_cost_no_guess() {
    let mut flash = Flash::default();
    let mut device = Device::boot(config(64), &mut flash).unwrap();
    present(&mut device, CLIENT, &token(100), 0).unwrap();
    let left = device.failures_left(0);
    let attacker = Source([9; 16]);
    for _ in 0..1_000 {
        for bad in [
            "",
            "12345678",
            "1:123",
            "01:12345678",
            "x:12345678",
            "1:1234567890",
        ] {
            assert!(matches!(
                present(&mut device, attacker, bad, 0),
                Err(Refusal::Malformed(_))
            ));
        }
        assert_eq!(
            present(&mut device, attacker, &token(100), 0),
            Err(Refusal::Used(100))
        );
        assert_eq!(
            present(&mut device, attacker, "36:00000000", 0),
            Err(Refusal::Expired(36))
        );
    }
    assert_eq!(device.failures_left(0), left, "no budget spent");
    // The attacker's source is not throttled by them either.
    assert_eq!(present(&mut device, attacker, &token(37), 0), Ok(37));
}

#[test]
fn echo_values_are_per_source_fresh_and_per_boot() {
    let mut flash = Flash::default();
    let echo;
    {
        let mut device = Device::boot(config(1024), &mut flash).unwrap();
        let t = token(0);
        // No Echo, a made-up one, another source's: nothing checked, an Echo offered.
        let mine = device.echo(&CLIENT, 1_000);
        let theirs = device.echo(&Source([1; 16]), 1_000);
        for offered in [None, Some(&[0u8; 9][..]), Some(theirs.as_bytes())] {
            assert_eq!(
                device.present(&CLIENT, offered, t.as_bytes(), 1_000),
                Err(Refusal::NeedEcho(mine))
            );
        }
        // Good for its 30 s epoch and the next, not after.
        assert_eq!(
            device.present(&CLIENT, Some(mine.as_bytes()), token(0).as_bytes(), 59_999),
            Ok(device::Grant { counter: 0 })
        );
        assert!(matches!(
            device.present(&CLIENT, Some(mine.as_bytes()), token(1).as_bytes(), 60_000),
            Err(Refusal::NeedEcho(_))
        ));
        echo = device.echo(&CLIENT, 60_000);
    }
    // After a reboot (the clock starts again at 0), no Echo of the last boot is good.
    let mut device = Device::boot(config(1024), &mut flash).unwrap();
    assert!(matches!(
        device.present(&CLIENT, Some(echo.as_bytes()), token(1).as_bytes(), 60_000),
        Err(Refusal::NeedEcho(_))
    ));
}

#[test]
fn ipv4_sources_map_and_ipv6_sources_are_their_64_prefix() {
    let v4: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let mapped: std::net::IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    assert_eq!(Source::from_ip(v4), Source::from_ip(mapped));
    let a: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let c: std::net::IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(Source::from_ip(a), Source::from_ip(b));
    assert_ne!(Source::from_ip(a), Source::from_ip(c));
}

#[test]
fn the_state_encoding_round_trips_and_detects_corruption() {
    let mut flash = Flash::default();
    let mut device = Device::boot(config(200), &mut flash).unwrap();
    for c in [3, 90, 250, 170] {
        present(&mut device, CLIENT, &token(c), 0).unwrap();
    }
    let state = flash.saved.expect("saved");
    let mut bytes = [0u8; DeviceState::MAX_ENCODED_LEN];
    let len = state.encode(&mut bytes);
    assert_eq!(len, 29 + 4 * 8 + 4);
    assert_eq!(DeviceState::decode(&bytes[..len]), Ok(state));
    for i in 0..len {
        let mut torn = bytes;
        torn[i] ^= 0x10;
        assert!(DeviceState::decode(&torn[..len]).is_err(), "byte {i}");
    }
    assert!(DeviceState::decode(&bytes[..len - 1]).is_err());
    // CRC-32 (IEEE) of "123456789" is 0xCBF43926 (its published check value).
    assert_eq!(device::crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn a_changed_window_size_never_reopens_a_counter() {
    let mut flash = Flash::default();
    {
        let mut device = Device::boot(config(64), &mut flash).unwrap();
        present(&mut device, CLIENT, &token(100), 0).unwrap();
        present(&mut device, CLIENT, &token(50), 0).unwrap();
    }
    // Re-provisioned with W = 1024: counters below the old window count as granted.
    let mut device = Device::boot(config(1024), &mut flash).unwrap();
    assert_eq!(
        present(&mut device, CLIENT, &token(36), 0),
        Err(Refusal::Used(36))
    );
    assert_eq!(
        present(&mut device, CLIENT, &token(50), 0),
        Err(Refusal::Used(50))
    );
    assert_eq!(present(&mut device, CLIENT, &token(51), 0), Ok(51));
}

/// Firmware boots its device in place (`Device::unbooted` is const, `start` boots it):
/// before that it checks nothing, a failed start leaves it unbooted, and a second start
/// is a reboot (the boot count saved, the window kept, the RAM back-off cleared).
#[test]
fn an_unbooted_device_checks_nothing_until_it_starts_in_place() {
    use device::ConfigError;
    let mut flash = Flash::default();
    let mut d = Device::unbooted(&mut flash);
    assert_eq!(
        present(&mut d, CLIENT, &token(0), 0),
        Err(Refusal::Config(ConfigError::NotBooted))
    );
    assert_eq!((d.boots(), d.next_counter(), d.window()), (0, 0, None));
    assert!(matches!(
        d.start(config(0)),
        Err(Refusal::Config(ConfigError::Window(_)))
    ));
    assert_eq!(
        present(&mut d, CLIENT, &token(0), 0),
        Err(Refusal::Config(ConfigError::NotBooted))
    );
    d.start(config(64)).expect("boot");
    assert_eq!(present(&mut d, CLIENT, &token(0), 0), Ok(0));
    let wrong = format!(
        "5:{:08}",
        (Token::issue(&DeviceKey(KEY), 5, Digits::EIGHT)
            .otp()
            .value()
            + 1)
            % 100_000_000
    );
    for _ in 0..4 {
        assert_eq!(present(&mut d, CLIENT, &wrong, 0), Err(Refusal::Invalid));
    }
    assert!(matches!(
        present(&mut d, CLIENT, &wrong, 0),
        Err(Refusal::Throttled { .. })
    ));
    d.start(config(64)).expect("reboot");
    assert_eq!((d.boots(), d.next_counter()), (2, 1));
    assert_eq!(present(&mut d, CLIENT, &token(0), 0), Err(Refusal::Used(0)));
    // The back-off was in RAM: cleared by the reboot (the global budget is what stays).
    assert_eq!(present(&mut d, CLIENT, &wrong, 0), Err(Refusal::Invalid));
    assert_eq!(flash.saved.map(|s| s.boots), Some(2));
}
