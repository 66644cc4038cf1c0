//! The network of QEMU's mps2 boards (mps2-an385, -an386, -an500): an SMSC LAN9118
//! Ethernet controller at 0x4020_0000, IRQ 13, driven here by polling its FIFOs and
//! handed to smoltcp as a `phy::Device`; and the LAN9118's 25 MHz free-running counter
//! as the device's clock. (The microbit has no NIC: the networked image runs on
//! mps2-an385, a Cortex-M3, which executes the Cortex-M0's Armv6-M code as it is.)
//!
//! Register use follows the LAN9118 data sheet as QEMU's model (hw/net/lan9118.c)
//! implements it: frames are read from the RX data FIFO after their status word, and
//! written to the TX data FIFO after two command words; FIFO words are little endian.
use core::ptr::{read_volatile, write_volatile};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

const BASE: usize = 0x4020_0000;
/// The NIC's interrupt on mps2-an385 (the CPU's IRQ 13).
pub const IRQ: u16 = 13;

const RX_DATA: usize = 0x00;
const TX_DATA: usize = 0x20;
const RX_STATUS: usize = 0x40;
const TX_STATUS: usize = 0x48;
const IRQ_CFG: usize = 0x54;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5c;
const BYTE_TEST: usize = 0x64;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_FIFO_INF: usize = 0x7c;
const TX_FIFO_INF: usize = 0x80;
const FREE_RUN: usize = 0x9c;
const MAC_CSR_CMD: usize = 0xa4;
const MAC_CSR_DATA: usize = 0xa8;

const MAC_CR: u32 = 1;
const MAC_ADDRH: u32 = 2;
const MAC_ADDRL: u32 = 3;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_RXEN: u32 = 1 << 2;
/// Interrupt on any frame in the RX status FIFO (its level is 0 after reset).
const RSFL_INT: u32 = 1 << 3;
/// The IRQ line enabled, active high, push-pull.
const IRQ_ON: u32 = (1 << 8) | (1 << 4) | 1;

/// Bytes of the largest frame kept: CoAP requests and answers are under 200 bytes with
/// their headers; a longer frame is read out of the FIFO and dropped.
pub const MTU: usize = 320;

#[allow(unsafe_code)] // a memory-mapped register of the NIC
fn read(offset: usize) -> u32 {
    // SAFETY: BASE + offset is one of the LAN9118's 32-bit registers on the mps2
    // boards; reading it has only the device's documented effects (a FIFO pop).
    unsafe { read_volatile((BASE + offset) as *const u32) }
}

#[allow(unsafe_code)] // a memory-mapped register of the NIC
fn write(offset: usize, value: u32) {
    // SAFETY: as for `read`: a documented register of the board's LAN9118.
    unsafe { write_volatile((BASE + offset) as *mut u32, value) }
}

fn mac_wait() {
    // The model completes MAC CSR accesses at once; hardware clears the busy bit.
    while read(MAC_CSR_CMD) & (1 << 31) != 0 {}
}

fn mac_read(reg: u32) -> u32 {
    write(MAC_CSR_CMD, (1 << 31) | (1 << 30) | reg);
    mac_wait();
    read(MAC_CSR_DATA)
}

fn mac_write(reg: u32, value: u32) {
    write(MAC_CSR_DATA, value);
    write(MAC_CSR_CMD, (1 << 31) | reg);
    mac_wait();
}

/// The controller, and one frame's buffer each way.
pub struct Lan9118 {
    rx: [u8; MTU],
    tx: [u8; MTU],
}

