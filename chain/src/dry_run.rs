//! `ContractsApi_call` and `ContractsApi_instantiate` dry runs: arguments encoded and
//! results decoded through the node's metadata (field names, not byte offsets), and a
//! failed dispatch named by its pallet error.
use crate::node::Api;
use crate::{BlockHash, ChainError};
use protocol::{AccountId32, Balance};
use subxt::dynamic::{At, Value};
use subxt::ext::scale_decode::DecodeAsType;
use subxt::ext::scale_value::ValueDef;

/// A weight as pallet-contracts reports and takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub struct Weight {
    /// Computation time, in picoseconds of reference hardware.
    pub ref_time: u64,
    /// Bytes of storage proof the call needs (for parachain validation).
    pub proof_size: u64,
}

impl Weight {
    /// The weight as a dynamic value, for a `gas_limit` argument.
    pub fn value(&self) -> Value {
        Value::named_composite([
            ("ref_time", Value::u128(self.ref_time.into())),
            ("proof_size", Value::u128(self.proof_size.into())),
        ])
    }

    /// The gas limit of a real call: the dry run's requirement doubled, as headroom for
    /// state that moves between the dry run and inclusion.
    pub fn with_headroom(&self) -> Weight {
        Weight {
            ref_time: self.ref_time.saturating_mul(2),
            proof_size: self.proof_size.saturating_mul(2),
        }
    }
}

/// What a dry run reports.
#[derive(Debug, Clone)]
pub struct RawDryRun {
    /// The weight the dry run used.
    pub gas_consumed: Weight,
    /// The gas limit the call needs to succeed (may exceed `gas_consumed`).
    pub gas_required: Weight,
    /// Storage deposit charged (positive) or refunded (negative) to the origin.
    pub storage_deposit: i128,
    /// `Ok((flags, data))` when the call ran; `Err(pallet error name)` when it did not.
    pub result: Result<(u32, Vec<u8>), String>,
}

fn bytes_of(value: &Value<u32>) -> Option<Vec<u8>> {
    match &value.value {
        ValueDef::Composite(c) => c
            .values()
            .map(|v| v.as_u128().and_then(|b| u8::try_from(b).ok()))
            .collect(),
        _ => None,
    }
}

/// The pallet error behind a `DispatchError`, by name, from the metadata.
fn dispatch_error(api: &Api, error: &Value<u32>) -> String {
    let ValueDef::Variant(v) = &error.value else {
        return format!("{error}");
    };
    if v.name == "Module" {
        let module = v.values.values().next();
        let index = module
            .and_then(|m| m.at("index"))
            .and_then(|i| i.as_u128())
            .and_then(|i| u8::try_from(i).ok());
        let code = module.and_then(|m| m.at("error")).and_then(bytes_of);
        if let (Some(index), Some(code)) = (index, code) {
            let metadata = api.metadata();
            if let Some(pallet) = metadata.pallet_by_index(index) {
                if let Some(variant) = code.first().and_then(|c| pallet.error_variant_by_index(*c))
                {
                    return format!("{}::{}", pallet.name(), variant.name);
                }
            }
        }
    }
    format!("{error}")
}

fn decode_outcome(api: &Api, what: &str, value: &Value<u32>) -> Result<RawDryRun, ChainError> {
    let bad = |reason: &str| ChainError::decode(what, reason);
    let weight = |name: &str| -> Result<Weight, ChainError> {
        let w = value.at(name).ok_or_else(|| bad(name))?;
        let field = |f: &str| {
            w.at(f)
                .and_then(|v| v.as_u128())
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(|| bad(f))
        };
        Ok(Weight {
            ref_time: field("ref_time")?,
            proof_size: field("proof_size")?,
        })
    };
    let storage_deposit = match value.at("storage_deposit").map(|v| &v.value) {
        Some(ValueDef::Variant(v)) => {
            let amount = v
                .values
                .values()
                .next()
                .and_then(|a| a.as_u128())
                .ok_or_else(|| bad("storage_deposit"))?;
            let amount = i128::try_from(amount).map_err(|_| bad("storage_deposit"))?;
            if v.name == "Refund" {
                -amount
            } else {
                amount
            }
        }
        _ => return Err(bad("storage_deposit")),
    };
    let ValueDef::Variant(result) = &value.at("result").ok_or_else(|| bad("result"))?.value else {
        return Err(bad("result"));
    };
    let inner = result.values.values().next().ok_or_else(|| bad("result"))?;
    let result = if result.name == "Ok" {
        // A call returns ExecReturnValue; an instantiation wraps it with the account.
        let exec = inner.at("result").unwrap_or(inner);
        let flags = exec
            .at("flags")
            .and_then(|f| f.at("bits").or(Some(f)))
            .and_then(|b| b.as_u128())
            .and_then(|b| u32::try_from(b).ok())
            .ok_or_else(|| bad("flags"))?;
        let data = exec
            .at("data")
            .and_then(bytes_of)
            .ok_or_else(|| bad("data"))?;
        Ok((flags, data))
    } else {
        Err(dispatch_error(api, inner))
    };
    Ok(RawDryRun {
        gas_consumed: weight("gas_consumed")?,
        gas_required: weight("gas_required")?,
        storage_deposit,
        result,
    })
}

fn none() -> Value {
    Value::unnamed_variant("None", [])
}

/// Dry-runs a call of `contract` with `input` as `origin` sending `value`, at block `at`.
pub async fn call(
    api: &Api,
    at: BlockHash,
    origin: AccountId32,
    contract: AccountId32,
    value: Balance,
    input: Vec<u8>,
) -> Result<RawDryRun, ChainError> {
    let payload = subxt::dynamic::runtime_api_call(
        "ContractsApi",
        "call",
        vec![
            Value::from_bytes(origin),
            Value::from_bytes(contract),
            Value::u128(value),
            none(),
            none(),
            Value::from_bytes(input),
        ],
    );
    let thunk = api.runtime_api().at(at).call(payload).await?;
    let value = thunk
        .to_value()
        .map_err(|e| ChainError::decode("ContractsApi_call", e))?;
    decode_outcome(api, "ContractsApi_call", &value)
}

/// The code an instantiation runs: uploaded with it, or already on chain by hash.
#[derive(Debug, Clone, Copy)]
pub enum Code<'a> {
    /// This Wasm, uploaded with the instantiation.
    Upload(&'a [u8]),
    /// Code already on chain, by its blake2_256 hash.
    Existing([u8; 32]),
}

/// Dry-runs instantiating `code` with `input` (constructor selector and arguments) and
/// `salt`, as `origin` sending `value`.
pub async fn instantiate(
    api: &Api,
    at: BlockHash,
    origin: AccountId32,
    value: Balance,
    code: Code<'_>,
    input: Vec<u8>,
    salt: &[u8],
) -> Result<RawDryRun, ChainError> {
    let code = match code {
        Code::Upload(wasm) => Value::unnamed_variant("Upload", [Value::from_bytes(wasm)]),
        Code::Existing(hash) => Value::unnamed_variant("Existing", [Value::from_bytes(hash)]),
    };
    let payload = subxt::dynamic::runtime_api_call(
        "ContractsApi",
        "instantiate",
        vec![
            Value::from_bytes(origin),
            Value::u128(value),
            none(),
            none(),
            code,
            Value::from_bytes(input),
            Value::from_bytes(salt),
        ],
    );
    let thunk = api.runtime_api().at(at).call(payload).await?;
    let value = thunk
        .to_value()
        .map_err(|e| ChainError::decode("ContractsApi_instantiate", e))?;
    decode_outcome(api, "ContractsApi_instantiate", &value)
}
