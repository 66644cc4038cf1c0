//! The provisioning as firmware reads it: one binary record in a flash page, written
//! when the device is provisioned (the TOML file's twin: `Provision::flash_image`), and
//! the layout of that flash.
use super::state::crc32;
use super::throttle::Throttle;
use super::{ConfigError, DeviceConfig};
use protocol::hotp::{DeviceKey, Digits, HotpError, ReplayWindow};

/// Bytes of one page of the firmware's flash.
pub const FLASH_PAGE: usize = 512;
/// Pages 0 and 1 hold the state ([`crate::AbStore`]), page 2 the provisioning record.
pub const PROVISIONING_OFFSET: usize = 2 * FLASH_PAGE;
/// The whole flash the firmware uses: two state pages and the provisioning page.
pub const FLASH_LEN: usize = 3 * FLASH_PAGE;

const MAGIC: [u8; 4] = *b"SPP1";

/// What a device is provisioned with, as its firmware stores it.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The device core's configuration (key, digits, window, throttle).
    pub config: DeviceConfig,
    /// Milliseconds of access one token grants.
    pub slot_ms: u64,
}

/// Why a provisioning record cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionedError {
    /// Not what [`Provisioned::encode`] writes (erased flash, a torn or foreign write).
    #[error("not a slotpay provisioning record (bad magic, length or checksum)")]
    Corrupt,
    /// The digits are not 6 to 9.
    #[error("digits: {0}")]
    Digits(HotpError),
    /// The window or the throttle cannot run.
    #[error("{0}")]
    Config(ConfigError),
    /// A slot of no time.
    #[error("slot_ms must be at least 1")]
    Slot,
}

impl Provisioned {
    /// Bytes of the record: "SPP1", the key, digits u8, window u32, slot_ms u64, the
    /// throttle (u32, u64, u64, u64, u32, u32, u32, in its fields' order), CRC-32 (IEEE)
    /// of everything before; little endian.
    pub const LEN: usize = 4 + 32 + 1 + 4 + 8 + (4 + 8 + 8 + 8 + 4 + 4 + 4) + 4;

    /// The record.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        let c = &self.config;
        let t = &c.throttle;
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&MAGIC);
        put(c.key.as_bytes());
        put(&[c.digits.get()]);
        put(&c.window.to_le_bytes());
        put(&self.slot_ms.to_le_bytes());
        put(&t.free_failures.to_le_bytes());
        put(&t.base_delay_ms.to_le_bytes());
        put(&t.max_delay_ms.to_le_bytes());
        put(&t.forget_after_ms.to_le_bytes());
        put(&t.global_per_hour.to_le_bytes());
        put(&t.global_burst.to_le_bytes());
        put(&t.reserve.to_le_bytes());
        let crc = crc32(&out[..Self::LEN - 4]);
        out[Self::LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a record from the start of `bytes` (a page: what follows it is ignored),
    /// with every rule the device core relies on.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProvisionedError> {
        let record = bytes.get(..Self::LEN).ok_or(ProvisionedError::Corrupt)?;
        let (body, crc) = record.split_at(Self::LEN - 4);
        if body[..4] != MAGIC || crc32(body).to_le_bytes() != crc {
            return Err(ProvisionedError::Corrupt);
        }
        // Fixed offsets into a body of known length: no bounds checks at run time.
        let body: &[u8; Self::LEN - 4] = body.try_into().map_err(|_| ProvisionedError::Corrupt)?;
        let u32_at =
            |i: usize| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
        let u64_at = |i: usize| u64::from(u32_at(i)) | (u64::from(u32_at(i + 4)) << 32);
        let mut key = [0u8; 32];
        key.copy_from_slice(&body[4..36]);
        let digits = Digits::new(body[36]).map_err(ProvisionedError::Digits)?;
        let window = u32_at(37);
        let slot_ms = u64_at(41);
        let throttle = Throttle {
            free_failures: u32_at(49),
            base_delay_ms: u64_at(53),
            max_delay_ms: u64_at(61),
            forget_after_ms: u64_at(69),
            global_per_hour: u32_at(77),
            global_burst: u32_at(81),
            reserve: u32_at(85),
        };
        ReplayWindow::new(window).map_err(|e| ProvisionedError::Config(ConfigError::Window(e)))?;
        if let Some(problem) = throttle.problem() {
            return Err(ProvisionedError::Config(ConfigError::Throttle(problem)));
        }
        if slot_ms == 0 {
            return Err(ProvisionedError::Slot);
        }
        Ok(Provisioned {
            config: DeviceConfig {
                key: DeviceKey(key),
                digits,
                window,
                throttle,
            },
            slot_ms,
        })
    }
}
