//! The device core against OTPs computed independently by the protocol's RFC 4226 HOTP.
use device_sim::core::{CounterStore, Device, DeviceConfig, DeviceState, Refusal, Throttle};
use protocol::hotp::{hotp, Digits, HmacSha256};

const KEY: [u8; 32] = *b"device-key-shared-with-the-AS-01";

/// Storage that survives "reboots" (it is moved from one Device into the next) and can
/// be made to fail.
#[derive(Default)]
struct Flash {
    saved: Option<DeviceState>,
    writes: u32,
    broken: bool,
}

impl CounterStore for &mut Flash {
    type Error = &'static str;
    fn load(&mut self) -> Result<Option<DeviceState>, Self::Error> {
        Ok(self.saved)
    }
    fn save(&mut self, state: &DeviceState) -> Result<(), Self::Error> {
        if self.broken {
            return Err("flash write failed");
        }
        self.saved = Some(*state);
        self.writes += 1;
        Ok(())
    }
}

fn config() -> DeviceConfig {
    DeviceConfig {
        key: KEY,
        digits: Digits::SIX,
        window: 5,
        throttle: Throttle {
            free_failures: 3,
            base_delay_ms: 1_000,
            max_delay_ms: 8_000,
        },
    }
}

fn otp(counter: u64) -> String {
    hotp::<HmacSha256>(&KEY, counter, Digits::SIX).to_string()
}

#[test]
fn each_otp_grants_once_and_survives_reboot() {
    let mut flash = Flash::default();
    {
        let mut device = Device::boot(config(), &mut flash).unwrap();
        assert_eq!(device.present(&otp(0), 0).unwrap().counter, 0);
        assert_eq!(device.present(&otp(0), 1), Err(Refusal::Invalid));
        // Skipping ahead within the window leaves the skipped counters good once each
        // (another client may hold them).
        assert_eq!(device.present(&otp(3), 2).unwrap().counter, 3);
    }
    // Used: 3 (bit 0) and 0 (bit 3); 1 and 2 are still open; nothing exists below 0.
    assert_eq!(
        flash.saved,
        Some(DeviceState {
            next_counter: 4,
            used_below: !0b0110,
        })
    );
    let mut rebooted = Device::boot(config(), &mut flash).unwrap();
    // The skipped counters are still good after the reboot, once.
    assert_eq!(rebooted.present(&otp(2), 5).unwrap().counter, 2);
    assert_eq!(rebooted.present(&otp(1), 6).unwrap().counter, 1);
    for used in 0..=3 {
        assert_eq!(
            rebooted.present(&otp(used), 10),
            Err(Refusal::Invalid),
            "counter {used}"
        );
    }
    // Four replays in a row engaged throttling (1 s); after it the next OTP works.
    assert!(matches!(
        rebooted.present(&otp(4), 500),
        Err(Refusal::Throttled { .. })
    ));
    assert_eq!(rebooted.present(&otp(4), 1_010).unwrap().counter, 4);
}

#[test]
fn nothing_is_granted_if_the_counter_cannot_be_saved() {
    let mut flash = Flash::default();
    {
        let mut device = Device::boot(config(), &mut flash).unwrap();
        device.present(&otp(0), 0).unwrap();
    }
    flash.broken = true;
    {
        let mut device = Device::boot(config(), &mut flash).unwrap();
        assert_eq!(
            device.present(&otp(1), 0),
            Err(Refusal::Storage("flash write failed"))
        );
        assert_eq!(
            device.next_counter(),
            1,
            "the in-memory counter did not move either"
        );
    }
    flash.broken = false;
    let mut device = Device::boot(config(), &mut flash).unwrap();
    assert_eq!(device.present(&otp(1), 0).unwrap().counter, 1);
}

#[test]
fn otps_of_another_device_key_are_invalid() {
    let mut flash = Flash::default();
    let mut device = Device::boot(config(), &mut flash).unwrap();
    let other = hotp::<HmacSha256>(b"another-device-key-0000000000000", 0, Digits::SIX).to_string();
    assert_eq!(device.present(&other, 0), Err(Refusal::Invalid));
}

#[test]
fn guessing_is_throttled_with_doubling_delays() {
    let mut flash = Flash::default();
    let mut device = Device::boot(config(), &mut flash).unwrap();
    let wrong = if otp(0) == "000000" {
        "000001"
    } else {
        "000000"
    };
    for t in 0..3 {
        assert_eq!(device.present(wrong, t), Err(Refusal::Invalid));
    }
    // The fourth failure starts a 1 s delay; during it even the right OTP is refused.
    assert_eq!(device.present(wrong, 10), Err(Refusal::Invalid));
    assert_eq!(
        device.present(&otp(0), 500),
        Err(Refusal::Throttled { retry_in_ms: 510 })
    );
    // Fifth failure: 2 s; sixth: 4 s; then capped at 8 s.
    assert_eq!(device.present(wrong, 1_010), Err(Refusal::Invalid));
    assert_eq!(
        device.present(wrong, 3_009),
        Err(Refusal::Throttled { retry_in_ms: 1 })
    );
    assert_eq!(device.present(wrong, 3_010), Err(Refusal::Invalid));
    assert_eq!(device.present(wrong, 7_010), Err(Refusal::Invalid));
    assert_eq!(device.present(wrong, 15_010), Err(Refusal::Invalid));
    assert_eq!(
        device.present(&otp(0), 22_000),
        Err(Refusal::Throttled { retry_in_ms: 1_010 })
    );
    // After the delay, the right OTP works and resets the failure count.
    assert_eq!(device.present(&otp(0), 23_010).unwrap().counter, 0);
    assert_eq!(device.present(wrong, 23_011), Err(Refusal::Invalid));
    assert!(device.present(&otp(1), 23_012).is_ok());
}

#[test]
fn malformed_input_is_refused_and_counts_as_a_failure() {
    let mut flash = Flash::default();
    let mut device = Device::boot(config(), &mut flash).unwrap();
    // Four failures: the fourth starts the first delay.
    for bad in ["", "12345", "1234567", "12 456"] {
        assert!(
            matches!(device.present(bad, 0), Err(Refusal::Malformed(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        device.present(&otp(0), 0),
        Err(Refusal::Throttled { .. })
    ));
    assert_eq!(flash.writes, 0);
}
