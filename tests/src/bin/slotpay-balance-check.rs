//! `slotpay-balance-check`: the demo's balance check ([`tests::accounting`], the one the
//! whole-system tests use): reads the commands' JSON outputs from the demo's work
//! directory, prints what each channel moved and each party's balance change beside the
//! change its events account for, and fails unless they agree to the unit.
//!
//! ```text
//! slotpay-balance-check --dir WORK --price P --payee AS_ACCOUNT \
//!     --channel NAME:PAYER_ACCOUNT:DEPOSIT [--channel ...] --label ACCOUNT=LABEL ... \
//!     [--unit NAME=DECIMALS]
//! ```
//! `--unit` names the unit the table shows amounts in (default `UNIT=12`, the dev
//! chain's; `ETH=18` on an EVM); the check itself is in the smallest unit, exactly.
//! In WORK: `balances-before.json`, `balances-after.json` (`slotpay --json balance`),
//! per channel `open-NAME.json`, `close-NAME.json`, optional `settle-NAME.json` and
//! `rotate-NAME.json`, and the `slotpay --json pay` outputs in `NAME*.jsonl`.
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tests::accounting::{statement, ChannelRecord};

/// The unit the table shows amounts in: its name and its value in the smallest unit.
struct Unit(String, f64);

impl Unit {
    fn parse(text: &str) -> Result<Self> {
        let (name, decimals) = text.split_once('=').context("--unit NAME=DECIMALS")?;
        let decimals: i32 = decimals.parse().context("--unit NAME=DECIMALS")?;
        Ok(Self(name.to_owned(), 10f64.powi(decimals)))
    }

    fn of(&self, amount: f64) -> f64 {
        amount / self.1
    }
}

fn read(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn optional(path: &Path) -> Result<Vec<Value>> {
    if path.exists() {
        Ok(vec![read(path)?])
    } else {
        Ok(Vec::new())
    }
}

/// Slots granted in the `pay` outputs of `NAME*.jsonl`.
fn slots(dir: &Path, name: &str) -> Result<u64> {
    let mut slots = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        if file.starts_with(name) && file.ends_with(".jsonl") {
            for line in std::fs::read_to_string(&path)?.lines() {
                let v: Value = serde_json::from_str(line)
                    .with_context(|| format!("{}: a line is not JSON", path.display()))?;
                slots += v["counters"].as_array().map_or(0, |c| c.len() as u64);
            }
        }
    }
    Ok(slots)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut dir, mut price, mut payee) = (None, None, None);
    let mut channels = Vec::new();
    let mut labels = BTreeMap::new();
    let mut unit = Unit("UNIT".into(), 1e12);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--price" => price = Some(value()?.parse::<u128>().context("--price")?),
            "--payee" => payee = Some(value()?),
            "--channel" => channels.push(value()?),
            "--label" => {
                let v = value()?;
                let (account, label) = v.split_once('=').context("--label ACCOUNT=LABEL")?;
                labels.insert(account.to_owned(), label.to_owned());
            }
            "--unit" => unit = Unit::parse(&value()?)?,
            other => bail!("unknown argument {other:?}"),
        }
    }
    let (dir, price, payee) = (
        dir.context("--dir")?,
        price.context("--price")?,
        payee.context("--payee")?,
    );
    let mut records = Vec::new();
    for spec in &channels {
        let mut parts = spec.splitn(3, ':');
        let (Some(name), Some(payer), Some(deposit)) = (parts.next(), parts.next(), parts.next())
        else {
            bail!("--channel NAME:PAYER:DEPOSIT, not {spec:?}");
        };
        records.push(ChannelRecord {
            name: name.to_owned(),
            payer: payer.to_owned(),
            deposit: deposit.parse().context("deposit")?,
            open: read(&dir.join(format!("open-{name}.json")))?,
            rotations: optional(&dir.join(format!("rotate-{name}.json")))?,
            settles: optional(&dir.join(format!("settle-{name}.json")))?,
            close: read(&dir.join(format!("close-{name}.json")))?,
            slots: slots(&dir, name)?,
        });
    }
    let s = statement(&records, price, &payee).map_err(anyhow::Error::msg)?;
    let (before, after) = (
        read(&dir.join("balances-before.json"))?,
        read(&dir.join("balances-after.json"))?,
    );
    let balance = |v: &Value, a: &str| -> Result<i128> {
        v[a].as_str()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no balance of {a}"))
    };
    let mut changes = BTreeMap::new();
    for account in s.expected.keys() {
        changes.insert(
            account.clone(),
            balance(&after, account)? - balance(&before, account)?,
        );
    }
    println!();
    println!(
        "{:<13}{:>8}{:>11}{:>7}{:>11}{:>11}{:>11}{:>11}  settled  rotation",
        "construction", "channel", "deposit", "slots", "AS got", "refund", "open fee", "close fee"
    );
    for c in &s.channels {
        println!(
            "{:<13}{:>8}{:>11.4}{:>7}{:>11.4}{:>11.4}{:>11.6}{:>11.6}  {:<8} {}",
            c.name,
            c.channel,
            unit.of(c.deposit as f64),
            c.slots,
            unit.of(c.as_got as f64),
            unit.of(c.refunded as f64),
            unit.of(c.fees.0 as f64),
            unit.of(c.fees.1 as f64),
            if c.settled { "yes" } else { "" },
            if c.rotated { "rotated" } else { "" },
        );
    }
    println!();
    println!(
        "{:<16}{:>24}{:>24}",
        "party",
        format!("balance change ({})", unit.0),
        "expected from events"
    );
    for (account, expected) in &s.expected {
        let label = labels.get(account).map_or(account.as_str(), String::as_str);
        println!(
            "{label:<16}{:>24.9}{:>24.9}",
            unit.of(changes[account] as f64),
            unit.of(*expected as f64)
        );
    }
    println!();
    let problems = s.against(&changes);
    if !problems.is_empty() {
        bail!("MISMATCH:\n  {}", problems.join("\n  "));
    }
    println!("every balance matches the chain to the unit (fees and storage deposits included)");
    Ok(())
}
