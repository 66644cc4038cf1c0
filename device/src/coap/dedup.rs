//! RFC 7252 section 4.5, message deduplication: the answers of recent exchanges, kept
//! compactly (what a second write of the same bytes needs), in a fixed ring.
use super::server::{write, Reply};
use super::EXCHANGE_LIFETIME_MS;
use core::net::SocketAddr;

/// An exchange: the source endpoint (the address as IPv6, IPv4 mapped) and the
/// message ID.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    ip: [u8; 16],
    port: u16,
    id: u16,
}

impl Key {
    pub(super) fn of(from: SocketAddr, id: u16) -> Self {
        let ip = match from.ip() {
            core::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            core::net::IpAddr::V6(v6) => v6.octets(),
        };
        Key {
            ip,
            port: from.port(),
            id,
        }
    }
}

/// What an exchange was answered, compactly: enough to write the same bytes again.
#[derive(Clone, Copy)]
pub(super) struct Entry {
    key: Key,
    at_ms: u64,
    kind: u8,
    token_len: u8,
    token: [u8; 8],
    reply: Remembered,
}

/// `repr(u8)` with `Free = 0` (not an `Option`): a free entry is all zeros, so a static
/// table costs no flash (it is placed in .bss).
#[derive(Clone, Copy)]
#[repr(u8)]
enum Remembered {
    Free = 0,
    Granted { counter: u64, seconds: u64 } = 1,
    Invalid = 2,
}

impl Entry {
    const FREE: Entry = Entry {
        key: Key {
            ip: [0; 16],
            port: 0,
            id: 0,
        },
        at_ms: 0,
        kind: 0,
        token_len: 0,
        token: [0; 8],
        reply: Remembered::Free,
    };

    pub(super) fn write(&self, out: &mut [u8]) -> Option<usize> {
        let reply = match self.reply {
            Remembered::Free => return None,
            Remembered::Granted { counter, seconds } => Reply::Granted { counter, seconds },
            Remembered::Invalid => Reply::Invalid,
        };
        let token = self.token.get(..usize::from(self.token_len))?;
        write(out, self.kind, self.key.id, token, &reply)
    }
}

/// RFC 7252 section 4.5: answers by (source endpoint, message ID), for the exchange
/// lifetime, at most `N` of them: a ring, the oldest overwritten first.
pub(super) struct Dedup<const N: usize> {
    entries: [Entry; N],
    next: usize,
}

impl<const N: usize> Dedup<N> {
    pub(super) const fn new() -> Self {
        Dedup {
            entries: [Entry::FREE; N],
            next: 0,
        }
    }

    pub(super) fn get(&self, key: &Key, now_ms: u64) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            !matches!(e.reply, Remembered::Free)
                && e.key == *key
                && now_ms.saturating_sub(e.at_ms) <= EXCHANGE_LIFETIME_MS
        })
    }

    pub(super) fn insert(&mut self, key: Key, kind: u8, token: &[u8], reply: Reply, now_ms: u64) {
        let reply = match reply {
            Reply::Granted { counter, seconds } => Remembered::Granted { counter, seconds },
            Reply::Invalid => Remembered::Invalid,
            _ => return,
        };
        let Some(slot) = self.entries.get_mut(self.next) else {
            return;
        };
        let mut saved = [0u8; 8];
        let token_len = token.len().min(8);
        saved[..token_len].copy_from_slice(&token[..token_len]);
        *slot = Entry {
            key,
            at_ms: now_ms,
            kind,
            // At most 8 (a parsed token).
            token_len: token_len as u8,
            token: saved,
            reply,
        };
        self.next = (self.next + 1) % N;
    }
}
