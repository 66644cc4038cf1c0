//! The device's anti-replay window, as IPsec's (RFC 4303 section 3.4.3): the highest
//! counter granted so far and a bitmap of the W counters at and below it.
//!
//! A counter is granted at most once. One above the highest is always acceptable (it
//! slides the window up); one at or below it is acceptable while it is within the window
//! and not yet granted. So OTPs of one device may be presented in any order, and one
//! that is never presented blocks nothing: it only expires once a counter W above it has
//! been granted (the AS sells counters in order, so after at least W further sales).
use super::HotpError;

/// Default window: 1024 counters (the state is then 128 bytes of bitmap).
pub const DEFAULT_WINDOW: u32 = 1024;
/// Largest window: bounds the state a device stores (256 bytes of bitmap).
pub const MAX_WINDOW: u32 = 2048;
const WORDS: usize = (MAX_WINDOW / 64) as usize;

/// Which counters a device has granted, as far as they still matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayWindow {
    size: u32,
    highest: Option<u64>,
    /// Bit i (word i / 64, bit i % 64), i < size: counter `highest - i` was granted.
    bits: [u64; WORDS],
}

impl ReplayWindow {
    /// An empty window of `size` counters: nothing granted yet, every counter open.
    pub const fn new(size: u32) -> Result<Self, HotpError> {
        if size == 0 || size > MAX_WINDOW {
            return Err(HotpError::WindowSize(size));
        }
        Ok(Self {
            size,
            highest: None,
            bits: [0; WORDS],
        })
    }

    /// A window restored from [`Self::highest`] and [`Self::words`] (persisted state).
    pub fn from_parts(size: u32, highest: Option<u64>, words: &[u64]) -> Result<Self, HotpError> {
        let mut window = Self::new(size)?;
        if words.len() != window.word_count() {
            return Err(HotpError::WindowSize(size));
        }
        if let Some(highest) = highest {
            window.highest = Some(highest);
            window.bits[..words.len()].copy_from_slice(words);
            // The highest counter is granted by definition, whatever was stored.
            window.bits[0] |= 1;
            window.mask();
        }
        Ok(window)
    }

    /// [`Self::from_parts`] in place, the words given as their little-endian bytes (8
    /// per word): on a small core a window (280 bytes) and its words then never pass
    /// through the stack. On an error `self` is unchanged.
    pub fn set_from_le_bytes(
        &mut self,
        size: u32,
        highest: Option<u64>,
        le_words: &[u8],
    ) -> Result<(), HotpError> {
        if size == 0 || size > MAX_WINDOW || le_words.len() != 8 * (size as usize).div_ceil(64) {
            return Err(HotpError::WindowSize(size));
        }
        self.size = size;
        self.highest = highest;
        self.bits = [0; WORDS];
        if highest.is_some() {
            for (word, bytes) in self.bits.iter_mut().zip(le_words.chunks_exact(8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(bytes);
                *word = u64::from_le_bytes(b);
            }
            // The highest counter is granted by definition, whatever was stored.
            self.bits[0] |= 1;
            self.mask();
        }
        Ok(())
    }

    /// [`Self::resized`] in place (no second window on the stack). On an error `self`
    /// is unchanged.
    pub fn resize(&mut self, size: u32) -> Result<(), HotpError> {
        if size == 0 || size > MAX_WINDOW {
            return Err(HotpError::WindowSize(size));
        }
        // Bits at and above the old size are clear (`mask`), so shrinking is a mask
        // and growing marks the added, unknown counters granted, as `resized` does.
        if self.highest.is_some() {
            for i in self.size as usize..size as usize {
                self.bits[i / 64] |= 1 << (i % 64);
            }
        }
        self.size = size;
        self.mask();
        Ok(())
    }

    /// How many counters at and below the highest granted one are remembered (W).
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The highest counter granted so far, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// The bitmap, `ceil(size / 64)` words; bit i is counter `highest - i`.
    pub fn words(&self) -> &[u64] {
        &self.bits[..self.word_count()]
    }

    /// The lowest counter that may still be granted (if not granted already).
    pub fn lowest_open(&self) -> u64 {
        match self.highest {
            None => 0,
            Some(h) => h.saturating_sub(u64::from(self.size) - 1),
        }
    }

    /// Whether `counter` may be granted now; changes nothing and computes no HMAC.
    pub fn check(&self, counter: u64) -> Result<(), HotpError> {
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if counter > highest {
            return Ok(());
        }
        let back = highest - counter;
        if back >= u64::from(self.size) {
            return Err(HotpError::Expired(counter));
        }
        if self.bit(back as usize) {
            return Err(HotpError::AlreadyGranted(counter));
        }
        Ok(())
    }

    /// Records `counter` as granted (after [`Self::check`] and the HMAC agreed).
    pub fn accept(&mut self, counter: u64) -> Result<(), HotpError> {
        self.check(counter)?;
        match self.highest {
            Some(highest) if counter <= highest => {
                let back = (highest - counter) as usize;
                self.bits[back / 64] |= 1 << (back % 64);
            }
            Some(highest) => {
                self.shift_up(counter - highest);
                self.highest = Some(counter);
                self.bits[0] |= 1;
            }
            None => {
                self.highest = Some(counter);
                self.bits = [0; WORDS];
                self.bits[0] = 1;
            }
        }
        Ok(())
    }

    /// Whether `counter` is recorded as granted (false below the window: unknown).
    pub fn is_granted(&self, counter: u64) -> bool {
        matches!(self.check(counter), Err(HotpError::AlreadyGranted(_)))
    }

    /// The same history in a window of another size. Counters a larger window adds
    /// below the old one count as granted: nothing is known about them, and a counter
    /// must never become acceptable again.
    pub fn resized(&self, size: u32) -> Result<Self, HotpError> {
        let mut window = Self::new(size)?;
        if let Some(highest) = self.highest {
            window.highest = Some(highest);
            for i in 0..size.min(self.size) as usize {
                if self.bit(i) {
                    window.bits[i / 64] |= 1 << (i % 64);
                }
            }
            for i in self.size as usize..size as usize {
                window.bits[i / 64] |= 1 << (i % 64);
            }
        }
        Ok(window)
    }

    fn word_count(&self) -> usize {
        (self.size as usize).div_ceil(64)
    }

    fn bit(&self, i: usize) -> bool {
        (self.bits[i / 64] >> (i % 64)) & 1 == 1
    }

    /// Moves every bit `n` places up (to older counters); bits past the window go.
    fn shift_up(&mut self, n: u64) {
        if n >= u64::from(self.size) {
            self.bits = [0; WORDS];
            return;
        }
        let (words, bits) = ((n / 64) as usize, (n % 64) as u32);
        for i in (0..WORDS).rev() {
            let low = i.checked_sub(words).map_or(0, |j| self.bits[j]);
            let carry = match i.checked_sub(words + 1) {
                Some(j) if bits > 0 => self.bits[j] >> (64 - bits),
                _ => 0,
            };
            self.bits[i] = (low << bits) | carry;
        }
        self.mask();
    }

    /// Clears the bits at and above `size`.
    fn mask(&mut self) {
        let size = self.size as usize;
        for (i, word) in self.bits.iter_mut().enumerate() {
            let first = i * 64;
            if first >= size {
                *word = 0;
            } else if size - first < 64 {
                *word &= (1u64 << (size - first)) - 1;
            }
        }
    }
}
