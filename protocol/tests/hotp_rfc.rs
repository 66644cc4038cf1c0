//! HOTP against the RFCs' own published values and values computed independently
//! (Python's hmac module), the token's text form, and the RFC 4303-style replay window.
use protocol::hotp::{
    hotp, DeviceKey, Digits, HmacSha1, HmacSha256, HotpError, Otp, ReplayWindow, Token,
    DEFAULT_WINDOW, MAX_WINDOW,
};

/// RFC 4226 Appendix D: secret "12345678901234567890", counters 0..=9.
const RFC4226_SECRET: &[u8] = b"12345678901234567890";
const RFC4226_VALUES: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

/// HOTP-SHA256 of the 32-byte ASCII key "1234...9012" (RFC 6238's SHA-256 seed),
/// computed with Python 3's hmac/hashlib, not with this crate:
/// `hmac.new(key, struct.pack(">Q", c), hashlib.sha256)` + RFC 4226 truncation.
const SHA256_KEY: &[u8; 32] = b"12345678901234567890123456789012";
const SHA256_VALUES_8: [&str; 10] = [
    "18920136", "46119246", "30882438", "02975832", "54791148", "89744399", "75668833", "11276785",
    "53778880", "43242340",
];
const SHA256_VALUES_6: [&str; 10] = [
    "920136", "119246", "882438", "975832", "791148", "744399", "668833", "276785", "778880",
    "242340",
];
/// Same key, 8 digits, counters 1000, 2^32, 2^63 and 2^64 - 1 (Python as above).
const SHA256_LARGE: [(u64, &str); 4] = [
    (1000, "40926047"),
    (1 << 32, "66351443"),
    (1 << 63, "73107488"),
    (u64::MAX, "40635627"),
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
    for (time, expected) in RFC6238_SHA256 {
        let otp = hotp::<HmacSha256>(SHA256_KEY, time / 30, Digits::EIGHT);
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
fn tokens_carry_independently_computed_sha256_values() {
    let key = DeviceKey(*SHA256_KEY);
    for counter in 0..10u64 {
        let token = Token::issue(&key, counter, Digits::EIGHT);
        let expected = format!("{counter}:{}", SHA256_VALUES_8[counter as usize]);
        assert_eq!(token.to_string(), expected);
        let six = Token::issue(&key, counter, Digits::SIX);
        assert_eq!(six.otp().to_string(), SHA256_VALUES_6[counter as usize]);
        assert!(Token::parse(&expected).unwrap().matches(&key));
    }
    for (counter, otp) in SHA256_LARGE {
        let text = format!("{counter}:{otp}");
        assert_eq!(Token::issue(&key, counter, Digits::EIGHT).to_string(), text);
        assert!(Token::parse(&text).unwrap().matches(&key), "{text}");
    }
}

#[test]
fn a_token_matches_only_its_named_counter() {
    let key = DeviceKey(*SHA256_KEY);
    // The OTP of counter 3 ("02975832") presented as counter 1..=9 (or 0): one HMAC,
    // for the named counter, so it matches nowhere else, however many are open.
    let otp = Otp::parse(SHA256_VALUES_8[3], Digits::EIGHT).unwrap();
    for counter in 0..10u64 {
        assert_eq!(Token::new(counter, otp).matches(&key), counter == 3);
    }
    let other = DeviceKey([0x11; 32]);
    assert!(!Token::issue(&key, 3, Digits::EIGHT).matches(&other));
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
fn best_guess_odds_are_the_truncation_bias() {
    // ceil(2^31 / 10^d), worked out by hand: 2147483648 / 10^6 = 2147.48..., and so on.
    for (digits, odds) in [(6, 2148), (7, 215), (8, 22), (9, 3)] {
        assert_eq!(Digits::new(digits).unwrap().best_guess_odds(), odds);
    }
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
    assert!(Otp::new(1_000_000, Digits::SIX).is_err());
    assert_eq!(
        Otp::new(999_999, Digits::SIX).unwrap().to_string(),
        "999999"
    );
}

#[test]
fn token_text_is_strict() {
    let t = Token::parse("1042:07081804").unwrap();
    assert_eq!(
        (t.counter(), t.otp().value(), t.digits()),
        (1042, 7081804, Digits::EIGHT)
    );
    assert_eq!(t.to_string(), "1042:07081804");
    assert_eq!(Token::parse("0:000000").unwrap().counter(), 0);
    let longest = "18446744073709551615:123456789";
    assert_eq!(longest.len(), Token::MAX_TEXT_LEN);
    assert_eq!(Token::parse(longest).unwrap().counter(), u64::MAX);
    for bad in [
        "",
        ":",
        "1:",
        ":12345678",
        "01:12345678",
        "1:12345",
        "1:1234567890",
        "18446744073709551616:12345678",
        " 1:12345678",
        "1:12345678\n",
        "+1:12345678",
        "-1:12345678",
        "1:1234567a",
        "1::12345678",
        "1:12:345678",
        "12345678",
        "１:12345678",
    ] {
        assert_eq!(Token::parse(bad), Err(HotpError::BadToken), "{bad:?}");
    }
    assert_eq!(
        Token::parse_bytes(b"7:\xff2345678"),
        Err(HotpError::BadToken)
    );
}

#[test]
fn device_keys_are_exactly_32_bytes() {
    assert_eq!(
        DeviceKey::from_slice(&[1; 16]),
        Err(HotpError::KeyLength(16))
    );
    assert_eq!(
        DeviceKey::from_slice(&[1; 31]),
        Err(HotpError::KeyLength(31))
    );
    assert_eq!(
        DeviceKey::from_slice(&[1; 33]),
        Err(HotpError::KeyLength(33))
    );
    let key = DeviceKey::from_slice(&[7; 32]).unwrap();
    assert_eq!(key.as_bytes(), &[7; 32]);
    assert_eq!(format!("{key:?}"), "DeviceKey(..)");
    assert_ne!(key.derive(b"echo"), key.derive(b"other"));
}

fn granted(window: &mut ReplayWindow, counter: u64) -> Result<(), HotpError> {
    window.accept(counter)
}

#[test]
fn window_grants_in_order_and_out_of_order_once_each() {
    let mut w = ReplayWindow::new(8).unwrap();
    assert_eq!(w.highest(), None);
    for c in [0, 1, 2] {
        assert_eq!(granted(&mut w, c), Ok(()));
    }
    // Out of order: 6 first, then the skipped 3, 5 and 4, each once.
    for c in [6, 3, 5, 4] {
        assert_eq!(granted(&mut w, c), Ok(()), "{c}");
    }
    for c in 0..=6 {
        assert_eq!(granted(&mut w, c), Err(HotpError::AlreadyGranted(c)));
        assert!(w.is_granted(c));
    }
    assert_eq!(w.highest(), Some(6));
    assert_eq!(w.words(), &[0b111_1111]);
}

#[test]
fn window_expires_a_counter_only_once_w_newer_ones_pass_it() {
    let mut w = ReplayWindow::new(4).unwrap();
    granted(&mut w, 10).unwrap();
    // 7, 8, 9 are open (within 4 of 10); 6 is below the window.
    assert_eq!(w.lowest_open(), 7);
    assert_eq!(w.check(6), Err(HotpError::Expired(6)));
    granted(&mut w, 7).unwrap();
    assert_eq!(w.check(8), Ok(()));
    granted(&mut w, 12).unwrap();
    // A window of 4 at 12 keeps 9..=12: 8 expired only now, 9 is still good once.
    assert_eq!(w.check(8), Err(HotpError::Expired(8)));
    assert_eq!(granted(&mut w, 9), Ok(()));
    assert_eq!(granted(&mut w, 9), Err(HotpError::AlreadyGranted(9)));
    // Far ahead: the whole window goes, everything below it is expired.
    granted(&mut w, 1_000).unwrap();
    assert_eq!(w.words(), &[1]);
    assert_eq!(w.check(12), Err(HotpError::Expired(12)));
    assert_eq!(granted(&mut w, 999), Ok(()));
}

#[test]
fn unpresented_counters_never_block_later_ones() {
    // The AS sold 0..5000; 0..2000 were never presented, and of the rest every third
    // came first, in order. None of the unpresented ones blocks anything.
    let mut w = ReplayWindow::new(DEFAULT_WINDOW).unwrap();
    for c in (2_000..5_000).step_by(3) {
        assert_eq!(granted(&mut w, c), Ok(()), "{c}");
    }
    let highest = 2_000 + 3 * 999;
    assert_eq!(w.highest(), Some(highest));
    // The skipped ones arrive late, newest first: granted once each within 1024.
    for c in (highest - 1_023..=highest).rev() {
        let expect = if (c - 2_000) % 3 == 0 {
            Err(HotpError::AlreadyGranted(c))
        } else {
            Ok(())
        };
        assert_eq!(granted(&mut w, c), expect, "{c}");
    }
    for c in [0, 1_999, highest - 1_024] {
        assert_eq!(w.check(c), Err(HotpError::Expired(c)));
    }
}

#[test]
fn window_survives_its_persisted_form_and_resizing() {
    let mut w = ReplayWindow::new(130).unwrap();
    for c in [5, 70, 200, 129, 199, 100] {
        granted(&mut w, c).unwrap();
    }
    let restored = ReplayWindow::from_parts(130, w.highest(), w.words()).unwrap();
    assert_eq!(restored, w);
    assert_eq!(w.words().len(), 3);
    assert!(ReplayWindow::from_parts(130, w.highest(), &w.words()[..2]).is_err());
    // Shrinking keeps the newest history; growing marks the unknown older part granted.
    let small = w.resized(64).unwrap();
    assert_eq!(small.check(199), Err(HotpError::AlreadyGranted(199)));
    assert_eq!(small.check(150), Ok(()));
    assert_eq!(small.check(136), Err(HotpError::Expired(136)));
    let large = small.resized(1_024).unwrap();
    assert_eq!(large.check(150), Ok(()));
    assert_eq!(large.check(136), Err(HotpError::AlreadyGranted(136)));
    assert_eq!(large.check(100), Err(HotpError::AlreadyGranted(100)));
    let empty = ReplayWindow::new(64).unwrap().resized(128).unwrap();
    assert_eq!(empty.check(0), Ok(()));
}

/// The in-place forms (what the firmware boots with) give the same windows as
/// `from_parts` and `resized`, and leave the window as it was on an error.
#[test]
fn in_place_restore_and_resize_agree_with_the_copying_forms() {
    let mut w = ReplayWindow::new(130).unwrap();
    for c in [5, 70, 200, 129, 199, 100] {
        granted(&mut w, c).unwrap();
    }
    let le: Vec<u8> = w.words().iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut in_place = ReplayWindow::new(7).unwrap();
    in_place.set_from_le_bytes(130, w.highest(), &le).unwrap();
    assert_eq!(
        in_place,
        ReplayWindow::from_parts(130, w.highest(), w.words()).unwrap()
    );
    let mut unset = ReplayWindow::new(7).unwrap();
    unset.set_from_le_bytes(130, None, &le).unwrap();
    assert_eq!(
        unset,
        ReplayWindow::from_parts(130, None, w.words()).unwrap()
    );
    for bad in [(130, &le[..16]), (0, &le[..]), (3000, &le[..])] {
        let before = in_place;
        assert!(in_place
            .set_from_le_bytes(bad.0, w.highest(), bad.1)
            .is_err());
        assert_eq!(in_place, before);
    }
    for base in [w, ReplayWindow::new(130).unwrap()] {
        for size in [1, 63, 64, 65, 130, 131, 1024, 2048] {
            let mut r = base;
            r.resize(size).unwrap();
            assert_eq!(r, base.resized(size).unwrap(), "resize to {size}");
            for again in [1, 100, 2048] {
                let mut twice = r;
                twice.resize(again).unwrap();
                assert_eq!(twice, r.resized(again).unwrap());
            }
        }
        let mut r = base;
        assert!(r.resize(0).is_err() && r.resize(2049).is_err());
        assert_eq!(r, base);
    }
}

#[test]
fn window_size_is_bounded() {
    assert_eq!(ReplayWindow::new(0), Err(HotpError::WindowSize(0)));
    assert!(ReplayWindow::new(MAX_WINDOW).is_ok());
    assert_eq!(
        ReplayWindow::new(MAX_WINDOW + 1),
        Err(HotpError::WindowSize(MAX_WINDOW + 1))
    );
    let mut top = ReplayWindow::new(16).unwrap();
    granted(&mut top, u64::MAX).unwrap();
    assert_eq!(
        granted(&mut top, u64::MAX),
        Err(HotpError::AlreadyGranted(u64::MAX))
    );
    assert_eq!(granted(&mut top, u64::MAX - 15), Ok(()));
    assert_eq!(
        top.check(u64::MAX - 16),
        Err(HotpError::Expired(u64::MAX - 16))
    );
}

/// The precomputed-state HMAC (what the device keeps) is the hmac crate's HMAC-SHA256,
/// for message lengths across the padding's edges (55, 56, 63, 64 bytes and more) and
/// messages in several parts; its HOTP values and token checks agree too.
#[test]
fn hmac_from_the_keyed_state_is_hmac_sha256() {
    use hmac::digest::KeyInit;
    use hmac::Mac;
    use protocol::hotp::{hotp_from_state, HmacSha256Keyed};
    let keys = [[0u8; 32], [0xff; 32], *b"12345678901234567890123456789012"];
    let data: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
    for key in keys {
        let keyed = HmacSha256Keyed::new(&key);
        for len in [0, 1, 8, 28, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128, 200] {
            let msg = &data[..len];
            let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&key).unwrap();
            mac.update(msg);
            let want: [u8; 32] = mac.finalize().into_bytes().into();
            assert_eq!(keyed.mac(&[msg]), want, "length {len}");
            let (a, b) = msg.split_at(len / 3);
            let (b, c) = b.split_at(b.len() / 2);
            assert_eq!(keyed.mac(&[a, b, c]), want, "length {len} in parts");
        }
        let device_key = DeviceKey(key);
        assert_eq!(device_key.keyed_state(), keyed);
        for counter in [0, 1, 1000, 1 << 32, u64::MAX] {
            for digits in [Digits::SIX, Digits::EIGHT, Digits::NINE] {
                let otp = hotp::<HmacSha256>(&key, counter, digits);
                assert_eq!(hotp_from_state(&keyed, counter, digits), otp);
                let token = Token::new(counter, otp);
                assert!(token.matches_state(&keyed) && token.matches(&device_key));
                let wrong = Otp::new(
                    (otp.value() + 1) % 10u32.pow(u32::from(digits.get())),
                    digits,
                );
                assert!(!Token::new(counter, wrong.unwrap()).matches_state(&keyed));
            }
        }
    }
}
