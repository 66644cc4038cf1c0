//! Guessing and flooding the device core, with the default throttle (3 free failures
//! per source, then 60 s doubling to 1 h; a global budget of 320 failures refilled at
//! 60 per hour, persisted). docs/device.md states the bounds these tests show.
use device::{CounterStore, Device, DeviceConfig, DeviceState, Refusal, Source, Throttle};
use protocol::hotp::{DeviceKey, Digits, Token};

const KEY: [u8; 32] = [0x42; 32];
const CLIENT: Source = Source([0xC1; 16]);
const MINUTE: u64 = 60_000;
const HOUR: u64 = 3_600_000;

#[derive(Default)]
struct Ram {
    saved: Option<DeviceState>,
    writes: u32,
}

impl CounterStore for &mut Ram {
    type Error = ();
    fn load(&mut self) -> Result<Option<DeviceState>, ()> {
        Ok(self.saved)
    }
    fn save(&mut self, state: &DeviceState) -> Result<(), ()> {
        self.saved = Some(*state);
        self.writes += 1;
        Ok(())
    }
}

fn config() -> DeviceConfig {
    DeviceConfig {
        key: DeviceKey(KEY),
        digits: Digits::EIGHT,
        window: 1024,
        throttle: Throttle::default(),
    }
}

fn good(counter: u64) -> String {
    Token::issue(&DeviceKey(KEY), counter, Digits::EIGHT).to_string()
}

/// A token that is certainly wrong: the right OTP plus one.
fn wrong(counter: u64) -> String {
    let right = Token::issue(&DeviceKey(KEY), counter, Digits::EIGHT)
        .otp()
        .value();
    format!("{counter}:{:08}", (right + 1) % 100_000_000)
}

fn attacker(i: u32) -> Source {
    let mut s = [0xA0; 16];
    s[12..].copy_from_slice(&i.to_be_bytes());
    Source(s)
}

/// Presents as a source that receives the device's answers (it echoes the Echo).
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

/// Spends the whole global budget from many sources at `now_ms`; returns the failures.
fn exhaust<S: CounterStore>(device: &mut Device<S>, now_ms: u64) -> u32 {
    let mut failures = 0;
    for i in 0.. {
        match present(
            device,
            attacker(i),
            &wrong(1_000_000 + u64::from(i)),
            now_ms,
        ) {
            Err(Refusal::Invalid) => failures += 1,
            Err(Refusal::Throttled { .. }) => return failures,
            other => panic!("{other:?}"),
        }
    }
    unreachable!()
}

#[test]
fn one_source_backs_off_doubling_and_alone() {
    let mut ram = Ram::default();
    let mut device = Device::boot(config(), &mut ram).unwrap();
    let guesser = attacker(1);
    for t in 0..3 {
        assert_eq!(
            present(&mut device, guesser, &wrong(10), t),
            Err(Refusal::Invalid)
        );
    }
    // The fourth failure starts 60 s; during it even a right token from it is refused,
    assert_eq!(
        present(&mut device, guesser, &wrong(10), 10),
        Err(Refusal::Invalid)
    );
    assert_eq!(
        present(&mut device, guesser, &good(0), 500),
        Err(Refusal::Throttled {
            retry_in_ms: MINUTE + 10 - 500
        })
    );
    // but nobody else is slowed down by it.
    assert_eq!(present(&mut device, CLIENT, &good(1), 500), Ok(1));
    // Fifth failure: 120 s, then 240 s, ... capped at one hour.
    let mut t = MINUTE + 10;
    let mut delay = 2 * MINUTE;
    for _ in 0..8 {
        assert_eq!(
            present(&mut device, guesser, &wrong(10), t),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            present(&mut device, guesser, &wrong(10), t + 1),
            Err(Refusal::Throttled {
                retry_in_ms: delay.min(HOUR) - 1
            })
        );
        t += delay.min(HOUR);
        delay *= 2;
    }
    // A success clears its record.
    assert_eq!(present(&mut device, guesser, &good(2), t), Ok(2));
    for i in 0..3 {
        assert_eq!(
            present(&mut device, guesser, &wrong(10), t + i),
            Err(Refusal::Invalid)
        );
    }
}

