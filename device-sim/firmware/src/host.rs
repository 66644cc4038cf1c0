//! What the emulated board gets from the host through Arm semihosting: a console, the
//! command line (`-semihosting-config arg=...`), and the device's flash as a host file.
//!
//! Flash: QEMU models no persistent flash on these boards (the mps2 "flash" is RAM
//! reloaded from the image at every start; the microbit's NVMC keeps nothing past the
//! process), so the device's flash is a file on the host, read and written through
//! semihosting like an external SPI NOR chip: [`HostFlash`] gives it NOR semantics
//! (erase to 0xFF, programming only clears bits), and every write reaches the host file
//! before the call returns, so a QEMU killed at any moment keeps what was written.
use core::sync::atomic::{AtomicUsize, Ordering};
use cortex_m_semihosting::{nr, syscall};
use device::{Pages, FLASH_PAGE, PROVISIONING_OFFSET};

const UNOPENED: usize = usize::MAX;
/// The console's handle, opened once (each `open` of ":tt" would take a new one).
static STDOUT: AtomicUsize = AtomicUsize::new(UNOPENED);

/// Writes `bytes` to the host's stdout; errors are ignored, as a device without a
/// debugger attached would.
#[allow(unsafe_code)] // semihosting calls (SYS_OPEN, SYS_WRITE)
pub fn print(bytes: &[u8]) {
    let mut fd = STDOUT.load(Ordering::Relaxed);
    if fd == UNOPENED {
        let name = b":tt\0";
        // SAFETY: a NUL-terminated name and its length without the NUL, as SYS_OPEN
        // takes them; the call reads them only.
        fd = unsafe { syscall!(OPEN, name.as_ptr(), nr::open::W_TRUNC, name.len() - 1) };
        if fd == UNOPENED {
            return;
        }
        STDOUT.store(fd, Ordering::Relaxed);
    }
    // SAFETY: SYS_WRITE reads `bytes.len()` bytes from `bytes`.
    let _ = unsafe { syscall!(WRITE, fd, bytes.as_ptr(), bytes.len()) };
}

/// The last word of the semihosting command line (`arg=` values joined by spaces), NUL
/// terminated, in `buf`; `None` without one.
#[allow(unsafe_code)] // a semihosting call (SYS_GET_CMDLINE)
pub fn last_arg(buf: &mut [u8; 128]) -> Option<&[u8]> {
    *buf = [0; 128];
    // SYS_GET_CMDLINE fills a buffer it is given with its length (and writes the used
    // length back into that block, which the NUL terminator makes unnecessary here).
    let mut block = [buf.as_mut_ptr() as usize, buf.len() - 1];
    let block_at = block.as_mut_ptr() as usize;
    // SAFETY: the block names a writable buffer of buf.len() - 1 bytes (the last byte
    // stays 0, so the text is always terminated) and is itself writable.
    let status = unsafe { cortex_m_semihosting::syscall1(nr::GET_CMDLINE, block_at) };
    if status != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0)?;
    let start = buf[..end]
        .iter()
        .rposition(|&b| b == b' ')
        .map_or(0, |i| i + 1);
    // Keep the NUL: SYS_OPEN wants it.
    (end > start).then(|| &buf[start..=end])
}

/// Why the host file failed (the call that failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// It could not be opened read-write (it must exist: provisioning creates it).
    Open,
    /// Positioning the file failed (SYS_SEEK).
    Seek,
    /// Fewer bytes came back than asked for (SYS_READ): the file is shorter than the flash.
    Read,
    /// Fewer bytes were written than given (SYS_WRITE).
    Write,
    /// A page outside the two state pages.
    Page,
}

/// The device's flash in a host file laid out as `device::FLASH_LEN` bytes: state pages
/// 0 and 1 (the A/B store), then the provisioning page.
pub struct HostFlash {
    /// `None` until opened (an `Option`'s tag, zero: a static unbooted device stays in
    /// .bss).
    fd: Option<usize>,
}

impl HostFlash {
    /// No file yet: every operation fails until [`HostFlash::open`] gives one. `const`,
    /// for the device that waits in a static until it boots.
    pub const fn closed() -> Self {
        HostFlash { fd: None }
    }

