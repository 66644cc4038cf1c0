//! Power cuts during the state save, on the A/B flash store: at every byte of every
//! erase and program a grant involves, the device reboots into a valid state (the old
//! or the new one, never none), grants no counter twice and regains no budget.
use device::{AbStore, RamFlash};
use device::{CounterStore, Device, DeviceConfig, Refusal, Source, Throttle};
use protocol::hotp::{DeviceKey, Digits, Token};

const KEY: [u8; 32] = [0x5A; 32];
const CLIENT: Source = Source([3; 16]);

fn config() -> DeviceConfig {
    DeviceConfig {
        key: DeviceKey(KEY),
        digits: Digits::EIGHT,
        window: 1024,
        throttle: Throttle::default(),
    }
}

fn token(counter: u64) -> String {
    Token::issue(&DeviceKey(KEY), counter, Digits::EIGHT).to_string()
}

fn present<S: CounterStore>(device: &mut Device<S>, text: &str) -> Result<u64, Refusal<S::Error>> {
    let echo = device.echo(&CLIENT, 0);
    device
        .present(&CLIENT, Some(echo.as_bytes()), text.as_bytes(), 0)
        .map(|g| g.counter)
}

type Flash = RamFlash<512>;

fn boot(flash: Flash) -> Device<AbStore<Flash>> {
    Device::boot(config(), AbStore::new(flash)).expect("boots from a valid state")
}

#[test]
fn a_power_cut_at_any_byte_of_a_save_never_grants_twice() {
    // A device that granted 0..5 (so both pages hold records).
    let mut device = boot(Flash::new());
    for c in 0..5 {
        assert_eq!(present(&mut device, &token(c)), Ok(c));
    }
    let base = device.into_store().into_pages().pages;
    let mut cuts = 0;
    let mut granted_before_cut = 0;
    for cut in 0..2 * (512 + 400) {
        let mut flash = Flash::new();
        flash.pages = base;
        let mut device = boot(flash);
        let budget = device.failures_left(0);
        device.store_mut().pages().cut_after = Some(cut);
        let first = present(&mut device, &token(7));
        let cut_happened = matches!(first, Err(Refusal::Storage(_)));
        cuts += usize::from(cut_happened);
        granted_before_cut += usize::from(first.is_ok());
        // Power back: boot from whatever the flash holds.
        let mut flash = device.into_store().into_pages();
        flash.cut_after = None;
        let mut rebooted = boot(flash);
        assert!(
            rebooted.failures_left(0) <= budget,
            "cut at {cut}: budget regained"
        );
        for c in 0..5 {
            assert_eq!(
                present(&mut rebooted, &token(c)),
                Err(Refusal::Used(c)),
                "cut {cut}"
            );
        }
        let second = present(&mut rebooted, &token(7));
        match first {
            Ok(_) => assert_eq!(second, Err(Refusal::Used(7)), "cut {cut}: granted twice"),
            Err(_) => assert!(
                matches!(second, Ok(7) | Err(Refusal::Used(7))),
                "cut {cut}: {second:?}"
            ),
        }
        if !cut_happened {
            break;
        }
    }
    // Cuts fell on the reservation save and the grant save, then the grant went through.
    assert!(cuts > 1_000, "{cuts} cut points");
    assert_eq!(granted_before_cut, 1);
}

#[test]
fn a_cut_during_boot_keeps_the_previous_state() {
    let mut device = boot(Flash::new());
    assert_eq!(present(&mut device, &token(0)), Ok(0));
    let mut flash = device.into_store().into_pages();
    for cut in [0, 1, 100, 511, 512, 513, 600, 5_000] {
        flash.cut_after = Some(cut);
        // The boot's own save (the boot count) is cut: that boot fails, and the next
        // one finds the old state or the new one, never none.
        let booted = Device::boot(config(), AbStore::new(&mut flash)).map(|_| ());
        assert_eq!(booted.is_err(), cut < 5_000, "cut {cut}");
        flash.cut_after = None;
        let mut device = Device::boot(config(), AbStore::new(&mut flash)).expect("boot");
        assert_eq!(present(&mut device, &token(0)), Err(Refusal::Used(0)));
    }
    let mut device = boot(flash);
    assert_eq!(present(&mut device, &token(1)), Ok(1));
}
