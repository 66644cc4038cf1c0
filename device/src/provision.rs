//! The device provisioning file: one TOML file per device that both the device and the
//! AS read, so the key, the digits, the slot length, the replay window and the throttle
//! have one source.
//!
//! ```toml
//! id = "lock-1"
//! key = "<64 hex digits: the 32-byte key shared with the AS>"
//! digits = 8           # optional, default 8 (docs/device.md: from the guessing bound)
//! slot_seconds = 60    # optional, default 60: access one token grants
//! window = 1024        # optional, default 1024: the replay window W
//!
//! [throttle]           # optional, every field defaults as below
//! free_failures = 3
//! base_delay_ms = 60000
//! max_delay_ms = 3600000
//! forget_after_ms = 86400000
//! global_per_hour = 60
//! global_burst = 320
//! reserve = 16
//! ```
//!
//! Unknown fields are refused (a typo must not silently fall back to a default).
use crate::{DeviceConfig, Provisioned, Throttle, FLASH_LEN, PROVISIONING_OFFSET};
use protocol::hotp::{DeviceKey, Digits, HotpError, ReplayWindow, DEFAULT_WINDOW};
use std::path::{Path, PathBuf};

/// Default OTP digits: the fewest for which the throttle's default global budget keeps
/// successful guesses below 10^-2 per device per year (docs/device.md).
pub const DEFAULT_DIGITS: Digits = Digits::EIGHT;
/// Default access per token.
pub const DEFAULT_SLOT_SECONDS: u64 = 60;

/// One device's provisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    /// The device's name (the AS's device id).
    pub id: String,
    /// The key shared with the AS.
    pub key: DeviceKey,
    /// Digits of the device's OTPs.
    pub digits: Digits,
    /// Seconds of access one token grants.
    pub slot_seconds: u64,
    /// Replay window W.
    pub window: u32,
    /// The throttle's parameters.
    pub throttle: Throttle,
}

