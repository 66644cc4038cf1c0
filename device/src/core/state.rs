//! What a device persists, and its one byte encoding (the simulator's file and the
//! firmware's flash page hold the same bytes).
use protocol::hotp::{HotpError, ReplayWindow, MAX_WINDOW};

/// Everything a device must remember across power loss: which counters it granted, how
/// much of its global guessing budget is left, and how often it booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceState {
    /// The RFC 4303-style replay window: highest granted counter and the bitmap below.
    pub window: ReplayWindow,
    /// The global failure budget as of the save, in milliseconds of refill, with every
    /// failure reserved in advance already deducted (see `throttle`; below zero when
    /// more was reserved than the bucket held): on boot the device starts from this, so
    /// a reboot never adds budget.
    pub budget_ms: i64,
    /// Boots so far; part of every Echo value, so none outlives a reboot.
    pub boots: u32,
}

/// Durable storage for the state (flash, EEPROM, a file).
pub trait CounterStore {
    /// Why loading or saving failed.
    type Error: ::core::fmt::Debug;
    /// The last saved state, or `None` on first boot.
    fn load(&mut self) -> Result<Option<DeviceState>, Self::Error>;
    /// Saves durably; returns only once the state survives power loss.
    fn save(&mut self, state: &DeviceState) -> Result<(), Self::Error>;
}

/// Why stored bytes are not a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not the bytes [`DeviceState::encode`] writes (a torn or foreign write).
    #[error("not a slotpay device state (bad magic, length or checksum)")]
    Corrupt,
    /// The stored replay window is not a valid one.
    #[error("stored replay window: {0}")]
    Window(HotpError),
}

const MAGIC: [u8; 4] = *b"SPD1";
const HEADER: usize = 4 + 4 + 1 + 8 + 8 + 4;

impl DeviceState {
    /// Longest encoding: the header, the largest bitmap, the CRC.
    pub const MAX_ENCODED_LEN: usize = HEADER + (MAX_WINDOW as usize / 8) + 4;

    /// Writes the state into `out` (at least [`Self::MAX_ENCODED_LEN`] bytes, or `None`);
    /// returns how many bytes it used. Layout, little endian: "SPD1", window size u32,
    /// has-highest u8, highest u64, budget_ms i64, boots u32, ceil(size / 64) bitmap
    /// words u64, CRC-32 (IEEE) of everything before.
    pub fn encode_into(&self, out: &mut [u8]) -> Option<usize> {
        let out = out.get_mut(..Self::MAX_ENCODED_LEN)?;
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&MAGIC);
        put(&self.window.size().to_le_bytes());
        put(&[u8::from(self.window.highest().is_some())]);
        put(&self.window.highest().unwrap_or(0).to_le_bytes());
        put(&self.budget_ms.to_le_bytes());
        put(&self.boots.to_le_bytes());
        for word in self.window.words() {
            put(&word.to_le_bytes());
        }
        let crc = crc32(&out[..at]);
        out[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        Some(at + 4)
    }

    /// [`Self::encode_into`] a buffer of exactly the longest size.
    pub fn encode(&self, out: &mut [u8; Self::MAX_ENCODED_LEN]) -> usize {
        self.encode_into(out).unwrap_or(0)
    }

    /// Reads what [`Self::encode`] wrote; anything else (a torn write) is `Corrupt`.
    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        let corrupt = StateError::Corrupt;
        if bytes.len() < HEADER + 4 || bytes[..4] != MAGIC {
            return Err(corrupt);
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32(body).to_le_bytes() != crc {
            return Err(corrupt);
        }
        let u32_at = |i: usize| -> Result<u32, StateError> {
            Ok(u32::from_le_bytes(
                body[i..i + 4].try_into().map_err(|_| corrupt)?,
            ))
        };
        let u64_at = |i: usize| -> Result<u64, StateError> {
            Ok(u64::from_le_bytes(
                body.get(i..i + 8)
                    .ok_or(corrupt)?
                    .try_into()
                    .map_err(|_| corrupt)?,
            ))
        };
        let size = u32_at(4)?;
        let highest = match body[8] {
            0 => None,
            1 => Some(u64_at(9)?),
            _ => return Err(corrupt),
        };
        let budget_ms = u64_at(17)? as i64;
        let boots = u32_at(25)?;
        if size == 0 || size > MAX_WINDOW {
            return Err(StateError::Window(HotpError::WindowSize(size)));
        }
        let count = (size as usize).div_ceil(64);
        if body.len() != HEADER + 8 * count {
            return Err(corrupt);
        }
        let mut words = [0u64; MAX_WINDOW as usize / 64];
        for (i, word) in words.iter_mut().take(count).enumerate() {
            *word = u64_at(HEADER + 8 * i)?;
        }
        let window =
            ReplayWindow::from_parts(size, highest, &words[..count]).map_err(StateError::Window)?;
        Ok(Self {
            window,
            budget_ms,
            boots,
        })
    }
}

/// CRC-32 (IEEE 802.3, as zlib), four bits at a time: a 64-byte table instead of 1 KiB,
/// which matters more on a microcontroller than the speed over a few hundred bytes.
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 16] = {
        let mut table = [0u32; 16];
        let mut i = 0;
        while i < 16 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 4 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0x0f) as usize] ^ (crc >> 4);
        crc = TABLE[((crc ^ (u32::from(b) >> 4)) & 0x0f) as usize] ^ (crc >> 4);
    }
    !crc
}