/// Before this fix one bad OTP per delay period from spoofed addresses kept every
/// client out: "the paying client was refused 10 of 10 times". An off-path spoofer
/// never gets the Echo its addresses were sent, so nothing it sends is ever checked.
#[test]
fn a_spoofed_flood_never_reaches_a_token_check() {
    let mut ram = Ram::default();
    let mut device = Device::boot(config(), &mut ram).unwrap();
    let budget = device.failures_left(0);
    let mut client_counter = 0;
    for second in 0..600u64 {
        let now = second * 1_000;
        // 30 spoofed datagrams a second: no Echo, a made-up Echo, the client's own
        // address, and an Echo it saw for its own address replayed as another's.
        for k in 0..30u32 {
            let spoofed = if k == 0 {
                CLIENT
            } else {
                attacker(k + second as u32 * 30)
            };
            let own_echo = device.echo(&attacker(0), now);
            let forged = [k as u8; 9];
            let offered: Option<&[u8]> = match k % 3 {
                0 => None,
                1 => Some(&forged),
                _ => Some(own_echo.as_bytes()),
            };
            let result = device.present(&spoofed, offered, wrong(5).as_bytes(), now);
            assert!(matches!(result, Err(Refusal::NeedEcho(_))), "{result:?}");
        }
        // The paying client presents once a minute: one Echo round trip, then granted.
        if second % 60 == 30 {
            assert_eq!(
                device.present(&CLIENT, None, good(client_counter).as_bytes(), now),
                Err(Refusal::NeedEcho(device.echo(&CLIENT, now)))
            );
            assert_eq!(
                present(&mut device, CLIENT, &good(client_counter), now),
                Ok(client_counter)
            );
            client_counter += 1;
        }
    }
    assert_eq!(client_counter, 10);
    assert_eq!(
        device.failures_left(600_000),
        budget,
        "no failure was counted"
    );
}

/// The global budget is the bound on guessing: from any number of real sources (each
/// with the Echo), over 30 days with a reboot every day, no more than
/// 320 + 60 per hour failures are ever checked. Per year that is 525,920 guesses; at 8
/// digits (22 / 2^31 per guess) 5.4e-3 expected successes per device.
#[test]
fn guesses_are_bounded_by_the_global_budget_across_reboots() {
    let days = 30;
    let mut ram = Ram::default();
    let mut failures = 0u64;
    let mut source = 0u32;
    for _day in 0..days {
        let mut device = Device::boot(config(), &mut ram).unwrap();
        let mut t = 0;
        while t < 24 * HOUR {
            source = source.wrapping_add(1);
            match present(
                &mut device,
                attacker(source),
                &wrong(5_000_000 + u64::from(source)),
                t,
            ) {
                Err(Refusal::Invalid) => failures += 1,
                // An attacker that knows exactly when the next check is affordable.
                Err(Refusal::Throttled { retry_in_ms }) => t += retry_in_ms,
                other => panic!("{other:?}"),
            }
        }
    }
    let bound = 320 + 60 * 24 * days;
    assert!(failures <= bound, "{failures} failures > {bound}");
    // The bound is what an attacker gets (minus what reboots cost the device: the
    // unused reservations and the refill while it was off), so it is not loose.
    assert!(
        failures + 16 * days + 60 >= bound,
        "{failures} failures, bound {bound}"
    );
    // Flash writes for those failures: one per 16 (the reservation), plus boots.
    assert!(
        u64::from(ram.writes) <= failures / 16 + 2 * days + 1,
        "{} writes",
        ram.writes
    );
    let per_year = 320.0 + 60.0 * 8_760.0;
    let successes = per_year * f64::from(Digits::EIGHT.best_guess_odds()) / 2f64.powi(31);
    assert!(successes < 1e-2 && successes > 5e-3, "{successes}");
}