impl Lan9118 {
    /// Resets and starts the controller (receive, transmit, an interrupt per frame);
    /// `None` if there is none at its address (the byte-order test register reads
    /// 0x87654321 on every LAN9118).
    pub fn start() -> Option<(Self, [u8; 6])> {
        if read(BYTE_TEST) != 0x8765_4321 {
            return None;
        }
        write(HW_CFG, 1);
        while read(HW_CFG) & 1 != 0 {}
        let low = mac_read(MAC_ADDRL).to_le_bytes();
        let high = mac_read(MAC_ADDRH).to_le_bytes();
        let mac = [low[0], low[1], low[2], low[3], high[0], high[1]];
        // Its own address and broadcast (ARP) only: not promiscuous.
        mac_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN);
        write(TX_CFG, 1 << 1);
        write(INT_EN, RSFL_INT);
        write(IRQ_CFG, IRQ_ON);
        Some((
            Lan9118 {
                rx: [0; MTU],
                tx: [0; MTU],
            },
            mac,
        ))
    }

    /// Acknowledges the controller's interrupts (the IRQ line drops until the next
    /// frame).
    pub fn acknowledge() {
        write(INT_STS, u32::MAX);
    }

    /// The next frame into `self.rx`: its length, or `None` if none is waiting.
    /// Frames with errors, too short or longer than [`MTU`] are dropped.
    fn fetch(&mut self) -> Option<usize> {
        while (read(RX_FIFO_INF) >> 16) & 0xff != 0 {
            let status = read(RX_STATUS);
            // The length counts the 4-byte CRC the FIFO holds after the frame.
            let len = ((status >> 16) & 0x3fff) as usize;
            let words = len.div_ceil(4);
            let keep = status & (1 << 15) == 0 && (18..=MTU + 4).contains(&len);
            for i in 0..words {
                let word = read(RX_DATA).to_le_bytes();
                if keep {
                    for (j, b) in word.iter().enumerate() {
                        if let Some(slot) = self.rx.get_mut(4 * i + j) {
                            *slot = *b;
                        }
                    }
                }
            }
            if keep {
                return Some(len - 4);
            }
        }
        None
    }
}

/// Sends `frame` (at most [`MTU`] bytes): command A (first and last segment, its
/// length), command B (tag, length), then its words.
fn send(frame: &[u8]) {
    // Drain transmit statuses so their FIFO (512 entries) never fills.
    while (read(TX_FIFO_INF) >> 16) & 0xff != 0 {
        read(TX_STATUS);
    }
    let len = frame.len() as u32 & 0x7ff;
    write(TX_DATA, (1 << 13) | (1 << 12) | len);
    write(TX_DATA, (len << 16) | len);
    for chunk in frame.chunks(4) {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        write(TX_DATA, u32::from_le_bytes(word));
    }
}

/// A received frame, for smoltcp.
pub struct Rx<'a>(&'a [u8]);
/// Room for a frame to send, for smoltcp.
pub struct Tx<'a>(&'a mut [u8; MTU]);

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let buf = &mut self.0[..len.min(MTU)];
        let result = f(buf);
        send(buf);
        result
    }
}

impl phy::Device for Lan9118 {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let len = self.fetch()?;
        let Lan9118 { rx, tx } = self;
        Some((Rx(&rx[..len]), Tx(tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(1);
        caps
    }
}

/// Milliseconds since boot from the LAN9118's free-running counter (25 MHz, 32 bits:
/// it wraps every 171.8 s, so it must be read more often than that; the main loop
/// wakes at least every 100 ms).
pub struct Clock {
    last: u32,
    ticks: u64,
}

impl Clock {
    /// Starts counting now.
    pub fn start() -> Self {
        Clock {
            last: read(FREE_RUN),
            ticks: 0,
        }
    }

    /// Milliseconds since [`Clock::start`].
    pub fn now_ms(&mut self) -> u64 {
        let now = read(FREE_RUN);
        self.ticks += u64::from(now.wrapping_sub(self.last));
        self.last = now;
        self.ticks / 25_000
    }

    /// Some bits that differ from run to run (for smoltcp's port and sequence seeds;
    /// nothing secret depends on them).
    pub fn seed() -> u64 {
        u64::from(read(FREE_RUN)) | (u64::from(read(FREE_RUN).rotate_left(16)) << 32)
    }
}
