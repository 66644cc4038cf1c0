//! HOTP against the RFCs' own published values.
use protocol::hotp::{hotp, Digits, HmacSha1, HmacSha256, HotpError, HotpVerifier, Otp};

/// RFC 4226 Appendix D: secret "12345678901234567890", counters 0..=9.
const RFC4226_SECRET: &[u8] = b"12345678901234567890";
const RFC4226_VALUES: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

#[test]
fn rfc4226_appendix_d() {
    for (counter, expected) in RFC4226_VALUES.iter().enumerate() {
        let otp = hotp::<HmacSha1>(RFC4226_SECRET, counter as u64, Digits::SIX);
        assert_eq!(otp.to_string(), *expected, "counter {counter}");
    }
}

/// RFC 6238 Appendix B: (Unix time, TOTP) with X = 30 s, T0 = 0, 8 digits.
const RFC6238_SHA256: [(u64, &str); 6] = [
    (59, "46119246"),
    (1111111109, "68084774"),
    (1111111111, "67062674"),
    (1234567890, "91819424"),
    (2000000000, "90698825"),
    (20000000000, "77737706"),
];
const RFC6238_SHA1: [(u64, &str); 6] = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
];

#[test]
fn rfc6238_appendix_b_sha256_through_hotp() {
    // Errata 2866: the SHA-256 key is the 32-byte ASCII seed.
    let key = b"12345678901234567890123456789012";
    for (time, expected) in RFC6238_SHA256 {
        let otp = hotp::<HmacSha256>(key, time / 30, Digits::EIGHT);
        assert_eq!(otp.to_string(), expected, "time {time}");
    }
}

#[test]
fn rfc6238_appendix_b_sha1_through_hotp() {
    for (time, expected) in RFC6238_SHA1 {
        let otp = hotp::<HmacSha1>(RFC4226_SECRET, time / 30, Digits::EIGHT);
        assert_eq!(otp.to_string(), expected, "time {time}");
    }
}

#[test]
fn digits_are_six_to_nine() {
    for d in 0..=20u8 {
        assert_eq!(Digits::new(d).is_ok(), (6..=9).contains(&d), "{d}");
    }
    // Nine digits still truncates the same 31-bit code: RFC 4226 counter 0 is 1284755224.
    let nine = hotp::<HmacSha1>(RFC4226_SECRET, 0, Digits::new(9).unwrap());
    assert_eq!(nine.to_string(), "284755224");
}

#[test]
fn parse_checks_length_and_digits() {
    assert_eq!(Otp::parse("007081", Digits::SIX).unwrap().value(), 7081);
    assert_eq!(
        Otp::parse("007081", Digits::SIX).unwrap().to_string(),
        "007081"
    );
    for bad in [
        "",
        "12345",
        "1234567",
        "12a456",
        "+12345",
        " 23456",
        "１２３４５６",
    ] {
        assert!(Otp::parse(bad, Digits::SIX).is_err(), "{bad:?}");
    }
}

fn otp(counter: u64) -> Otp {
    hotp::<HmacSha256>(RFC4226_SECRET, counter, Digits::SIX)
}

#[test]
fn verifier_accepts_within_window_and_never_twice() {
    let mut v = HotpVerifier::<HmacSha256>::new(0, 3, Digits::SIX).unwrap();
    assert_eq!(v.verify(RFC4226_SECRET, &otp(0)), Ok(0));
    assert_eq!(v.next_counter(), 1);
    assert_eq!(v.verify(RFC4226_SECRET, &otp(0)), Err(HotpError::NoMatch));
    // Skipping ahead inside the window works; the skipped counters stay good once each
    // (another client may present them later), the used ones never come back.
    assert_eq!(v.verify(RFC4226_SECRET, &otp(3)), Ok(3));
    assert_eq!(v.next_counter(), 4);
    assert_eq!(v.verify(RFC4226_SECRET, &otp(2)), Ok(2));
    assert_eq!(v.verify(RFC4226_SECRET, &otp(1)), Ok(1));
    for used in 0..=3 {
        assert_eq!(
            v.verify(RFC4226_SECRET, &otp(used)),
            Err(HotpError::NoMatch)
        );
    }
    assert_eq!(v.next_counter(), 4);
}