    /// Opens `path` (NUL terminated) read-write without truncating it.
    #[allow(unsafe_code)] // a semihosting call (SYS_OPEN)
    pub fn open(path: &[u8]) -> Result<Self, HostError> {
        if path.last() != Some(&0) {
            return Err(HostError::Open);
        }
        // SAFETY: a NUL-terminated name and its length without the NUL.
        let fd = unsafe { syscall!(OPEN, path.as_ptr(), nr::open::RW_BINARY, path.len() - 1) };
        if fd == UNOPENED {
            return Err(HostError::Open);
        }
        Ok(HostFlash { fd: Some(fd) })
    }

    fn fd(&self) -> Result<usize, HostError> {
        self.fd.ok_or(HostError::Open)
    }

    #[allow(unsafe_code)] // a semihosting call (SYS_SEEK)
    fn seek(&mut self, at: usize) -> Result<(), HostError> {
        // SAFETY: SYS_SEEK takes a handle and an absolute position; no memory.
        match unsafe { syscall!(SEEK, self.fd()?, at) } {
            0 => Ok(()),
            _ => Err(HostError::Seek),
        }
    }

    /// Reads `out.len()` bytes at `at`.
    #[allow(unsafe_code)] // a semihosting call (SYS_READ)
    pub fn read_at(&mut self, at: usize, out: &mut [u8]) -> Result<(), HostError> {
        self.seek(at)?;
        // SAFETY: SYS_READ writes at most `out.len()` bytes into `out`; it returns how
        // many it did not read.
        match unsafe { syscall!(READ, self.fd()?, out.as_mut_ptr(), out.len()) } {
            0 => Ok(()),
            _ => Err(HostError::Read),
        }
    }

    #[allow(unsafe_code)] // a semihosting call (SYS_WRITE)
    fn write_at(&mut self, at: usize, bytes: &[u8]) -> Result<(), HostError> {
        self.seek(at)?;
        // SAFETY: SYS_WRITE reads `bytes.len()` bytes; it returns how many it did not
        // write.
        match unsafe { syscall!(WRITE, self.fd()?, bytes.as_ptr(), bytes.len()) } {
            0 => Ok(()),
            _ => Err(HostError::Write),
        }
    }

    /// The provisioning page.
    pub fn provisioning(&mut self, out: &mut [u8; FLASH_PAGE]) -> Result<(), HostError> {
        self.read_at(PROVISIONING_OFFSET, out)
    }

    fn offset(page: usize, offset: usize, len: usize) -> Result<usize, HostError> {
        if page < 2 && offset + len <= FLASH_PAGE {
            Ok(page * FLASH_PAGE + offset)
        } else {
            Err(HostError::Page)
        }
    }
}

/// A chunk of work at a time: a page on the stack would cost 512 bytes of it.
const CHUNK: usize = 64;

impl Pages for HostFlash {
    type Error = HostError;

    fn page_size(&self) -> usize {
        FLASH_PAGE
    }

    fn read(&mut self, page: usize, offset: usize, out: &mut [u8]) -> Result<(), HostError> {
        let at = Self::offset(page, offset, out.len())?;
        self.read_at(at, out)
    }

    fn erase(&mut self, page: usize) -> Result<(), HostError> {
        let at = Self::offset(page, 0, FLASH_PAGE)?;
        for chunk in 0..FLASH_PAGE / CHUNK {
            self.write_at(at + chunk * CHUNK, &[0xFF; CHUNK])?;
        }
        Ok(())
    }

    fn program(&mut self, page: usize, offset: usize, bytes: &[u8]) -> Result<(), HostError> {
        let at = Self::offset(page, offset, bytes.len())?;
        // NOR flash programs by clearing bits only: what is written is old AND new.
        for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
            let mut cells = [0u8; CHUNK];
            let cells = &mut cells[..chunk.len()];
            self.read_at(at + i * CHUNK, cells)?;
            for (cell, b) in cells.iter_mut().zip(chunk) {
                *cell &= *b;
            }
            self.write_at(at + i * CHUNK, cells)?;
        }
        Ok(())
    }
}
