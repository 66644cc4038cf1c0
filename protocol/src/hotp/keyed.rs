//! HMAC-SHA256 from its key's precomputed state, as small as a microcontroller wants it.
//!
//! HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)). The key's two padded blocks are
//! hashed once ([`HmacSha256Keyed::new`]); what is kept is the two SHA-256 chaining values
//! after them, 64 bytes. A MAC then costs the compressions of `m` and of the inner
//! hash, and the caller's stack holds one 64-byte block and a 32-byte state: no
//! `hmac::Hmac` (three chaining values and a block buffer, about 200 bytes) cloned per
//! MAC. Its values are `hmac::Hmac<sha2::Sha256>`'s (tests/hotp_rfc.rs compares them).
/// SHA-256's initial chaining value (FIPS 180-4 section 5.3.3).
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// HMAC-SHA256 keyed once: the inner and outer chaining values after the key's padded
/// blocks (a key of at most 64 bytes, as every slotpay key is: 32).
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSha256Keyed {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl core::fmt::Debug for HmacSha256Keyed {
    // Key material: never printed.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HmacSha256Keyed(..)")
    }
}

fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    // sha2 0.10 takes generic-array blocks; `into` views the array as one, no copy (the
    // type's own name is deprecated).
    sha2::compress256(state, core::slice::from_ref(block.into()));
}

impl HmacSha256Keyed {
    /// All zero chaining values: a placeholder for a state keyed later, in place (a
    /// device in a static, whose keys are set at boot). It is no key's state: replace
    /// it with [`Self::new`]'s before computing anything with it.
    pub const UNSET: HmacSha256Keyed = HmacSha256Keyed {
        inner: [0; 8],
        outer: [0; 8],
    };

    /// The state for `key` (at most 64 bytes, HMAC's block: slotpay's keys are 32).
    pub fn new(key: &[u8; 32]) -> Self {
        // The key zero-padded to a block, XORed with ipad (written so, not as a fill of
        // 0x36: the M0 then links no memset for it).
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(key);
        for b in block.iter_mut() {
            *b ^= 0x36;
        }
        let mut inner = IV;
        compress(&mut inner, &block);
        // ipad ^ opad turns the inner block into the outer one.
        for b in block.iter_mut() {
            *b ^= 0x36 ^ 0x5c;
        }
        let mut outer = IV;
        compress(&mut outer, &block);
        Self { inner, outer }
    }

    /// HMAC(key, the concatenation of `parts`).
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let inner = finish(&self.inner, parts);
        finish(&self.outer, &[&inner])
    }
}

/// SHA-256 of a 64-byte block already compressed into `state`, then `parts`: the
/// remaining blocks, the padding and the length (of the 64 bytes and the parts).
fn finish(state: &[u32; 8], parts: &[&[u8]]) -> [u8; 32] {
    let mut st = *state;
    let mut block = [0u8; 64];
    let mut n = 0usize;
    let mut total = 64u64;
    for part in parts {
        for &b in *part {
            block[n % 64] = b;
            n += 1;
            if n == 64 {
                compress(&mut st, &block);
                block = [0; 64];
                n = 0;
            }
        }
        total += part.len() as u64;
    }
    // n < 64 here and the bytes from n on are zero (the block is cleared after each
    // compression): one byte of padding fits; the length needs 8 more.
    block[n % 64] = 0x80;
    if n >= 56 {
        compress(&mut st, &block);
        block = [0; 64];
    }
    block[56..].copy_from_slice(&(total * 8).to_be_bytes());
    compress(&mut st, &block);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(st) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}
