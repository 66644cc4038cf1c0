//! The provisioning file: one source for the key, digits, slot length, replay window and
//! throttle, read by the device and the AS alike.
use device::{Provision, ProvisionError, Throttle, DEFAULT_DIGITS};
use protocol::hotp::{DeviceKey, Digits, HotpError};

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn key() -> DeviceKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    DeviceKey(k)
}

#[test]
fn a_minimal_file_takes_the_defaults() {
    let p = Provision::from_toml(&format!("id = \"lock-1\"\nkey = \"{KEY_HEX}\"\n")).unwrap();
    assert_eq!(p.id, "lock-1");
    assert_eq!(p.key, key());
    assert_eq!((p.digits, DEFAULT_DIGITS), (Digits::EIGHT, Digits::EIGHT));
    assert_eq!((p.slot_seconds, p.window), (60, 1024));
    assert_eq!(p.throttle, Throttle::default());
    assert_eq!(p.device_config().window, 1024);
    assert_eq!(p.slot_ms(), 60_000);
}

#[test]
fn a_file_round_trips_with_every_field() {
    let mut p = Provision::new("pump-2", key());
    p.digits = Digits::NINE;
    p.slot_seconds = 30;
    p.window = 2048;
    p.throttle.global_per_hour = 30;
    p.throttle.reserve = 8;
    let text = p.to_toml().unwrap();
    assert!(
        text.contains("[throttle]") && text.contains(KEY_HEX),
        "{text}"
    );
    assert_eq!(Provision::from_toml(&text).unwrap(), p);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pump-2.toml");
    p.write(&path).unwrap();
    assert_eq!(Provision::read(&path).unwrap(), p);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key file is private: {mode:o}");
    }
}

#[test]
fn bad_files_are_refused() {
    let with = |extra: &str| format!("id = \"lock-1\"\nkey = \"{KEY_HEX}\"\n{extra}");
    // One key rule: exactly 32 bytes (a 16-byte key, RFC 4226's minimum, is refused).
    let short = "id = \"x\"\nkey = \"000102030405060708090a0b0c0d0e0f\"\n";
    assert!(matches!(
        Provision::from_toml(short),
        Err(ProvisionError::Key(HotpError::KeyLength(16)))
    ));
    assert!(matches!(
        Provision::from_toml("id = \"x\"\nkey = \"zz\"\n"),
        Err(ProvisionError::KeyHex)
    ));
    assert!(matches!(
        Provision::from_toml(&with("digits = 5\n")),
        Err(ProvisionError::Digits(_))
    ));
    assert!(matches!(
        Provision::from_toml(&with("window = 4096\n")),
        Err(ProvisionError::Window(_))
    ));
    assert!(matches!(
        Provision::from_toml(&with("slot_seconds = 0\n")),
        Err(ProvisionError::SlotSeconds)
    ));
    assert!(matches!(
        Provision::from_toml(&with("[throttle]\nglobal_per_hour = 0\n")),
        Err(ProvisionError::Throttle(_))
    ));
    // A typo is an error, not a silent default.
    assert!(matches!(
        Provision::from_toml(&with("windw = 64\n")),
        Err(ProvisionError::Toml(_))
    ));
    assert!(matches!(
        Provision::from_toml(&with("[throttle]\nglobal_per_hr = 5\n")),
        Err(ProvisionError::Toml(_))
    ));
    assert!(matches!(
        Provision::from_toml(&format!("id = \"a b\"\nkey = \"{KEY_HEX}\"\n")),
        Err(ProvisionError::Id)
    ));
    assert!(matches!(
        Provision::read("/nonexistent/slotpay.toml"),
        Err(ProvisionError::Io { .. })
    ));
}

/// TOML integers are i64: a slot of u64::MAX seconds passes `validate` but has no TOML
/// form. `to_toml` used to answer that with an empty string (`unwrap_or_default`), and
/// `write` then replaced a good file with an empty one that no device or AS can read.
#[test]
fn a_provisioning_without_a_toml_form_is_an_error_not_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lock-1.toml");
    let good = Provision::new("lock-1", key());
    good.write(&path).unwrap();
    let mut huge = Provision::new("lock-1", key());
    huge.slot_seconds = u64::MAX;
    huge.validate().unwrap();
    assert!(matches!(huge.to_toml(), Err(ProvisionError::Format(_))));
    assert!(matches!(huge.write(&path), Err(ProvisionError::Format(_))));
    // The file on disk is still the good one.
    assert_eq!(Provision::read(&path).unwrap(), good);
    huge.slot_seconds = 60;
    huge.throttle.max_delay_ms = u64::MAX;
    assert!(matches!(huge.to_toml(), Err(ProvisionError::Format(_))));
}

/// The firmware reads the same settings from a flash page: the image provisioning writes
/// boots as the TOML file says, and anything but that record is refused (an erased page
/// is no provisioning, a flipped bit is caught by the CRC, bad settings by the rules).
#[test]
fn the_firmware_page_carries_the_same_settings_and_refuses_anything_else() {
    use device::{Provisioned, ProvisionedError, FLASH_LEN, FLASH_PAGE, PROVISIONING_OFFSET};
    let mut p = Provision::new("pump-2", key());
    p.digits = Digits::NINE;
    p.slot_seconds = 30;
    p.window = 2048;
    p.throttle.reserve = 8;
    let image = p.flash_image();
    assert_eq!(image.len(), FLASH_LEN);
    assert!(
        image[..2 * FLASH_PAGE].iter().all(|&b| b == 0xFF),
        "state pages erased"
    );
    let page = &image[PROVISIONING_OFFSET..];
    let read = Provisioned::decode(page).unwrap();
    assert_eq!(read.config.key, p.key);
    assert_eq!(
        (
            read.config.digits,
            read.config.window,
            read.config.throttle,
            read.slot_ms
        ),
        (Digits::NINE, 2048, p.throttle, 30_000)
    );
    assert!(matches!(
        Provisioned::decode(&[0xFF; FLASH_PAGE]),
        Err(ProvisionedError::Corrupt)
    ));
    for i in 0..Provisioned::LEN {
        let mut bad = page.to_vec();
        bad[i] ^= 0x10;
        assert!(
            matches!(Provisioned::decode(&bad), Err(ProvisionedError::Corrupt)),
            "byte {i}"
        );
    }
    // A record whose CRC is right but whose settings are not is refused by the rules.
    let mut wrong = p.provisioned();
    wrong.config.window = 0;
    assert!(matches!(
        Provisioned::decode(&wrong.encode()),
        Err(ProvisionedError::Config(_))
    ));
    wrong.config.window = 64;
    wrong.slot_ms = 0;
    assert!(matches!(
        Provisioned::decode(&wrong.encode()),
        Err(ProvisionedError::Slot)
    ));
    let mut digits = p.provisioned().encode();
    digits[36] = 5;
    let crc = device::crc32(&digits[..Provisioned::LEN - 4]);
    digits[Provisioned::LEN - 4..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        Provisioned::decode(&digits).err(),
        Some(ProvisionedError::Digits(HotpError::InvalidDigits(5)))
    );
    assert!(Provisioned::decode(&page[..Provisioned::LEN - 1]).is_err());
}
