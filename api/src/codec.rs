//! Bytes as 0x-prefixed hex, balances as decimal strings (JSON numbers lose precision
//! above 2^53), accounts as SS58 or hex.
use blake2::Digest as _;
use protocol::{AccountId32, Balance};

/// A malformed field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Not `0x` + 2 `len` hex digits.
    #[error("{field}: not 0x-prefixed hex of {len} bytes")]
    Hex {
        /// The input's name.
        field: &'static str,
        /// The bytes expected.
        len: usize,
    },
    /// Not decimal digits below 2^128.
    #[error("{field}: not a decimal integer below 2^128")]
    Amount {
        /// The input's name.
        field: &'static str,
    },
    /// Neither SS58 nor hex.
    #[error("{text:?} is neither an SS58 address nor 0x-prefixed hex of 32 bytes (an account) or 20 (an EVM address)")]
    Account {
        /// The input.
        text: String,
    },
}

pub use protocol::to_hex;

/// Exactly `N` bytes from `0x`-prefixed hex, as the protocol's JSON reads them; `field`
/// names the input in the error.
pub fn from_hex<const N: usize>(text: &str, field: &'static str) -> Result<[u8; N], CodecError> {
    protocol::parse_hex(text).map_err(|_| CodecError::Hex { field, len: N })
}

/// A balance in the chain's smallest unit, as decimal digits only (no sign, no spaces),
/// as the protocol's JSON reads it; `field` names the input in the error.
pub fn parse_amount(text: &str, field: &'static str) -> Result<Balance, CodecError> {
    protocol::parse_balance(text).map_err(|_| CodecError::Amount { field })
}

/// The generic Substrate SS58 prefix, as substrate-contracts-node uses.
const SS58_PREFIX: u8 = 42;

fn ss58_checksum(body: &[u8]) -> [u8; 2] {
    let mut hasher = blake2::Blake2b512::new();
    hasher.update(b"SS58PRE");
    hasher.update(body);
    let hash = hasher.finalize();
    [hash[0], hash[1]]
}

/// An account in SS58 with the generic prefix (42).
pub fn ss58(account: &AccountId32) -> String {
    let mut body = Vec::with_capacity(35);
    body.push(SS58_PREFIX);
    body.extend_from_slice(account);
    let checksum = ss58_checksum(&body);
    body.extend_from_slice(&checksum);
    bs58::encode(body).into_string()
}

/// An account given as SS58 (any one-byte prefix, checksum verified), 0x-prefixed hex of
/// 32 bytes, or an EVM address (0x and 20 bytes, mapped as [`protocol::evm_account`]
/// does).
pub fn parse_account(text: &str) -> Result<AccountId32, CodecError> {
    let bad = || CodecError::Account {
        text: text.to_owned(),
    };
    if text.starts_with("0x") {
        if text.len() == 2 + 40 {
            return from_hex::<20>(text, "account")
                .map(|a| protocol::evm_account(&a))
                .map_err(|_| bad());
        }
        return from_hex::<32>(text, "account").map_err(|_| bad());
    }
    let bytes = bs58::decode(text).into_vec().map_err(|_| bad())?;
    // One prefix byte (< 64), 32 account bytes, 2 checksum bytes.
    if bytes.len() != 35 || bytes[0] >= 64 {
        return Err(bad());
    }
    if ss58_checksum(&bytes[..33]) != bytes[33..] {
        return Err(bad());
    }
    let mut account = [0u8; 32];
    account.copy_from_slice(&bytes[1..33]);
    Ok(account)
}

/// An account as people read it: an EVM account ([`protocol::evm_address`]) as its 0x
/// address, any other in SS58.
pub fn account_text(account: &AccountId32) -> String {
    match protocol::evm_address(account) {
        Some(address) => to_hex(&address),
        None => ss58(account),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_addresses_are_accounts_too() {
        let address = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
        let account = parse_account(address).unwrap();
        assert_eq!(&account[20..], &[0xEE; 12]);
        assert_eq!(account_text(&account), address);
        let alice = parse_account("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY").unwrap();
        assert_eq!(
            account_text(&alice),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
        assert!(parse_account("0x5fbdb2315678afecb367f032d93f642f64180a").is_err());
    }

    #[test]
    fn ss58_matches_substrates_dev_accounts() {
        // //Alice's sr25519 account, as every Substrate tool prints it.
        let alice = from_hex::<32>(
            "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d",
            "a",
        )
        .unwrap();
        assert_eq!(
            ss58(&alice),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
        assert_eq!(
            parse_account("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY").unwrap(),
            alice
        );
        // One character changed: the checksum catches it.
        assert!(parse_account("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ").is_err());
    }

    #[test]
    fn amounts_are_plain_decimal() {
        assert_eq!(parse_amount("0", "x"), Ok(0));
        assert_eq!(parse_amount(&u128::MAX.to_string(), "x"), Ok(u128::MAX));
        for bad in [
            "",
            "+1",
            "-1",
            "1e3",
            " 1",
            "340282366920938463463374607431768211456",
        ] {
            assert!(parse_amount(bad, "x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hex_needs_prefix_and_length() {
        assert_eq!(from_hex::<2>("0x0aff", "f"), Ok([0x0a, 0xff]));
        assert!(from_hex::<2>("0aff", "f").is_err());
        assert!(from_hex::<2>("0x0a", "f").is_err());
        assert!(from_hex::<2>("0xzzzz", "f").is_err());
    }
}
