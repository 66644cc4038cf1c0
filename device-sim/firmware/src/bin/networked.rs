//! The device as firmware, on the network: boots from its flash file (the provisioning
//! page, the state pages), brings up the board's LAN9118 with smoltcp at 10.0.2.15/24
//! (QEMU user networking's guest address; its gateway 10.0.2.2 is the host), and serves
//! the device's CoAP on UDP port 5683 with the same `CoapDevice` the simulator runs:
//! the same token check, Echo, window, throttle, deduplication and answers.
//!
//!     qemu-system-arm -cpu cortex-m3 -machine mps2-an385 -nographic -monitor none \
//!       -semihosting-config enable=on,target=native,arg=networked,arg=FLASH \
//!       -nic user,hostfwd=udp:127.0.0.1:PORT-10.0.2.15:5683 -kernel networked
//!
//! It logs like the simulator on the host's stdout (semihosting): one line when it
//! listens, one per grant (`ACTUATE`) and per refusal. It runs until QEMU is stopped;
//! what it granted is in the flash file before the answer leaves.
#![no_std]
#![no_main]

use core::net::{IpAddr, SocketAddr};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use device::{Event, MAX_ANSWER_LEN};
use device_firmware::net::{self, Clock, Lan9118};
use device_firmware::{say, serve, Line};
use smoltcp::iface::{Config, Interface, SocketSet, SocketStorage};
use smoltcp::socket::udp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address};

const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
const PORT: u16 = 5683;
/// CoAP over UDP without blockwise transfer: requests and answers are a few dozen bytes.
const DATAGRAM: usize = 256;

/// The NIC's interrupt number, for the NVIC.
#[derive(Clone, Copy)]
struct NicIrq;

// cortex-m's trait for interrupt numbers is unsafe to implement.
#[allow(unsafe_code)]
// SAFETY: 13 is the LAN9118's interrupt on mps2-an385 (a valid external interrupt).
unsafe impl cortex_m::interrupt::InterruptNumber for NicIrq {
    fn number(self) -> u16 {
        net::IRQ
    }
}

#[entry]
fn main() -> ! {
    device_firmware::paint_stack();
    let coap = match serve::boot() {
        Ok(c) => c,
        Err(e) => fail(e.describe()),
    };
    serve_forever(coap)
}

