//! What a device persists, and its one byte encoding (the simulator's file and the
//! firmware's flash page hold the same bytes).
use protocol::hotp::{HotpError, ReplayWindow, DEFAULT_WINDOW, MAX_WINDOW};

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
    /// [`Self::load`] into `state` (true if there was one; `state` unchanged if not):
    /// a store that can decode in place saves a small core two copies of the state
    /// on its stack.
    fn load_into(&mut self, state: &mut DeviceState) -> Result<bool, Self::Error> {
        match self.load()? {
            Some(saved) => {
                *state = saved;
                Ok(true)
            }
            None => Ok(false),
        }
    }
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
        let out: &mut [u8; Self::MAX_ENCODED_LEN] =
            out.get_mut(..Self::MAX_ENCODED_LEN)?.try_into().ok()?;
        // Fixed offsets into a buffer of known length: no bounds checks at run time.
        out[..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&self.window.size().to_le_bytes());
        out[8] = u8::from(self.window.highest().is_some());
        out[9..17].copy_from_slice(&self.window.highest().unwrap_or(0).to_le_bytes());
        out[17..25].copy_from_slice(&self.budget_ms.to_le_bytes());
        out[25..29].copy_from_slice(&self.boots.to_le_bytes());
        let words = self.window.words();
        let end = HEADER + 8 * words.len();
        for (bytes, word) in out[HEADER..].chunks_exact_mut(8).zip(words) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        // At most 32 words: end + 4 <= MAX_ENCODED_LEN.
        let (body, crc) = out.split_at_mut(end);
        crc[..4].copy_from_slice(&crc32(body).to_le_bytes());
        Some(end + 4)
    }

    /// [`Self::encode_into`] a buffer of exactly the longest size.
    pub fn encode(&self, out: &mut [u8; Self::MAX_ENCODED_LEN]) -> usize {
        self.encode_into(out).unwrap_or(0)
    }

    /// Reads what [`Self::encode`] wrote; anything else (a torn write) is `Corrupt`.
    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        let mut state = Self::blank();
        state.decode_from(bytes)?;
        Ok(state)
    }

    /// A placeholder to decode into: an empty default window, no budget, no boots.
    /// (A function, not a constant: a constant state would be 296 bytes of flash
    /// copied from; this writes zeros where the caller keeps it.)
    #[inline(never)]
    pub fn blank() -> DeviceState {
        DeviceState {
            window: ReplayWindow::new(DEFAULT_WINDOW)
                .unwrap_or_else(|_| unreachable!("the default window is valid")),
            budget_ms: 0,
            boots: 0,
        }
    }

    /// [`Self::decode`] into `self`, in place: on a small core the window (280 bytes)
    /// and its words then never pass through the stack. On an error `self` is unchanged.
    pub fn decode_from(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let f = Fields::of(bytes)?;
        // `Fields::of` checked the size and the words' length, all `set_from_le_bytes`
        // refuses.
        self.window
            .set_from_le_bytes(f.size, f.highest, f.words)
            .map_err(StateError::Window)?;
        self.budget_ms = f.budget_ms;
        self.boots = f.boots;
        Ok(())
    }

    /// Whether `bytes` are a state [`Self::decode`] reads (nothing decoded).
    pub fn is_valid(bytes: &[u8]) -> bool {
        Fields::of(bytes).is_ok()
    }
}

/// A checked encoding's fields, the window's words still little-endian bytes.
struct Fields<'a> {
    size: u32,
    highest: Option<u64>,
    budget_ms: i64,
    boots: u32,
    words: &'a [u8],
}

impl<'a> Fields<'a> {
    fn of(bytes: &'a [u8]) -> Result<Self, StateError> {
        let corrupt = StateError::Corrupt;
        if bytes.len() < HEADER + 4 || bytes[..4] != MAGIC {
            return Err(corrupt);
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32(body).to_le_bytes() != crc {
            return Err(corrupt);
        }
        // body is at least HEADER bytes: the fixed fields are all there.
        let u32_at = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&body[i..i + 4]);
            u32::from_le_bytes(b)
        };
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let size = u32_at(4);
        let highest = match body[8] {
            0 => None,
            1 => Some(u64_at(9)),
            _ => return Err(corrupt),
        };
        if size == 0 || size > MAX_WINDOW {
            return Err(StateError::Window(HotpError::WindowSize(size)));
        }
        if body.len() != HEADER + 8 * (size as usize).div_ceil(64) {
            return Err(corrupt);
        }
        Ok(Self {
            size,
            highest,
            budget_ms: u64_at(17) as i64,
            boots: u32_at(25),
            words: &body[HEADER..],
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