#[test]
fn skipped_counters_survive_a_restore_and_expire_after_the_history() {
    let mut v = HotpVerifier::<HmacSha256>::new(0, 100, Digits::SIX).unwrap();
    assert_eq!(v.verify(RFC4226_SECRET, &otp(5)), Ok(5));
    // Restored from (next_counter, used_below), as a device does after a reboot.
    let mut restored = HotpVerifier::<HmacSha256>::with_history(
        v.next_counter(),
        v.used_below(),
        100,
        Digits::SIX,
    )
    .unwrap();
    assert_eq!(
        restored.verify(RFC4226_SECRET, &otp(5)),
        Err(HotpError::NoMatch)
    );
    assert_eq!(restored.verify(RFC4226_SECRET, &otp(4)), Ok(4));
    assert_eq!(
        restored.verify(RFC4226_SECRET, &otp(4)),
        Err(HotpError::NoMatch)
    );
    // A jump past the whole history forgets the skipped counters below it.
    assert_eq!(restored.verify(RFC4226_SECRET, &otp(90)), Ok(90));
    assert_eq!(
        restored.verify(RFC4226_SECRET, &otp(3)),
        Err(HotpError::NoMatch)
    );
    assert_eq!(restored.verify(RFC4226_SECRET, &otp(27)), Ok(27));
    assert_eq!(
        restored.verify(RFC4226_SECRET, &otp(26)),
        Err(HotpError::NoMatch)
    );
    // `new` treats everything below its counter as used.
    let mut fresh = HotpVerifier::<HmacSha256>::new(10, 3, Digits::SIX).unwrap();
    assert_eq!(
        fresh.verify(RFC4226_SECRET, &otp(9)),
        Err(HotpError::NoMatch)
    );
}

#[test]
fn verifier_rejects_beyond_window_without_moving() {
    let mut v = HotpVerifier::<HmacSha256>::new(10, 5, Digits::SIX).unwrap();
    assert_eq!(v.verify(RFC4226_SECRET, &otp(15)), Err(HotpError::NoMatch));
    assert_eq!(v.next_counter(), 10);
    assert_eq!(v.verify(RFC4226_SECRET, &otp(14)), Ok(14));
}

#[test]
fn verifier_checks_key_digits_window_and_exhaustion() {
    assert_eq!(
        HotpVerifier::<HmacSha256>::new(0, 0, Digits::SIX).err(),
        Some(HotpError::WindowTooLarge(0))
    );
    assert!(HotpVerifier::<HmacSha256>::new(0, 2000, Digits::SIX).is_err());
    let mut v = HotpVerifier::<HmacSha256>::new(0, 3, Digits::SIX).unwrap();
    assert_eq!(v.verify(b"short", &otp(0)), Err(HotpError::KeyTooShort(5)));
    let eight = hotp::<HmacSha256>(RFC4226_SECRET, 0, Digits::EIGHT);
    assert!(matches!(
        v.verify(RFC4226_SECRET, &eight),
        Err(HotpError::Malformed { .. })
    ));
    let mut last = HotpVerifier::<HmacSha256>::new(u64::MAX, 3, Digits::SIX).unwrap();
    assert_eq!(
        last.verify(RFC4226_SECRET, &otp(u64::MAX)),
        Err(HotpError::CounterExhausted)
    );
    assert_eq!(last.next_counter(), u64::MAX);
}

#[test]
fn wrong_key_never_matches() {
    let mut v = HotpVerifier::<HmacSha256>::new(0, 10, Digits::EIGHT).unwrap();
    let other = hotp::<HmacSha256>(b"another-shared-key-0000", 0, Digits::EIGHT);
    // Eight digits over a window of 10: a false match has probability 1e-7.
    assert_eq!(v.verify(RFC4226_SECRET, &other), Err(HotpError::NoMatch));
}
