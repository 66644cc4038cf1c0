//! The client's own record of what it has signed: per chain, contract, channel and
//! authority epoch, the highest receipt amount its key signed. Written (fsynced) before a
//! receipt leaves, so whatever an AS later claims, the client knows what it owes; kept
//! beside the key file (`<key>.state.json`), locked while a `slotpay pay` runs.
use anyhow::{Context, Result};
use fs2::FileExt;
use protocol::{Balance, ChannelId, Domain, Epoch};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

pub struct ClientState {
    path: PathBuf,
    signed: BTreeMap<String, String>,
    // Held for the state's lifetime: another process with the same key waits.
    _lock: File,
}

fn entry(domain: &Domain, channel: ChannelId, epoch: Epoch) -> String {
    format!(
        "{}/{}/{}/{epoch}",
        hex::encode(domain.genesis_hash),
        hex::encode(domain.contract),
        channel.0
    )
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
        let signed = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{}: not a slotpay client state", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        Ok(Self {
            path,
            signed,
            _lock: lock,
        })
    }

    /// The highest amount this key signed for the channel's epoch (0 if none).
    pub fn last(&self, domain: &Domain, channel: ChannelId, epoch: Epoch) -> Result<Balance> {
        self.signed
            .get(&entry(domain, channel, epoch))
            .map(|a| api::parse_amount(a, "signed amount"))
            .transpose()
            .map(|a| a.unwrap_or(0))
            .with_context(|| format!("{}: corrupt", self.path.display()))
    }

    /// Records that the key is about to sign `amount`; durable when this returns.
    pub fn record(
        &mut self,
        domain: &Domain,
        channel: ChannelId,
        epoch: Epoch,
        amount: Balance,
    ) -> Result<()> {
        let last = self.last(domain, channel, epoch)?;
        self.signed
            .insert(entry(domain, channel, epoch), last.max(amount).to_string());
        let text = serde_json::to_string_pretty(&self.signed)?;
        api::deployment::write_atomically(&self.path, text.as_bytes())
            .with_context(|| format!("write {}", self.path.display()))
    }
}