/// Why a provisioning file cannot be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Not TOML, or not this file's fields.
    #[error("not a provisioning file: {0}")]
    Toml(#[from] toml::de::Error),
    /// The provisioning has no TOML form (an integer above TOML's i64 range): nothing
    /// is written, rather than an empty or partial file.
    #[error("cannot write as TOML: {0}")]
    Format(#[from] toml::ser::Error),
    /// The key is not hex.
    #[error("key: not hex")]
    KeyHex,
    /// The key is not 32 bytes.
    #[error("key: {0}")]
    Key(HotpError),
    /// The digits are not 6 to 9.
    #[error("digits: {0}")]
    Digits(HotpError),
    /// The window is not 1 to 2048.
    #[error("window: {0}")]
    Window(HotpError),
    /// The throttle's parameters cannot work.
    #[error("throttle: {0}")]
    Throttle(&'static str),
    /// The id is not a plain name.
    #[error("id must be 1 to 64 characters of [A-Za-z0-9._-]")]
    Id,
    /// A slot of no time.
    #[error("slot_seconds must be at least 1")]
    SlotSeconds,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    id: String,
    key: String,
    #[serde(default = "default_digits")]
    digits: u8,
    #[serde(default = "default_slot_seconds")]
    slot_seconds: u64,
    #[serde(default = "default_window")]
    window: u32,
    #[serde(default)]
    throttle: ThrottleFile,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ThrottleFile {
    free_failures: u32,
    base_delay_ms: u64,
    max_delay_ms: u64,
    forget_after_ms: u64,
    global_per_hour: u32,
    global_burst: u32,
    reserve: u32,
}

impl Default for ThrottleFile {
    fn default() -> Self {
        let t = Throttle::default();
        ThrottleFile {
            free_failures: t.free_failures,
            base_delay_ms: t.base_delay_ms,
            max_delay_ms: t.max_delay_ms,
            forget_after_ms: t.forget_after_ms,
            global_per_hour: t.global_per_hour,
            global_burst: t.global_burst,
            reserve: t.reserve,
        }
    }
}

fn default_digits() -> u8 {
    DEFAULT_DIGITS.get()
}
fn default_slot_seconds() -> u64 {
    DEFAULT_SLOT_SECONDS
}
fn default_window() -> u32 {
    DEFAULT_WINDOW
}

impl Provision {
    /// A provisioning with every default.
    pub fn new(id: impl Into<String>, key: DeviceKey) -> Self {
        Provision {
            id: id.into(),
            key,
            digits: DEFAULT_DIGITS,
            slot_seconds: DEFAULT_SLOT_SECONDS,
            window: DEFAULT_WINDOW,
            throttle: Throttle::default(),
        }
    }

    /// Reads the file's text, with every rule of [`Self::validate`].
    pub fn from_toml(text: &str) -> Result<Self, ProvisionError> {
        let file: File = toml::from_str(text)?;
        let key_bytes =
            hex::decode(file.key.trim_start_matches("0x")).map_err(|_| ProvisionError::KeyHex)?;
        let t = file.throttle;
        let provision = Provision {
            id: file.id,
            key: DeviceKey::from_slice(&key_bytes).map_err(ProvisionError::Key)?,
            digits: Digits::new(file.digits).map_err(ProvisionError::Digits)?,
            slot_seconds: file.slot_seconds,
            window: file.window,
            throttle: Throttle {
                free_failures: t.free_failures,
                base_delay_ms: t.base_delay_ms,
                max_delay_ms: t.max_delay_ms,
                forget_after_ms: t.forget_after_ms,
                global_per_hour: t.global_per_hour,
                global_burst: t.global_burst,
                reserve: t.reserve,
            },
        };
        provision.validate()?;
        Ok(provision)
    }

    /// Every rule the device and the AS rely on.
    pub fn validate(&self) -> Result<(), ProvisionError> {
        let id_ok = (1..=64).contains(&self.id.len())
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !id_ok {
            return Err(ProvisionError::Id);
        }
        if self.slot_seconds == 0 {
            return Err(ProvisionError::SlotSeconds);
        }
        ReplayWindow::new(self.window).map_err(ProvisionError::Window)?;
        if let Some(problem) = self.throttle.problem() {
            return Err(ProvisionError::Throttle(problem));
        }
        Ok(())
    }

    /// The file's text; an error for a provisioning TOML cannot hold.
    pub fn to_toml(&self) -> Result<String, ProvisionError> {
        let t = self.throttle;
        let file = File {
            id: self.id.clone(),
            key: hex::encode(self.key.as_bytes()),
            digits: self.digits.get(),
            slot_seconds: self.slot_seconds,
            window: self.window,
            throttle: ThrottleFile {
                free_failures: t.free_failures,
                base_delay_ms: t.base_delay_ms,
                max_delay_ms: t.max_delay_ms,
                forget_after_ms: t.forget_after_ms,
                global_per_hour: t.global_per_hour,
                global_burst: t.global_burst,
                reserve: t.reserve,
            },
        };
        // TOML integers are i64: a u64 above i64::MAX (a slot or a delay of 2^63 ms)
        // has no TOML form and fails here, which must not become an empty file.
        Ok(toml::to_string(&file)?)
    }

    /// Reads and checks the file at `path`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, ProvisionError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ProvisionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Writes the file readable by its owner only (it holds the device key). The text
    /// is made first: a provisioning without a TOML form leaves an existing file as it
    /// was.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), ProvisionError> {
        use std::io::Write;
        let text = self.to_toml()?;
        let path = path.as_ref();
        let io = |source| ProvisionError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// The device core's configuration.
    pub fn device_config(&self) -> DeviceConfig {
        DeviceConfig {
            key: self.key.clone(),
            digits: self.digits,
            window: self.window,
            throttle: self.throttle,
        }
    }

    /// Milliseconds of access one token grants.
    pub fn slot_ms(&self) -> u64 {
        self.slot_seconds.saturating_mul(1000)
    }

    /// The settings as firmware stores them.
    pub fn provisioned(&self) -> Provisioned {
        Provisioned {
            config: self.device_config(),
            slot_ms: self.slot_ms(),
        }
    }

    /// The firmware's flash as provisioning writes it ([`FLASH_LEN`] bytes): the two
    /// state pages erased (a first boot) and the provisioning record in the third, the
    /// rest erased too (0xFF, as NOR flash erases).
    pub fn flash_image(&self) -> Vec<u8> {
        let mut image = vec![0xFF; FLASH_LEN];
        let record = self.provisioned().encode();
        image[PROVISIONING_OFFSET..PROVISIONING_OFFSET + record.len()].copy_from_slice(&record);
        image
    }
}
