//! The state on raw flash, safe against a power cut at any instant: two pages written
//! in turn (A/B), each record with a sequence number and a CRC-32, the newest valid one
//! read back. A cut while erasing or programming one page leaves the other page's
//! record, the previous state, intact: the device then boots from it, and the grant
//! whose save was cut was never reported, so nothing is granted twice.
use super::state::{crc32, CounterStore, DeviceState};

/// NOR flash as a microcontroller has it: pages erase to 0xFF, programming can only
/// clear bits. An error means the operation may have done part of its work.
pub trait Pages {
    /// Why an operation failed (it may have done part of its work).
    type Error: ::core::fmt::Debug;
    /// Bytes per page; at least [`RECORD_MAX`].
    fn page_size(&self) -> usize;
    /// Reads `out.len()` bytes of `page` from `offset` (bytes past the page read 0xFF).
    fn read(&mut self, page: usize, offset: usize, out: &mut [u8]) -> Result<(), Self::Error>;
    /// Erases `page` to 0xFF.
    fn erase(&mut self, page: usize) -> Result<(), Self::Error>;
    /// Programs `bytes` at `offset` of `page` (clearing bits only, as NOR flash does).
    fn program(&mut self, page: usize, offset: usize, bytes: &[u8]) -> Result<(), Self::Error>;
}

/// A borrowed flash is a flash (so a test keeps it across a failed boot).
impl<P: Pages> Pages for &mut P {
    type Error = P::Error;
    fn page_size(&self) -> usize {
        (**self).page_size()
    }
    fn read(&mut self, page: usize, offset: usize, out: &mut [u8]) -> Result<(), Self::Error> {
        (**self).read(page, offset, out)
    }
    fn erase(&mut self, page: usize) -> Result<(), Self::Error> {
        (**self).erase(page)
    }
    fn program(&mut self, page: usize, offset: usize, bytes: &[u8]) -> Result<(), Self::Error> {
        (**self).program(page, offset, bytes)
    }
}

/// Longest record: sequence (4), length (2), the state, CRC-32 of all before (4).
pub const RECORD_MAX: usize = 4 + 2 + DeviceState::MAX_ENCODED_LEN + 4;

/// Why the A/B store failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbError<E> {
    /// The flash failed (the power went, in the tests).
    Flash(E),
    /// Pages smaller than a record.
    PageTooSmall,
}

/// [`CounterStore`] on two flash pages (0 and 1).
pub struct AbStore<P: Pages> {
    pages: P,
    /// The page holding the newest valid record, and its sequence number.
    current: Option<(usize, u32)>,
}

impl<P: Pages> AbStore<P> {
    /// A store on `pages`; [`CounterStore::load`] finds the newest record.
    pub const fn new(pages: P) -> Self {
        Self {
            pages,
            current: None,
        }
    }

    /// The flash underneath (tests cut its power).
    pub fn pages(&mut self) -> &mut P {
        &mut self.pages
    }

    /// The flash back.
    pub fn into_pages(self) -> P {
        self.pages
    }

    /// The sequence number of `page`'s record if it holds a valid one, and, with
    /// `state`, its state. (Validity and the state in one read; `load` asks twice
    /// rather than keep two states at once: on a small core each is 300 bytes of stack.)
    #[inline(never)]
    fn record(
        &mut self,
        page: usize,
        state: Option<&mut DeviceState>,
    ) -> Result<Option<u32>, AbError<P::Error>> {
        let mut buf = [0u8; RECORD_MAX];
        self.pages.read(page, 0, &mut buf).map_err(AbError::Flash)?;
        let seq = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let len = usize::from(u16::from_le_bytes([buf[4], buf[5]]));
        let (Some(body), Some(crc)) = (buf.get(..6 + len), buf.get(6 + len..10 + len)) else {
            return Ok(None);
        };
        if crc32(body).to_le_bytes() != crc {
            return Ok(None);
        }
        let decoded = match state {
            Some(state) => state.decode_from(&body[6..]).is_ok(),
            None => DeviceState::is_valid(&body[6..]),
        };
        Ok(decoded.then_some(seq))
    }
}

impl<P: Pages> CounterStore for AbStore<P> {
    type Error = AbError<P::Error>;

