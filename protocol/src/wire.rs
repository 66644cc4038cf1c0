//! The JSON forms of the protocol's values (feature `serde`), so the off-chain parts pass
//! the very types the rules use across HTTP instead of copies of them: balances as
//! decimal strings (a u128 does not survive a JSON number), bytes as `0x`-prefixed hex,
//! and a membership proof refused while it is decoded if it is longer than the contract
//! accepts ([`crate::merkle::MAX_PROOF_DEPTH`]).
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// `0x`-prefixed lower-case hex of `bytes`: how bytes travel in JSON.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + 2 * bytes.len());
    out.push_str("0x");
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Exactly `N` bytes from `0x`-prefixed hex (either case).
pub fn parse_hex<const N: usize>(text: &str) -> Result<[u8; N], String> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| String::from("hex must start with 0x"))?
        .as_bytes();
    if digits.len() != 2 * N {
        return Err(format!(
            "expected {N} bytes of hex, got {} characters",
            digits.len()
        ));
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = (hi << 4) | lo,
            _ => return Err(String::from("not hex")),
        }
    }
    Ok(out)
}

/// A u128 as a decimal string: digits only, no sign, no leading `+`.
pub(crate) mod decimal {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        // Owned: a reader-backed deserializer (an HTTP body) cannot lend a &str.
        let text: String = serde::Deserialize::deserialize(d)?;
        parse_balance(&text).map_err(D::Error::custom)
    }
}

/// A balance from decimal digits only (so no "+1", " 1" or "1e3"), within u128: how
/// balances travel in JSON.
pub fn parse_balance(text: &str) -> Result<u128, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a decimal amount"));
    }
    text.parse()
        .map_err(|_| format!("{text:?} does not fit in 128 bits"))
}

/// `[u8; N]` as `0x` hex.
pub(crate) mod hex_bytes {
    use super::*;

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        value: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(value))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        parse_hex(&text).map_err(D::Error::custom)
    }
}

/// A proof's siblings: hex hashes, at most [`crate::merkle::MAX_PROOF_DEPTH`] of them,
/// refused as soon as one too many arrives.
pub(crate) mod siblings {
    use super::*;
    use crate::merkle::MAX_PROOF_DEPTH;

    pub(crate) fn serialize<S: Serializer>(value: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(value.iter().map(|h| to_hex(h)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        struct Bounded;
        impl<'de> Visitor<'de> for Bounded {
            type Value = Vec<[u8; 32]>;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "at most {MAX_PROOF_DEPTH} hex hashes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(text) = seq.next_element::<String>()? {
                    if out.len() == MAX_PROOF_DEPTH {
                        return Err(A::Error::custom(format!(
                            "a proof has at most {MAX_PROOF_DEPTH} siblings"
                        )));
                    }
                    out.push(parse_hex(&text).map_err(A::Error::custom)?);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Bounded)
    }
}
