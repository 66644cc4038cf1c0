//! The client's own record, per chain, contract, channel and authority epoch, of what its
//! key has done: the highest amount it signed, the running total of its last purchase
//! that delivered tokens, and the first justified total it saw. Written (fsynced) before a
//! receipt leaves, so whatever an AS later claims, the client knows what it owes and how
//! far it has let others' totals carry it; kept beside the key file
//! (`<key>.state.json`), locked while a `slotpay pay` runs.
use anyhow::{Context, Result};
use fs2::FileExt;
use protocol::{AnyDomain, Balance, ChannelId, Epoch};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// What the key did in one channel's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The highest amount it signed.
    #[serde(with = "decimal")]
    pub signed: Balance,
    /// The running total its last purchase that delivered tokens raised the channel to.
    #[serde(default, with = "decimal_opt", skip_serializing_if = "Option::is_none")]
    pub bought: Option<Balance>,
    /// The running total the AS justified when this key first looked at the channel's
    /// epoch: where its allowance counts from until it has bought.
    #[serde(default, with = "decimal_opt", skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Balance>,
}

impl EpochRecord {
    /// Where the allowance for others' raises counts from: the last total that brought
    /// this key tokens, else the first total it was shown.
    pub fn allowance_base(&self) -> Balance {
        self.bought.or(self.baseline).unwrap_or(0)
    }
}

mod decimal {
    use serde::{Deserialize, Deserializer, Serializer};
    pub(super) fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        api::parse_amount(&text, "amount").map_err(serde::de::Error::custom)
    }
}

mod decimal_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    pub(super) fn serialize<S: Serializer>(v: &Option<u128>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u128>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| api::parse_amount(&text, "amount").map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// The file's two layouts: today's, and the first (only what was signed).
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Records(BTreeMap<String, EpochRecord>),
    Signed(BTreeMap<String, String>),
}

/// A key's record, locked for this process.
pub struct ClientState {
    path: PathBuf,
    records: BTreeMap<String, EpochRecord>,
    // Held for the state's lifetime: another process with the same key waits.
    _lock: File,
}

fn entry(domain: &AnyDomain, channel: ChannelId, epoch: Epoch) -> String {
    match domain {
        // The ink! layer's entries as they have always been written.
        AnyDomain::Substrate(domain) => format!(
            "{}/{}/{}/{epoch}",
            hex::encode(domain.genesis_hash),
            hex::encode(domain.contract),
            channel.0
        ),
        AnyDomain::Evm(domain) => format!(
            "evm-{}/{}/{}/{epoch}",
            domain.chain_id,
            hex::encode(domain.contract),
            channel.0
        ),
    }
}

impl ClientState {
    /// The state of the key in `key_file`, locked until dropped.
    pub fn open(key_file: &Path) -> Result<Self> {
        let path = PathBuf::from(format!("{}.state.json", key_file.display()));
        let lock_path = PathBuf::from(format!("{}.state.lock", key_file.display()));
        let lock =
            File::create(&lock_path).with_context(|| format!("create {}", lock_path.display()))?;
        lock.lock_exclusive()
            .with_context(|| format!("lock {}", lock_path.display()))?;
        let records = match std::fs::read_to_string(&path) {
            Ok(text) => match serde_json::from_str(&text)
                .with_context(|| format!("{}: not a slotpay client state", path.display()))?
            {
                Stored::Records(records) => records,
                Stored::Signed(signed) => signed
                    .into_iter()
                    .map(|(k, v)| {
                        let signed = api::parse_amount(&v, "signed amount")?;
                        Ok((
                            k,
                            EpochRecord {
                                signed,
                                ..EpochRecord::default()
                            },
                        ))
                    })
                    .collect::<Result<_>>()
                    .with_context(|| format!("{}: corrupt", path.display()))?,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        Ok(Self {
            path,
            records,
            _lock: lock,
        })
    }

    /// The key's record of the channel's epoch (all zero if none).
    pub fn get(&self, domain: &AnyDomain, channel: ChannelId, epoch: Epoch) -> EpochRecord {
        self.records
            .get(&entry(domain, channel, epoch))
            .copied()
            .unwrap_or_default()
    }

    /// The highest amount this key signed for the channel's epoch (0 if none).
    pub fn last(&self, domain: &AnyDomain, channel: ChannelId, epoch: Epoch) -> Balance {
        self.get(domain, channel, epoch).signed
    }

    /// Replaces the record with `change` applied to it; durable when this returns. What
    /// was signed only grows.
    pub fn update(
        &mut self,
        domain: &AnyDomain,
        channel: ChannelId,
        epoch: Epoch,
        change: impl FnOnce(&mut EpochRecord),
    ) -> Result<EpochRecord> {
        let key = entry(domain, channel, epoch);
        let before = self.records.get(&key).copied().unwrap_or_default();
        let mut after = before;
        change(&mut after);
        after.signed = after.signed.max(before.signed);
        self.records.insert(key, after);
        let text = serde_json::to_string_pretty(&self.records)?;
        api::write_atomically(&self.path, text.as_bytes())
            .with_context(|| format!("write {}", self.path.display()))?;
        Ok(after)
    }

    /// Records that the key is about to sign `amount`; durable when this returns.
    pub fn record(
        &mut self,
        domain: &AnyDomain,
        channel: ChannelId,
        epoch: Epoch,
        amount: Balance,
    ) -> Result<()> {
        self.update(domain, channel, epoch, |r| r.signed = r.signed.max(amount))
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: AnyDomain = AnyDomain::Substrate(protocol::Domain {
        genesis_hash: [1; 32],
        contract: [2; 32],
    });

    #[test]
    fn the_record_survives_reopening_and_what_was_signed_never_falls() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.key");
        {
            let mut state = ClientState::open(&key).unwrap();
            state.record(&DOMAIN, ChannelId(1), 0, 30).unwrap();
            state
                .update(&DOMAIN, ChannelId(1), 0, |r| {
                    r.signed = 10;
                    r.bought = Some(30);
                })
                .unwrap();
        }
        let state = ClientState::open(&key).unwrap();
        let record = state.get(&DOMAIN, ChannelId(1), 0);
        assert_eq!((record.signed, record.bought), (30, Some(30)));
        assert_eq!(state.last(&DOMAIN, ChannelId(1), 1), 0);
    }

    #[test]
    fn a_state_file_of_the_first_layout_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.key");
        let name = entry(&DOMAIN, ChannelId(4), 2);
        std::fs::write(
            dir.path().join("k.key.state.json"),
            format!("{{\"{name}\": \"77\"}}"),
        )
        .unwrap();
        let state = ClientState::open(&key).unwrap();
        assert_eq!(state.last(&DOMAIN, ChannelId(4), 2), 77);
        assert_eq!(state.get(&DOMAIN, ChannelId(4), 2).allowance_base(), 0);
    }
}
