//! The device as it ships: booted from its flash (the provisioning page and the two
//! state pages, see `host`), behind the no_std CoAP side of the `device` crate, the
//! same code the simulator runs.
use crate::host::{self, HostError, HostFlash};
use core::sync::atomic::{AtomicBool, Ordering};
use device::{AbStore, CoapDevice, Device, Provisioned, ProvisionedError, FLASH_PAGE};

/// Exchanges the deduplication remembers: a few, in RAM (the simulator keeps 4,096).
/// More checked requests than this within 247 s forget the oldest early: its
/// retransmission is then checked again, answered `used`, never granted twice. Six
/// (64 bytes each) keep the one-device image's static RAM under its 2 KiB budget; a
/// device sees a few requests a minute, and under a flood of checked guesses (at most
/// 320 at once, then one a minute) no small table would hold anyway.
pub const DEDUP: usize = 6;

/// The device's state store: the A/B pages of the flash file.
pub type Store = AbStore<HostFlash>;
/// The device behind CoAP.
pub type Coap = CoapDevice<Store, DEDUP>;

/// Why the device did not boot.
#[derive(Debug, Clone, Copy)]
pub enum BootError {
    /// No flash file named on the semihosting command line.
    NoFlash,
    /// The flash file failed.
    Flash(HostError),
    /// The provisioning page holds no valid record.
    Provisioning(ProvisionedError),
    /// The state pages could not be read or the new boot count saved.
    State,
    /// The device was handed out already.
    Taken,
}

impl BootError {
    /// For the boot log, without `core::fmt` (short: every byte of text is flash).
    pub fn describe(&self) -> &'static str {
        match self {
            BootError::NoFlash => "no flash file argument",
            BootError::Flash(HostError::Open) => "flash file: no read-write open",
            BootError::Flash(_) => "flash file failed",
            BootError::Provisioning(ProvisionedError::Corrupt) => {
                "no provisioning record (slotpay-device --write-flash)"
            }
            BootError::Provisioning(_) => "provisioning cannot run",
            BootError::State => "state pages failed",
            BootError::Taken => "booted already",
        }
    }
}

/// Opens the flash named by the last semihosting argument and reads its provisioning.
/// (Not inlined: its page buffer leaves the stack before the device boots.)
#[inline(never)]
fn provisioning() -> Result<(HostFlash, Provisioned), BootError> {
    let mut path = [0u8; 128];
    let path = host::last_arg(&mut path).ok_or(BootError::NoFlash)?;
    let mut flash = HostFlash::open(path).map_err(BootError::Flash)?;
    let mut page = [0u8; FLASH_PAGE];
    flash.provisioning(&mut page).map_err(BootError::Flash)?;
    let provisioned = Provisioned::decode(&page).map_err(BootError::Provisioning)?;
    Ok((flash, provisioned))
}

/// The device, in place from the start: a static initialised at build time (all zero
/// bytes while unbooted, so it lies in .bss and costs no flash), booted where it lies.
/// Built on the stack and moved here it cost the stack several copies of itself (8 KiB,
/// measured: four times the budget).
static mut COAP: Coap =
    CoapDevice::with_capacity(Device::unbooted(AbStore::new(HostFlash::closed())), 0);
/// Whether [`boot`] handed out the device (a load and a store: the Cortex-M0 has no
/// compare-and-swap, and only `main` calls it, before any interrupt is enabled).
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Boots the device from the flash named on the semihosting command line, in place,
/// and hands it out; `None` (as `BootError`'s `Taken`) the second time.
/// (Not inlined: the provisioning it reads is then not in its caller's frame while the
/// device serves.)
#[allow(unsafe_code)] // the one `&mut` to the static device
#[inline(never)]
pub fn boot() -> Result<&'static mut Coap, BootError> {
    if TAKEN.load(Ordering::Relaxed) {
        return Err(BootError::Taken);
    }
    TAKEN.store(true, Ordering::Relaxed);
    // SAFETY: the only reference to COAP ever made: TAKEN lets this line run once, and
    // nothing else names COAP.
    let coap = unsafe { &mut *core::ptr::addr_of_mut!(COAP) };
    let (flash, provisioned) = provisioning()?;
    *coap.device.store_mut() = AbStore::new(flash);
    coap.slot_ms = provisioned.slot_ms;
    coap.device
        .start(provisioned.config)
        .map_err(|_| BootError::State)?;
    Ok(coap)
}
