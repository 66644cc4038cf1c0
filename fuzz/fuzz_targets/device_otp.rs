//! The device's OTP verifier as a state machine: OTPs for any counters, in any order,
//! replays, garbage text, time passing, failed flash writes and reboots from the saved
//! state. Checked against a reference: a counter is granted at most once, ever (across
//! reboots), only if the AS could have issued it (at or above the first counter, within
//! the look-ahead window of the highest granted one), and never when the save failed.
#![no_main]
use arbitrary::Arbitrary;
use device_sim::core::{CounterStore, Device, DeviceConfig, DeviceState, Refusal, Throttle};
use libfuzzer_sys::fuzz_target;
use protocol::hotp::{hotp, Digits, HmacSha256};
use std::collections::BTreeSet;

const KEY: [u8; 32] = [0x5A; 32];

#[derive(Debug, Arbitrary)]
enum Op {
    /// The OTP for `next_counter + delta` (delta may be negative: an old one).
    Present {
        delta: i16,
        at_ms: u16,
    },
    Garbage {
        text: String,
        at_ms: u16,
    },
    FailNextSave,
    Reboot,
}

#[derive(Debug, Arbitrary)]
struct Case {
    window: u8,
    ops: Vec<Op>,
}

#[derive(Default)]
struct Flash {
    saved: Option<DeviceState>,
    fail_next: bool,
}

impl CounterStore for &mut Flash {
    type Error = ();
    fn load(&mut self) -> Result<Option<DeviceState>, ()> {
        Ok(self.saved)
    }
    fn save(&mut self, state: &DeviceState) -> Result<(), ()> {
        if std::mem::take(&mut self.fail_next) {
            return Err(());
        }
        self.saved = Some(*state);
        Ok(())
    }
}

fuzz_target!(|case: Case| {
    let window = u32::from(case.window % 32) + 1;
    let digits = Digits::new(8).expect("8 digits");
    let config = DeviceConfig {
        key: KEY,
        digits,
        window,
        throttle: Throttle {
            free_failures: 3,
            base_delay_ms: 10,
            max_delay_ms: 100,
        },
    };
    let mut flash = Flash::default();
    let mut granted = BTreeSet::new();
    let mut now = 0u64;
    let mut fail_armed = false;
    let mut device = Device::boot(config.clone(), &mut flash).expect("boot");
    for op in case.ops.iter().take(256) {
        match op {
            Op::Present { delta, at_ms } => {
                now += u64::from(*at_ms);
                let next = device.next_counter();
                let Some(counter) = next.checked_add_signed(i64::from(*delta)) else {
                    continue;
                };
                let otp = hotp::<HmacSha256>(&KEY, counter, digits).to_string();
                let failing = fail_armed;
                match device.present(&otp, now) {
                    Ok(grant) => {
                        assert!(!failing, "granted although the save failed");
                        // Another counter with the same 8 digits may match (1 in 10^8 per
                        // try): what matters is that the granted counter is new.
                        assert!(
                            granted.insert(grant.counter),
                            "counter {} granted twice",
                            grant.counter
                        );
                        assert!(
                            grant.counter < next + u64::from(window),
                            "beyond the window"
                        );
                        fail_armed = false;
                    }
                    Err(Refusal::Storage(())) => fail_armed = false,
                    Err(_) => {}
                }
            }
            Op::Garbage { text, at_ms } => {
                now += u64::from(*at_ms);
                match device.present(text, now) {
                    Ok(grant) => {
                        assert!(!fail_armed, "granted although the save failed");
                        assert!(
                            granted.insert(grant.counter),
                            "counter {} granted twice",
                            grant.counter
                        );
                    }
                    Err(Refusal::Storage(())) => fail_armed = false,
                    Err(_) => {}
                }
            }
            Op::FailNextSave => {
                drop(device);
                flash.fail_next = true;
                fail_armed = true;
                device = Device::boot(config.clone(), &mut flash).expect("boot");
            }
            Op::Reboot => {
                drop(device);
                flash.fail_next = false;
                fail_armed = false;
                now = 0; // a reboot restarts the monotonic clock
                device = Device::boot(config.clone(), &mut flash).expect("reboot");
            }
        }
    }
});