/// The network and the loop. (Not inlined: `main`'s frame, alive during the boot, then
/// holds none of the network's state.)
#[inline(never)]
fn serve_forever(coap: &'static mut serve::Coap) -> ! {
    let Some((mut nic, mac)) = Lan9118::start() else {
        fail("no LAN9118 at 0x40200000: run on -machine mps2-an385")
    };
    let mut clock = Clock::start();
    let Some(core) = cortex_m::Peripherals::take() else {
        fail("peripherals taken")
    };
    // A tick every 100 ms wakes the loop, so the NIC's 32-bit clock (it wraps every
    // 171.8 s) is read often enough even when no frame comes.
    let mut systick = core.SYST;
    systick.set_clock_source(SystClkSource::Core);
    systick.set_reload(2_500_000 - 1);
    systick.clear_current();
    systick.enable_interrupt();
    systick.enable_counter();
    // SAFETY: the NIC's handler (DefaultHandler below) only acknowledges its interrupt
    // register; no memory is shared with it.
    #[allow(unsafe_code)] // unmasking an interrupt can break critical sections
    unsafe {
        cortex_m::peripheral::NVIC::unmask(NicIrq)
    };

    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    config.random_seed = Clock::seed();
    let mut iface = Interface::new(config, &mut nic, Instant::from_millis(0));
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(ADDRESS), 24));
    });
    let _ = iface.routes_mut().add_default_ipv4_route(GATEWAY);
    let (Some(rx_meta), Some(rx_data), Some(tx_meta), Some(tx_data), Some(storage)) = (
        cortex_m::singleton!(: [udp::PacketMetadata; 2] = [udp::PacketMetadata::EMPTY; 2]),
        cortex_m::singleton!(: [u8; 2 * DATAGRAM] = [0; 2 * DATAGRAM]),
        cortex_m::singleton!(: [udp::PacketMetadata; 2] = [udp::PacketMetadata::EMPTY; 2]),
        cortex_m::singleton!(: [u8; 2 * DATAGRAM] = [0; 2 * DATAGRAM]),
        cortex_m::singleton!(: [SocketStorage<'static>; 1] = [SocketStorage::EMPTY; 1]),
    ) else {
        fail("buffers taken")
    };
    let mut socket = udp::Socket::new(
        udp::PacketBuffer::new(&mut rx_meta[..], &mut rx_data[..]),
        udp::PacketBuffer::new(&mut tx_meta[..], &mut tx_data[..]),
    );
    if socket.bind(PORT).is_err() {
        fail("bind");
    }
    let mut sockets = SocketSet::new(&mut storage[..]);
    let handle = sockets.add(socket);

    let window = coap.device.window().map_or(0, |w| w.size());
    let digits = coap.device.config().map_or(0, |c| c.digits.get());
    say!(
        "firmware device listening on coap://10.0.2.15:5683 (next counter ",
        coap.device.next_counter(),
        ", window ",
        window,
        ", ",
        u32::from(digits),
        " digits, boot ",
        coap.device.boots(),
        ")"
    );
    let mut request = [0u8; DATAGRAM];
    let mut answer = [0u8; MAX_ANSWER_LEN];
    let mut deepest = 0;
    loop {
        let now = clock.now_ms();
        iface.poll(Instant::from_millis(now as i64), &mut nic, &mut sockets);
        let socket = sockets.get_mut::<udp::Socket>(handle);
        let mut worked = false;
        while let Ok((data, meta)) = socket.recv() {
            worked = true;
            let len = data.len().min(DATAGRAM);
            request[..len].copy_from_slice(&data[..len]);
            let IpAddress::Ipv4(v4) = meta.endpoint.addr;
            let from = SocketAddr::new(IpAddr::V4(v4), meta.endpoint.port);
            let Some((n, event)) = coap.handle_into(from, &request[..len], now, &mut answer) else {
                continue;
            };
            // Sent only now: whatever was granted is in the flash file already.
            let _ = socket.send_slice(&answer[..n], meta.endpoint);
            log(&event, from, now);
            // For bench/firmware.md: the stack's depth so far, each time it grows.
            let depth = device_firmware::stack_high_water();
            if depth > deepest {
                deepest = depth;
                say!(
                    "stack high water ",
                    depth,
                    " bytes, static RAM ",
                    device_firmware::static_ram(),
                    " bytes"
                );
            }
        }
        if worked {
            iface.poll(Instant::from_millis(now as i64), &mut nic, &mut sockets);
        } else {
            // Until the next frame or tick (both interrupts; their handlers only
            // acknowledge).
            cortex_m::asm::wfi();
        }
    }
}

/// The simulator's log lines, for the same tests and the same eyes.
fn log<E: core::fmt::Debug>(event: &Event<E>, from: SocketAddr, now: u64) {
    let mut line = Line::new();
    match event {
        Event::Granted {
            counter,
            active_until_ms,
        } => {
            line.push(b"firmware device ACTUATE on for ")
                .number(active_until_ms.saturating_sub(now) / 1000)
                .push(b" s (counter ")
                .number(*counter)
                .push(b", client ");
        }
        Event::Refused(_) => {
            line.push(b"firmware device refused ");
        }
        Event::Duplicate => {
            line.push(b"firmware device repeated its answer to ");
        }
        Event::Other => return,
    }
    if let IpAddr::V4(v4) = from.ip() {
        for (i, octet) in v4.octets().iter().enumerate() {
            if i > 0 {
                line.push(b".");
            }
            line.number(u64::from(*octet));
        }
    }
    line.push(b":").number(u64::from(from.port()));
    if matches!(event, Event::Granted { .. }) {
        line.push(b")");
    }
    line.end();
}

fn fail(why: &str) -> ! {
    say!("FAIL ", why);
    device_firmware::exit(false)
}

#[exception]
fn SysTick() {}

#[exception]
#[allow(unsafe_code)] // cortex-m-rt requires the default handler to be an `unsafe fn`
unsafe fn DefaultHandler(_irqn: i16) {
    // The only interrupt enabled besides SysTick is the NIC's: acknowledge it so its
    // line drops; the main loop reads the frame.
    Lan9118::acknowledge();
}