    fn load(&mut self) -> Result<Option<DeviceState>, Self::Error> {
        let mut state = DeviceState::blank();
        Ok(self.load_into(&mut state)?.then_some(state))
    }

    #[inline(never)]
    fn load_into(&mut self, state: &mut DeviceState) -> Result<bool, Self::Error> {
        if self.pages.page_size() < RECORD_MAX {
            return Err(AbError::PageTooSmall);
        }
        let newest = match (self.record(0, None)?, self.record(1, None)?) {
            (Some(a), Some(b)) => Some(if b > a { (1, b) } else { (0, a) }),
            (Some(a), None) => Some((0, a)),
            (None, Some(b)) => Some((1, b)),
            (None, None) => None,
        };
        self.current = newest;
        match newest {
            Some((page, _)) => Ok(self.record(page, Some(state))?.is_some()),
            None => Ok(false),
        }
    }

    fn save(&mut self, state: &DeviceState) -> Result<(), Self::Error> {
        let (page, seq) = match self.current {
            Some((page, seq)) => (1 - page, seq.wrapping_add(1)),
            None => (0, 1),
        };
        let mut record = [0u8; RECORD_MAX];
        // The record buffer holds MAX_ENCODED_LEN after its 6-byte header.
        let len = state.encode_into(&mut record[6..]).unwrap_or(0);
        record[..4].copy_from_slice(&seq.to_le_bytes());
        // len <= MAX_ENCODED_LEN (289) fits a u16.
        record[4..6].copy_from_slice(&(len as u16).to_le_bytes());
        let crc = crc32(&record[..6 + len]);
        record[6 + len..10 + len].copy_from_slice(&crc.to_le_bytes());
        self.pages.erase(page).map_err(AbError::Flash)?;
        self.pages
            .program(page, 0, &record[..10 + len])
            .map_err(AbError::Flash)?;
        self.current = Some((page, seq));
        Ok(())
    }
}

/// Flash simulated in RAM, with power cuts: after `cut_after` more bytes erased or
/// programmed, the operation stops where it is and fails, as if power went. Used by the
/// tests and by the firmware's on-target checks.
pub struct RamFlash<const PAGE: usize> {
    /// The two pages' bytes.
    pub pages: [[u8; PAGE]; 2],
    /// Bytes the flash still writes before the power cut (`None`: no cut).
    pub cut_after: Option<usize>,
    /// Erases and programs so far.
    pub writes: u32,
}

/// The power went during a flash operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerCut;

impl<const PAGE: usize> RamFlash<PAGE> {
    /// Erased flash, no cut planned.
    pub const fn new() -> Self {
        Self {
            pages: [[0xFF; PAGE]; 2],
            cut_after: None,
            writes: 0,
        }
    }

    /// Spends one byte of the budget before the cut; false once the power is gone.
    fn tick(&mut self) -> bool {
        match &mut self.cut_after {
            None => true,
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
        }
    }
}

impl<const PAGE: usize> Default for RamFlash<PAGE> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const PAGE: usize> Pages for RamFlash<PAGE> {
    type Error = PowerCut;

    fn page_size(&self) -> usize {
        PAGE
    }

    fn read(&mut self, page: usize, offset: usize, out: &mut [u8]) -> Result<(), PowerCut> {
        let src = &self.pages[page % 2];
        for (i, b) in out.iter_mut().enumerate() {
            *b = src.get(offset + i).copied().unwrap_or(0xFF);
        }
        Ok(())
    }

    fn erase(&mut self, page: usize) -> Result<(), PowerCut> {
        self.writes += 1;
        // Erase sweeps the page; a cut leaves a prefix erased, the rest as it was.
        for i in 0..PAGE {
            if !self.tick() {
                return Err(PowerCut);
            }
            self.pages[page % 2][i] = 0xFF;
        }
        Ok(())
    }

    fn program(&mut self, page: usize, offset: usize, bytes: &[u8]) -> Result<(), PowerCut> {
        self.writes += 1;
        for (i, b) in bytes.iter().enumerate() {
            if !self.tick() {
                return Err(PowerCut);
            }
            // NOR flash programs by clearing bits only.
            if let Some(cell) = self.pages[page % 2].get_mut(offset + i) {
                *cell &= *b;
            }
        }
        Ok(())
    }
}
