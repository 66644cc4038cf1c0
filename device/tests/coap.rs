//! The device's CoAP side without a socket: tokens open the device once each, across a
//! reboot from its flash, retransmissions get the first answer, every answer parses back.
//! Over real UDP with the simulator and lost answers: device-sim/tests/simulator.rs.
use device::{
    parse_answer, status_request, token_request, AbStore, CoapDevice, Device, Event, Outcome,
    Provision, RamFlash, Source, Status, DEDUP_CAPACITY, EXCHANGE_LIFETIME_MS,
};
use protocol::hotp::{DeviceKey, Digits, Token};
use std::net::SocketAddr;

const KEY: [u8; 32] = [0x17; 32];

fn provision() -> Provision {
    let mut p = Provision::new("lock-1", DeviceKey(KEY));
    p.digits = Digits::EIGHT;
    p
}

type Flash = RamFlash<512>;
type Coap = CoapDevice<AbStore<Flash>>;

/// Boots from `flash` (erased: a first boot).
fn boot(flash: Flash) -> Coap {
    let p = provision();
    let device = Device::boot(p.device_config(), AbStore::new(flash)).expect("boot");
    CoapDevice::new(device, p.slot_ms())
}

/// Power off, power on: only the flash survives.
fn reboot(device: Coap) -> Coap {
    boot(device.device.into_store().into_pages())
}

fn token(counter: u64) -> Token {
    Token::issue(&DeviceKey(KEY), counter, Digits::EIGHT)
}

fn from() -> SocketAddr {
    "192.0.2.1:40000".parse().expect("addr")
}

/// One request with a fresh Echo (the client's second round trip), as message `id`.
fn ask(device: &mut Coap, id: u16, text: &str, now_ms: u64) -> Outcome {
    let echo = device.device.echo(&Source::from_ip(from().ip()), now_ms);
    let (reply, _) = device
        .handle(
            from(),
            &token_request(id, b"tk", text, Some(echo.as_bytes())),
            now_ms,
        )
        .expect("a response");
    let answer = parse_answer(&reply).expect("a CoAP response");
    assert_eq!(
        (answer.message_id, answer.token.as_slice()),
        (id, &b"tk"[..])
    );
    answer.outcome
}

#[test]
fn tokens_grant_slots_once_across_reboots() {
    let mut device = boot(Flash::new());
    // Without an Echo: 4.01 with one, nothing checked.
    let (reply, _) = device
        .handle(
            from(),
            &token_request(1, b"a", &token(0).to_string(), None),
            0,
        )
        .expect("answer");
    assert!(
        matches!(parse_answer(&reply).map(|a| a.outcome), Some(Outcome::EchoRequired(e)) if e.len() == 9)
    );
    let granted = |counter, seconds| Outcome::Granted { counter, seconds };
    assert_eq!(
        ask(&mut device, 2, &token(0).to_string(), 0),
        granted(0, 60)
    );
    // A second token extends the slot; skipping one is fine.
    assert_eq!(
        ask(&mut device, 3, &token(2).to_string(), 1_000),
        granted(2, 119)
    );
    assert_eq!(
        ask(&mut device, 4, &token(2).to_string(), 2_000),
        Outcome::Used(2)
    );
    let mut rebooted = reboot(device);
    assert_eq!(rebooted.device.next_counter(), 3);
    assert_eq!(
        ask(&mut rebooted, 5, &token(0).to_string(), 0),
        Outcome::Used(0)
    );
    // Counter 1 was skipped, not used: still good once, after the reboot too.
    assert_eq!(
        ask(&mut rebooted, 6, &token(1).to_string(), 0),
        granted(1, 60)
    );
    assert_eq!(
        ask(&mut rebooted, 7, &token(1).to_string(), 0),
        Outcome::Used(1)
    );
    assert!(matches!(
        ask(&mut rebooted, 8, "12ab", 0),
        Outcome::Malformed(_)
    ));
    let wrong = format!("9:{:08}", (token(9).otp().value() + 1) % 100_000_000);
    assert_eq!(ask(&mut rebooted, 9, &wrong, 0), Outcome::Invalid);
    let (reply, _) = rebooted
        .handle(from(), &status_request(10, b"s"), 500)
        .expect("status");
    assert_eq!(
        parse_answer(&reply).map(|a| a.outcome),
        Some(Outcome::Status(Status {
            next_counter: 3,
            active_ms: 59_500,
            window: 1024
        }))
    );
}

