//! The device core as a state machine: tokens for any counters, honest or not, in any
//! order, replays, garbage, requests with and without a valid Echo from many sources,
//! time passing, power cuts at any byte of a flash write (A/B pages) and reboots.
//! Checked against a reference: a counter is granted at most once, ever (across
//! reboots and cuts); only above the replay window of the highest granted one; never
//! without a valid Echo or when the save was cut; "used" only for a counter granted or
//! whose save was cut; and the checked failures never exceed the global budget (burst +
//! refill over the time the device was on).
#![no_main]
use arbitrary::Arbitrary;
use device::{AbStore, Device, DeviceConfig, RamFlash, Refusal, Source, Throttle};
use libfuzzer_sys::fuzz_target;
use protocol::hotp::{DeviceKey, Digits, Token};
use std::collections::BTreeSet;

const KEY: [u8; 32] = [0x5A; 32];

#[derive(Debug, Arbitrary)]
enum Op {
    /// The token for `highest + delta` (delta may be negative: an old one); a dishonest
    /// one carries the OTP of the next counter.
    Present {
        delta: i16,
        honest: bool,
        source: u8,
        echo: EchoKind,
        at_ms: u16,
    },
    Garbage {
        bytes: Vec<u8>,
        source: u8,
        at_ms: u16,
    },
    /// The power goes after this many more bytes of flash are written.
    CutPower {
        after: u16,
    },
    Reboot,
}

#[derive(Debug, Arbitrary)]
enum EchoKind {
    Valid,
    None,
    Forged([u8; 9]),
    /// Another source's valid Echo.
    Stolen(u8),
}

#[derive(Debug, Arbitrary)]
struct Case {
    window: u8,
    ops: Vec<Op>,
}

type Flash = RamFlash<512>;

fn source(n: u8) -> Source {
    Source([n; 16])
}

/// Powers the device up. A cut still armed hits the boot's own save (the boot count):
/// that boot fails, the power comes back, and it boots again from a valid state.
fn boot<'a>(config: &DeviceConfig, flash: &'a mut Flash) -> Device<AbStore<&'a mut Flash>> {
    if let Err(e) = Device::boot(config.clone(), AbStore::new(&mut *flash)).map(|_| ()) {
        assert!(matches!(e, Refusal::Storage(_)), "boot: {e:?}");
    }
    flash.cut_after = None;
    Device::boot(config.clone(), AbStore::new(flash)).expect("boots from a valid state")
}

fuzz_target!(|case: Case| {
    let window = u32::from(case.window) * 4 + 1;
    let digits = Digits::new(8).expect("8 digits");
    let throttle = Throttle {
        free_failures: 2,
        base_delay_ms: 10,
        max_delay_ms: 200,
        forget_after_ms: 5_000,
        global_per_hour: 36_000, // one failure per 100 ms of refill
        global_burst: 20,
        reserve: 4,
    };
    let config = DeviceConfig {
        key: DeviceKey(KEY),
        digits,
        window,
        throttle,
    };
    let key = DeviceKey(KEY);
    let mut flash = Flash::new();
    let mut granted = BTreeSet::new();
    // Counters whose save was cut: the state may hold them anyway (a cut can land after
    // the last byte that differs from erased flash), so they may come back "used" (a
    // lost slot), but they were never reported granted.
    let mut cut_short = BTreeSet::new();
    let mut highest: Option<u64> = None;
    let mut failures = 0u64;
    let mut on_ms = 0u64; // time on, over all boots
    let mut now = 0u64; // time since this boot
    let mut device = boot(&config, &mut flash);
    for op in case.ops.iter().take(256) {
        match op {
            Op::Present {
                delta,
                honest,
                source: s,
                echo,
                at_ms,
            } => {
                now += u64::from(*at_ms);
                on_ms += u64::from(*at_ms);
                let base = highest.unwrap_or(0);
                let Some(counter) = base.checked_add_signed(i64::from(*delta)) else {
                    continue;
                };
                let token = if *honest {
                    Token::issue(&key, counter, digits)
                } else {
                    let next = Token::issue(&key, counter.wrapping_add(1), digits);
                    Token::new(counter, next.otp())
                };
                let text = token.to_string();
                let from = source(*s);
                let valid = device.echo(&from, now).0;
                let offered = match echo {
                    EchoKind::Valid => Some(valid),
                    EchoKind::None => None,
                    EchoKind::Forged(bytes) => Some(*bytes),
                    EchoKind::Stolen(other) => Some(device.echo(&source(*other), now).0),
                };
                let fresh = offered == Some(valid);
                let cut_armed = device.store_mut().pages().cut_after.is_some();
                match device.present(
                    &from,
                    offered.as_ref().map(|e| &e[..]),
                    text.as_bytes(),
                    now,
                ) {
                    Ok(grant) => {
                        assert!(fresh, "granted without a valid Echo");
                        assert_eq!(grant.counter, counter);
                        assert!(granted.insert(counter), "counter {counter} granted twice");
                        // (The device's highest may be above ours, by a cut-short save.)
                        if let Some(h) = highest {
                            assert!(counter + u64::from(window) > h, "below the window");
                        }
                        highest = highest.max(Some(counter));
                    }
                    Err(Refusal::Invalid) => {
                        assert!(fresh, "checked without a valid Echo");
                        failures += 1;
                    }
                    Err(Refusal::Storage(_)) => {
                        assert!(cut_armed, "a save failed without a power cut");
                        cut_short.insert(counter);
                        // The power went: the device is gone until it boots again.
                        drop(device);
                        now = 0;
                        device = boot(&config, &mut flash);
                    }
                    Err(Refusal::NeedEcho(_)) => assert!(!fresh, "a valid Echo refused"),
                    Err(Refusal::Used(c)) => assert!(
                        granted.contains(&c) || cut_short.contains(&c),
                        "{c} is not used"
                    ),
                    Err(_) => {}
                }
                // The budget: the burst plus the refill over the time the device was on.
                assert!(
                    failures <= 20 + on_ms / 100,
                    "{failures} failures in {on_ms} ms"
                );
            }
            Op::Garbage {
                bytes,
                source: s,
                at_ms,
            } => {
                now += u64::from(*at_ms);
                on_ms += u64::from(*at_ms);
                let from = source(*s);
                let echo = device.echo(&from, now);
                match device.present(&from, Some(echo.as_bytes()), bytes, now) {
                    Ok(grant) => {
                        assert!(granted.insert(grant.counter), "granted twice");
                        highest = highest.max(Some(grant.counter));
                    }
                    Err(Refusal::Invalid) => failures += 1,
                    Err(Refusal::Storage(_)) => {
                        drop(device);
                        now = 0;
                        device = boot(&config, &mut flash);
                    }
                    Err(_) => {}
                }
            }
            Op::CutPower { after } => {
                device.store_mut().pages().cut_after = Some(usize::from(*after));
            }
            Op::Reboot => {
                drop(device);
                now = 0; // a reboot restarts the monotonic clock
                device = boot(&config, &mut flash);
            }
        }
    }
});
