//! Who signs extrinsics: a Substrate sr25519 account (a secret URI such as `//Alice`) or
//! an ECDSA account whose key is a slotpay client key (the payer's-own-key construction).
use protocol::AccountId32;
use std::str::FromStr;
use subxt::tx::Signer;
use subxt::PolkadotConfig;
use subxt_signer::{ecdsa, sr25519, SecretUri};

/// A transaction signer of either kind, so one code path submits for both.
#[derive(Clone)]
pub enum AnySigner {
    /// A Substrate sr25519 account (the AS, dev accounts such as `//Alice`).
    Sr25519(sr25519::Keypair),
    /// An ECDSA account: blake2_256 of the compressed key, so a payer's slotpay key is
    /// also its chain account ([`protocol::account_id_of`]).
    Ecdsa(ecdsa::Keypair),
}

/// A secret that does not make a key.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct SignerError {
    what: &'static str,
    reason: String,
}

impl AnySigner {
    /// An sr25519 key from a secret URI (`//Alice`, a mnemonic, a 0x seed).
    pub fn from_suri(suri: &str) -> Result<Self, SignerError> {
        let bad = |reason: String| SignerError {
            what: "secret URI",
            reason,
        };
        let uri = SecretUri::from_str(suri.trim()).map_err(|e| bad(e.to_string()))?;
        Ok(Self::Sr25519(
            sr25519::Keypair::from_uri(&uri).map_err(|e| bad(e.to_string()))?,
        ))
    }

    /// The ECDSA chain account of a secp256k1 secret (a slotpay key file's).
    pub fn from_ecdsa_secret(secret: &[u8; 32]) -> Result<Self, SignerError> {
        Ok(Self::Ecdsa(
            ecdsa::Keypair::from_secret_key(*secret).map_err(|e| SignerError {
                what: "ECDSA key",
                reason: e.to_string(),
            })?,
        ))
    }

    /// The chain account the signer signs for.
    pub fn account(&self) -> AccountId32 {
        <Self as Signer<PolkadotConfig>>::account_id(self).0
    }
}

impl Signer<PolkadotConfig> for AnySigner {
    fn account_id(&self) -> <PolkadotConfig as subxt::Config>::AccountId {
        match self {
            AnySigner::Sr25519(k) => Signer::<PolkadotConfig>::account_id(k),
            AnySigner::Ecdsa(k) => Signer::<PolkadotConfig>::account_id(k),
        }
    }

    fn address(&self) -> <PolkadotConfig as subxt::Config>::Address {
        match self {
            AnySigner::Sr25519(k) => Signer::<PolkadotConfig>::address(k),
            AnySigner::Ecdsa(k) => Signer::<PolkadotConfig>::address(k),
        }
    }

    fn sign(&self, payload: &[u8]) -> <PolkadotConfig as subxt::Config>::Signature {
        match self {
            AnySigner::Sr25519(k) => Signer::<PolkadotConfig>::sign(k, payload),
            AnySigner::Ecdsa(k) => Signer::<PolkadotConfig>::sign(k, payload),
        }
    }
}