/// RFC 7252 section 4.5. Before this fix, a lost ACK made the retransmission a second
/// check: "retransmission answered Unauthorized invalid or already used OTP".
#[test]
fn a_retransmitted_request_gets_the_first_answer_not_a_second_check() {
    let mut device = boot(Flash::new());
    let echo = device.device.echo(&Source::from_ip(from().ip()), 0);
    let request = token_request(77, b"tk", &token(0).to_string(), Some(echo.as_bytes()));
    let (first, event) = device.handle(from(), &request, 0).expect("answer");
    assert!(matches!(event, Event::Granted { counter: 0, .. }));
    // The ACK was lost; the client retransmits the same message (same message ID).
    let (second, event) = device.handle(from(), &request, 2_000).expect("answer");
    assert_eq!(event, Event::Duplicate);
    assert_eq!(first, second, "the same answer, byte for byte");
    // A failed check retransmitted is not a second failure either.
    let wrong = format!("5:{:08}", (token(5).otp().value() + 1) % 100_000_000);
    let budget = device.device.failures_left(3_000);
    let bad = token_request(78, b"tk", &wrong, Some(echo.as_bytes()));
    for _ in 0..5 {
        device.handle(from(), &bad, 3_000).expect("answer");
    }
    assert_eq!(device.device.failures_left(3_000), budget - 1);
    // The same message ID from another endpoint is another exchange.
    let other: SocketAddr = "192.0.2.1:40001".parse().expect("addr");
    let (_, event) = device.handle(other, &request, 4_000).expect("answer");
    assert!(matches!(event, Event::Refused(_)));
    // After EXCHANGE_LIFETIME the message ID is fresh again: checked anew, refused as
    // used, never granted twice.
    let late = EXCHANGE_LIFETIME_MS + 1;
    let echo = device.device.echo(&Source::from_ip(from().ip()), late);
    let again = token_request(77, b"tk", &token(0).to_string(), Some(echo.as_bytes()));
    let (answer, event) = device.handle(from(), &again, late).expect("answer");
    assert!(matches!(event, Event::Refused(_)));
    assert_eq!(
        parse_answer(&answer).map(|a| a.outcome),
        Some(Outcome::Used(0))
    );
}

/// A spoofed flood cannot push a grant out of the deduplication: spoofed requests never
/// carry a valid Echo, so their answers (an Echo challenge) are not remembered, and a
/// client whose ACK was lost still gets its grant back, not "used".
#[test]
fn a_spoofed_flood_does_not_evict_a_grant_awaiting_its_retransmission() {
    let mut device = boot(Flash::new());
    let echo = device.device.echo(&Source::from_ip(from().ip()), 0);
    let request = token_request(77, b"tk", &token(0).to_string(), Some(echo.as_bytes()));
    let (first, event) = device.handle(from(), &request, 0).expect("answer");
    assert!(matches!(event, Event::Granted { counter: 0, .. }));
    // More spoofed datagrams than the deduplication holds, all within one exchange
    // lifetime, each from its own forged endpoint.
    for i in 0..2 * DEDUP_CAPACITY as u32 {
        let spoofed: SocketAddr = format!(
            "198.51.{}.{}:{}",
            (i >> 8) & 0xff,
            i & 0xff,
            1024 + (i % 60_000)
        )
        .parse()
        .expect("addr");
        let guess = token_request(i as u16, b"sp", "1:12345678", None);
        device.handle(spoofed, &guess, 1_000).expect("answer");
    }
    let (second, event) = device.handle(from(), &request, 2_000).expect("answer");
    assert_eq!(event, Event::Duplicate, "the grant was forgotten");
    assert_eq!(first, second);
}

#[test]
fn every_answer_parses_back() {
    let mut device = boot(Flash::new());
    for (i, text) in ["", "1:2", "99999999999999999999999:12345678", "1:123456789"]
        .iter()
        .enumerate()
    {
        assert!(
            matches!(ask(&mut device, i as u16, text, 0), Outcome::Malformed(_)),
            "{text:?}"
        );
    }
    let (reply, _) = device
        .handle(from(), &status_request(100, b"s")[..], 0)
        .expect("status");
    assert!(matches!(
        parse_answer(&reply).map(|a| a.outcome),
        Some(Outcome::Status(_))
    ));
    // Not a request (an answer, garbage): ignored, as RFC 7252 section 4.2 says.
    assert!(device.handle(from(), &reply, 0).is_none());
    assert!(device.handle(from(), b"\x40", 0).is_none());
}

/// A microcontroller's deduplication holds a few exchanges (`CoapDevice<_, N>`): beyond
/// `N` checked requests within the exchange lifetime the oldest is forgotten, and its
/// retransmission is checked afresh: `used`, never a second grant.
#[test]
fn a_small_deduplication_forgets_the_oldest_and_never_grants_twice() {
    let p = provision();
    let device = Device::boot(p.device_config(), AbStore::new(Flash::new())).expect("boot");
    let mut device: CoapDevice<_, 2> = CoapDevice::with_capacity(device, p.slot_ms());
    let echo = device.device.echo(&Source::from_ip(from().ip()), 0);
    let request = |c: u64| {
        token_request(
            c as u16,
            b"tk",
            &token(c).to_string(),
            Some(echo.as_bytes()),
        )
    };
    let mut out = [0u8; device::MAX_ANSWER_LEN];
    let first = device
        .handle_into(from(), &request(0), 0, &mut out)
        .map(|(n, _)| out[..n].to_vec())
        .expect("answer");
    assert_eq!(
        device.handle(from(), &request(0), 1),
        Some((first, Event::Duplicate))
    );
    for c in 1..=2 {
        assert!(matches!(
            device.handle(from(), &request(c), 2),
            Some((_, Event::Granted { .. }))
        ));
    }
    let (again, event) = device.handle(from(), &request(0), 3).expect("answer");
    assert!(matches!(event, Event::Refused(_)), "{event:?}");
    assert_eq!(
        parse_answer(&again).map(|a| a.outcome),
        Some(Outcome::Used(0))
    );
    // An answer buffer too short is refused before any check: no answer, and no grant
    // that could not be reported.
    assert!(device
        .handle_into(from(), &request(9), 4, &mut [0u8; 8])
        .is_none());
    assert!(matches!(
        device.handle(from(), &request(9), 5),
        Some((_, Event::Granted { counter: 9, .. }))
    ));
}