/// Before this fix the failure count lived in RAM only: "a reboot reset the throttle".
#[test]
fn a_reboot_does_not_reset_the_global_budget() {
    let mut ram = Ram::default();
    {
        let mut device = Device::boot(config(), &mut ram).unwrap();
        assert_eq!(exhaust(&mut device, 0), 320);
        assert_eq!(
            present(&mut device, CLIENT, &good(0), 0),
            Err(Refusal::Throttled {
                retry_in_ms: MINUTE
            })
        );
    }
    // Power off and on (the clock starts again at 0): still throttled, for a whole
    // refill, since the device cannot count the time it was off.
    let mut device = Device::boot(config(), &mut ram).unwrap();
    assert_eq!(device.failures_left(0), 0);
    assert_eq!(
        present(&mut device, CLIENT, &good(0), 10),
        Err(Refusal::Throttled {
            retry_in_ms: MINUTE - 10
        })
    );
    assert_eq!(present(&mut device, CLIENT, &good(0), MINUTE), Ok(0));
    // Reserved failures that were never used are lost by a reboot, not regained: the
    // first check after a boot debits 16 failures before it runs.
    let mut ram = Ram::default();
    let mut device = Device::boot(config(), &mut ram).unwrap();
    assert_eq!(device.failures_left(0), 320);
    assert_eq!(
        present(&mut device, attacker(1), &wrong(9), 0),
        Err(Refusal::Invalid)
    );
    assert_eq!(device.failures_left(0), 319);
    let mut device = Device::boot(config(), &mut ram).unwrap();
    assert_eq!(device.failures_left(0), 320 - 16);
}

/// With up to 32 attacking addresses (the per-source table's size), each backing off,
/// the global budget never runs out: 48 hours of the fastest such flood and a paying
/// client presenting every 10 minutes is granted at once every time.
#[test]
fn a_flood_from_32_real_sources_never_delays_a_paying_client() {
    let mut ram = Ram::default();
    let mut device = Device::boot(config(), &mut ram).unwrap();
    let mut next = [0u64; 32];
    let mut failures = 0;
    let mut counter = 0;
    let mut t = 0;
    while t <= 48 * HOUR {
        for (i, due) in next.iter_mut().enumerate() {
            if t < *due {
                continue;
            }
            let guess = wrong(9_000_000 + t / 1_000);
            match present(&mut device, attacker(i as u32), &guess, t) {
                Err(Refusal::Invalid) => {
                    failures += 1;
                    *due = t + 1_000;
                }
                Err(Refusal::Throttled { retry_in_ms }) => *due = t + retry_in_ms,
                other => panic!("{other:?}"),
            }
        }
        if t % (10 * MINUTE) == 0 {
            assert_eq!(
                present(&mut device, CLIENT, &good(counter), t),
                Ok(counter),
                "at {t} ms"
            );
            counter += 1;
        }
        t += 1_000;
    }
    assert_eq!(counter, 289);
    // 9 failures per source in the first hour, then about one an hour each.
    assert!((32 * 55..=32 * 58).contains(&failures), "{failures}");
}

/// More addresses than the table remembers can empty the budget: then a check is
/// possible once a minute, first come first served, and once the flood stops the
/// paying client is served within one refill interval (60 s).
#[test]
fn a_flood_from_many_real_sources_delays_a_client_one_refill_after_it_ends() {
    let mut ram = Ram::default();
    let mut device = Device::boot(config(), &mut ram).unwrap();
    assert_eq!(exhaust(&mut device, 0), 320);
    // The flood goes on for an hour, grabbing every refill the moment it comes; a
    // client trying meanwhile is refused (it cannot be told from a guesser).
    let mut t = 0;
    let mut source = 10_000;
    loop {
        match present(&mut device, attacker(source), &wrong(2_000_000 + t), t) {
            Err(Refusal::Invalid) if t >= HOUR => break,
            Err(Refusal::Invalid) => {
                source += 1;
                assert!(matches!(
                    present(&mut device, CLIENT, &good(0), t + 1),
                    Err(Refusal::Throttled { .. })
                ));
            }
            Err(Refusal::Throttled { retry_in_ms }) => {
                assert!(retry_in_ms <= MINUTE);
                t += retry_in_ms;
            }
            other => panic!("{other:?}"),
        }
    }
    // The last check (at t >= 1 h) broke the loop before counting its source.
    assert_eq!(source + 1 - 10_000, 60, "one check a minute");
    // The flood stops; the client is told when to come back, at most a minute away.
    let end = t + 1;
    let wait = match present(&mut device, CLIENT, &good(0), end) {
        Err(Refusal::Throttled { retry_in_ms }) => retry_in_ms,
        other => panic!("{other:?}"),
    };
    assert!(wait <= MINUTE, "{wait}");
    assert_eq!(present(&mut device, CLIENT, &good(0), end + wait), Ok(0));
}
