//! The one balance check, used by the demo (`slotpay-balance-check`) and the whole-system
//! tests: from what each command reported (the deposit it moved, its fee and storage
//! deposits, what a close or settle paid and refunded), what each party's balance must
//! have moved by, to the unit, and whether the chain agrees.
use serde_json::Value;
use std::collections::BTreeMap;

/// One channel's life as its commands reported it (their `--json` outputs).
#[derive(Debug, Clone)]
pub struct ChannelRecord {
    /// A name for the table.
    pub name: String,
    /// The payer's account (SS58), as `slotpay balance` names it.
    pub payer: String,
    /// What the payer deposited at open.
    pub deposit: u128,
    /// `slotpay open`'s output.
    pub open: Value,
    /// `slotpay rotate`'s outputs (the payer's).
    pub rotations: Vec<Value>,
    /// `slotpay-as settle`'s outputs (the AS's).
    pub settles: Vec<Value>,
    /// `slotpay-as close`'s output.
    pub close: Value,
    /// Slots the clients were granted on it.
    pub slots: u64,
}

fn amount(v: &Value, field: &str) -> Result<i128, String> {
    v[field]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no decimal {field:?} in {v}"))
}

/// What a transaction cost its signer beyond the value it moved: its fee and the storage
/// deposit it put on hold, less what it got back.
pub fn cost(v: &Value) -> Result<i128, String> {
    Ok(amount(v, "fee")? + amount(v, "storage_deposit_held")?
        - amount(v, "storage_deposit_released")?)
}

/// A row of the table: what the channel moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelLine {
    /// The channel's name.
    pub name: String,
    /// Its id.
    pub channel: u64,
    /// The deposit.
    pub deposit: u128,
    /// Slots granted.
    pub slots: u64,
    /// What the AS got in all (settles and the close).
    pub as_got: i128,
    /// The payer's refund.
    pub refunded: i128,
    /// The open's and the close's fees.
    pub fees: (i128, i128),
    /// Whether it was settled before its close, and rotated.
    pub settled: bool,
    /// Whether its authority was rotated.
    pub rotated: bool,
}

/// The check's result: per channel, and per party (expected change).
#[derive(Debug, Clone, Default)]
pub struct Statement {
    /// One line per channel.
    pub channels: Vec<ChannelLine>,
    /// What each account's balance must have moved by.
    pub expected: BTreeMap<String, i128>,
    /// Disagreements among the commands' own reports (the AS paid other than sold,
    /// paid + refunded other than the deposit).
    pub problems: Vec<String>,
}

/// What every party's balance must have moved by, given the channels' records, the price
/// of a slot and the AS's account.
pub fn statement(records: &[ChannelRecord], price: u128, payee: &str) -> Result<Statement, String> {
    let mut out = Statement::default();
    for r in records {
        let refunded = amount(&r.close, "refunded")?;
        let settled_paid: i128 = r
            .settles
            .iter()
            .map(|s| amount(s, "paid"))
            .sum::<Result<_, _>>()?;
        let as_got = amount(&r.close, "paid")? + settled_paid;
        let sold = i128::try_from(u128::from(r.slots) * price).map_err(|e| e.to_string())?;
        let deposit = i128::try_from(r.deposit).map_err(|e| e.to_string())?;
        if as_got != sold {
            out.problems.push(format!(
                "{}: the AS got {as_got} but clients were granted {sold}",
                r.name
            ));
        }
        if as_got + refunded != deposit {
            out.problems.push(format!(
                "{}: paid + refunded = {} != deposit {deposit}",
                r.name,
                as_got + refunded
            ));
        }
        let rotations: i128 = r.rotations.iter().map(cost).sum::<Result<_, _>>()?;
        let settle_costs: i128 = r.settles.iter().map(cost).sum::<Result<_, _>>()?;
        *out.expected.entry(r.payer.clone()).or_default() +=
            -deposit - cost(&r.open)? + refunded - rotations;
        *out.expected.entry(payee.to_owned()).or_default() +=
            as_got - cost(&r.close)? - settle_costs;
        out.channels.push(ChannelLine {
            name: r.name.clone(),
            channel: r.open["channel"]
                .as_u64()
                .ok_or("no channel id in the open")?,
            deposit: r.deposit,
            slots: r.slots,
            as_got,
            refunded,
            fees: (amount(&r.open, "fee")?, amount(&r.close, "fee")?),
            settled: !r.settles.is_empty(),
            rotated: !r.rotations.is_empty(),
        });
    }
    Ok(out)
}

impl Statement {
    /// Compares the balances' actual changes with the expected ones: the disagreements,
    /// empty when every balance matches to the unit.
    pub fn against(&self, changes: &BTreeMap<String, i128>) -> Vec<String> {
        let mut problems = self.problems.clone();
        for (account, expected) in &self.expected {
            let actual = changes.get(account).copied().unwrap_or(0);
            if actual != *expected {
                problems.push(format!(
                    "{account}: balance moved {actual}, expected {expected}"
                ));
            }
        }
        problems
    }
}
