//! The codec's edges: malformed messages are refused, every option length and delta
//! encoding reads back, and the device's error texts are `HotpError`'s own.
use super::message::{uint, Message, Writer, CON};
use super::server::hotp_error_text;
use protocol::hotp::HotpError;

#[test]
fn malformed_messages_are_not_messages() {
    let ok = [0x40, 0x01, 0x12, 0x34];
    assert!(Message::parse(&ok).is_some());
    for bad in [
        &[][..],
        &[0x40, 0x01, 0x12][..],
        // Version 2, version 0.
        &[0x80, 0x01, 0x12, 0x34][..],
        &[0x00, 0x01, 0x12, 0x34][..],
        // A 9-byte token (TKL 9 is reserved), a token longer than the datagram.
        &[0x49, 0x01, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9][..],
        &[0x44, 0x01, 0, 0, 1, 2][..],
        // An option whose value runs past the end; a 1-byte extended delta missing.
        &[0x40, 0x01, 0, 0, 0xb3, b'o', b't'][..],
        &[0x40, 0x01, 0, 0, 0xd0][..],
        // Nibble 15 outside the payload marker.
        &[0x40, 0x01, 0, 0, 0xf0][..],
        &[0x40, 0x01, 0, 0, 0x0f][..],
        // A payload marker with no payload.
        &[0x40, 0x01, 0, 0, 0xff][..],
        // Option numbers above 65535.
        &[0x40, 0x01, 0, 0, 0xe0, 0xff, 0xff, 0xe0, 0xff, 0xff][..],
    ] {
        assert!(Message::parse(bad).is_none(), "{bad:02x?}");
    }
}

#[test]
fn every_delta_and_length_encoding_reads_back() {
    let long = [7u8; 300];
    let cases: [(u16, &[u8]); 6] = [
        (11, b"otp"),
        (12, b""),
        (24, &long[..12]),
        (37, &long[..13]),
        (252, &long[..268]),
        (700, &long[..269]),
    ];
    let mut buf = [0u8; 1024];
    let mut w = Writer::new(&mut buf, CON, 0x02, 0xbeef, b"tok");
    for (number, value) in cases {
        w.option(number, value);
    }
    w.text(b"1:").number(0).text(b" ").number(u64::MAX);
    let len = w.finish().expect("fits");
    let m = Message::parse(&buf[..len]).expect("parses");
    assert_eq!(
        (m.kind, m.code, m.id, m.token),
        (CON, 0x02, 0xbeef, &b"tok"[..])
    );
    assert!(m.options().eq(cases.iter().copied()));
    assert_eq!(m.payload, b"1:0 18446744073709551615");
    assert_eq!(m.option(252), Some(&long[..268]));
    assert_eq!(m.option(13), None);
}

#[test]
fn the_writer_refuses_what_cannot_be_written() {
    let mut small = [0u8; 6];
    assert_eq!(
        Writer::new(&mut small, CON, 1, 1, b"")
            .text(b"abc")
            .finish(),
        None
    );
    let mut buf = [0u8; 64];
    assert_eq!(Writer::new(&mut buf, CON, 1, 1, &[0; 9]).finish(), None);
    let mut w = Writer::new(&mut buf, CON, 1, 1, b"");
    w.option(12, b"").option(11, b"x");
    assert_eq!(w.finish(), None, "options out of order");
    let mut w = Writer::new(&mut buf, CON, 1, 1, b"");
    w.text(b"p").option(11, b"x");
    assert_eq!(w.finish(), None, "an option after the payload");
}

#[test]
fn uint_options_have_no_leading_zeros() {
    let mut b = [0u8; 8];
    assert_eq!(uint(0, &mut b), b"");
    assert_eq!(uint(60, &mut b), [60]);
    assert_eq!(uint(3600, &mut b), [0x0e, 0x10]);
    assert_eq!(uint(u64::MAX, &mut b), [0xff; 8]);
}

/// The device writes `HotpError`'s texts without `core::fmt`; they must stay the ones
/// its `Display` gives (the simulator sent those before, and clients log them).
#[test]
fn malformed_texts_are_the_errors_own() {
    for e in [
        HotpError::InvalidDigits(5),
        HotpError::Malformed { expected: 8 },
        HotpError::BadToken,
        HotpError::KeyLength(16),
        HotpError::WindowSize(4096),
        HotpError::AlreadyGranted(u64::MAX),
        HotpError::Expired(7),
    ] {
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf, CON, 1, 1, b"");
        hotp_error_text(&mut w, e);
        let len = w.finish().expect("fits");
        let m = Message::parse(&buf[..len]).expect("parses");
        assert_eq!(
            core::str::from_utf8(m.payload).expect("utf-8"),
            e.to_string()
        );
    }
}
