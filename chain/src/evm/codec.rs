//! The ABI encodings: authorities, channels and proofs to and from the contract's types,
//! each message's call data and answer, refusals by the contract's error names, events.
use super::*;

pub(super) fn address_of(account: &AccountId32) -> Result<Address, ChainError> {
    evm_address(account).map(Address::from).ok_or_else(|| {
        ChainError::Other(format!(
            "0x{} is not an EVM account (an address followed by 12 bytes of 0xEE)",
            hex::encode(account)
        ))
    })
}

pub(super) fn account(address: Address) -> AccountId32 {
    evm_account(&address.0 .0)
}

/// The contract's encoding of an authority, or why it has none (an `Account` that is not
/// an EVM account).
pub fn authority_to_evm(authority: &Authority) -> Result<SlotpayChannels::Authority, ChainError> {
    let padded = |a: &AccountId32| -> Result<B256, ChainError> {
        let mut word = [0u8; 32];
        word[12..].copy_from_slice(&address_of(a)?.0 .0);
        Ok(B256::from(word))
    };
    let (kind, value) = match authority {
        Authority::Account(a) => (0, padded(a)?),
        Authority::Delegate(key) => {
            let address = protocol::evm_address_of::<protocol::crypto::backend::SoftHasher>(key)
                .ok_or_else(|| ChainError::Other("the delegate is not a secp256k1 key".into()))?;
            (1, padded(&evm_account(&address))?)
        }
        Authority::DelegateAccount(a) => (1, padded(a)?),
        Authority::Group(root) => (2, B256::from(root.0)),
        Authority::Revoked => (3, B256::ZERO),
    };
    Ok(SlotpayChannels::Authority { kind, value })
}

/// An authority as the contract states it (`payer` for an `Account` whose value is
/// absent), in the protocol's terms: a delegate is named by its account.
pub fn authority_from_evm(kind: u8, value: B256) -> Result<Authority, ChainError> {
    let address = || {
        let mut a = [0u8; 20];
        a.copy_from_slice(&value.0[12..]);
        evm_account(&a)
    };
    match kind {
        0 => Ok(Authority::Account(address())),
        1 => Ok(Authority::DelegateAccount(address())),
        2 => Ok(Authority::Group(MerkleRoot(value.0))),
        3 => Ok(Authority::Revoked),
        k => Err(ChainError::decode("authority", format!("kind {k}"))),
    }
}

pub(super) fn channel_from_evm(c: SlotpayChannels::Channel) -> Result<Option<Channel>, ChainError> {
    if c.payer == Address::ZERO {
        return Ok(None);
    }
    Ok(Some(Channel {
        payer: account(c.payer),
        payee: account(c.payee),
        authority: authority_from_evm(c.authority.kind, c.authority.value)?,
        epoch: c.epoch,
        deposit: c.deposit,
        settled: c.settled,
        base: c.base,
        expires_at: c.expiresAt,
        notice: c.notice,
        rotation: if c.rotationPending {
            Some(Rotation {
                authority: authority_from_evm(c.rotationAuthority.kind, c.rotationAuthority.value)?,
                effective_at: c.rotationEffectiveAt,
            })
        } else {
            None
        },
    }))
}

fn proof_to_evm(p: &protocol::MembershipProof) -> SlotpayChannels::MembershipProof {
    SlotpayChannels::MembershipProof {
        cap: p.cap,
        leftSiblings: p.left_siblings,
        siblings: p.siblings.iter().map(|s| B256::from(*s)).collect(),
    }
}

/// The call data of settling with `signed` (a group member's receipt goes to
/// `settleMember`).
pub fn settle_data(signed: &SignedReceipt) -> Vec<u8> {
    let r = &signed.receipt;
    let signature = Bytes::copy_from_slice(&signed.signature.0);
    match &signed.proof {
        Some(proof) => SlotpayChannels::settleMemberCall {
            id: r.channel.0,
            epoch: r.epoch,
            amount: r.amount,
            signature,
            proof: proof_to_evm(proof),
        }
        .abi_encode(),
        None => SlotpayChannels::settleCall {
            id: r.channel.0,
            epoch: r.epoch,
            amount: r.amount,
            signature,
        }
        .abi_encode(),
    }
}

/// The call data of closing `channel` with `signed`, or at what was settled.
pub fn close_data(channel: ChannelId, signed: Option<&SignedReceipt>) -> Vec<u8> {
    let Some(signed) = signed else {
        return SlotpayChannels::closeSettledCall { id: channel.0 }.abi_encode();
    };
    let r = &signed.receipt;
    let signature = Bytes::copy_from_slice(&signed.signature.0);
    match &signed.proof {
        Some(proof) => SlotpayChannels::closeMemberCall {
            id: channel.0,
            epoch: r.epoch,
            amount: r.amount,
            signature,
            proof: proof_to_evm(proof),
        }
        .abi_encode(),
        None => SlotpayChannels::closeCall {
            id: channel.0,
            epoch: r.epoch,
            amount: r.amount,
            signature,
        }
        .abi_encode(),
    }
}

/// An interface message as an EVM call: its call data (or why the EVM contract cannot
/// take it), and how to read its answer.
pub trait EvmMessage: messages::Message {
    /// What the message answers.
    type Value;
    /// The call data.
    fn evm_data(&self) -> Result<Vec<u8>, ChainError>;
    /// The answer, from the call's return data.
    fn evm_value(data: &[u8]) -> Result<Self::Value, ChainError>;
}

pub(super) fn decoded<T>(
    what: &'static str,
    r: Result<T, alloy::sol_types::Error>,
) -> Result<T, ChainError> {
    r.map_err(|e| ChainError::decode(what, e))
}

impl EvmMessage for messages::Open {
    type Value = ChannelId;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::openCall {
            payee: address_of(&self.payee)?,
            authority: authority_to_evm(&self.authority)?,
            expiresAt: self.expires_at,
            notice: self.notice,
        }
        .abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<ChannelId, ChainError> {
        decoded("open", SlotpayChannels::openCall::abi_decode_returns(data)).map(ChannelId)
    }
}

impl EvmMessage for messages::TopUp {
    type Value = ();
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::topUpCall { id: self.channel.0 }.abi_encode())
    }
    fn evm_value(_: &[u8]) -> Result<(), ChainError> {
        Ok(())
    }
}

impl EvmMessage for messages::Extend {
    type Value = ();
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::extendCall {
            id: self.channel.0,
            expiresAt: self.expires_at,
        }
        .abi_encode())
    }
    fn evm_value(_: &[u8]) -> Result<(), ChainError> {
        Ok(())
    }
}

impl EvmMessage for messages::Rotate {
    type Value = u32;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::rotateCall {
            id: self.channel.0,
            authority: authority_to_evm(&self.authority)?,
        }
        .abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<u32, ChainError> {
        decoded(
            "rotate",
            SlotpayChannels::rotateCall::abi_decode_returns(data),
        )
    }
}

impl EvmMessage for messages::ClaimExpired {
    type Value = ();
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::claimExpiredCall { id: self.channel.0 }.abi_encode())
    }
    fn evm_value(_: &[u8]) -> Result<(), ChainError> {
        Ok(())
    }
}

impl EvmMessage for messages::Withdraw {
    type Value = Balance;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::withdrawCall {}.abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<Balance, ChainError> {
        decoded(
            "withdraw",
            SlotpayChannels::withdrawCall::abi_decode_returns(data),
        )
    }
}

impl EvmMessage for messages::Settle {
    type Value = Balance;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(settle_data(&self.receipt))
    }
    fn evm_value(data: &[u8]) -> Result<Balance, ChainError> {
        // settle and settleMember answer the same uint128.
        decoded(
            "settle",
            SlotpayChannels::settleCall::abi_decode_returns(data),
        )
    }
}

impl EvmMessage for messages::Close {
    type Value = ();
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        if let Some(r) = &self.receipt {
            if r.receipt.channel != self.channel {
                return Err(ChainError::Refused {
                    message: "close",
                    error: Error::WrongChannel,
                });
            }
        }
        Ok(close_data(self.channel, self.receipt.as_ref()))
    }
    fn evm_value(_: &[u8]) -> Result<(), ChainError> {
        Ok(())
    }
}

impl EvmMessage for messages::GetChannel {
    type Value = Option<Channel>;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::channelCall { id: self.channel.0 }.abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<Option<Channel>, ChainError> {
        channel_from_evm(decoded(
            "channel",
            SlotpayChannels::channelCall::abi_decode_returns(data),
        )?)
    }
}

impl EvmMessage for messages::Owed {
    type Value = Balance;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::owedCall {
            account: address_of(&self.account)?,
        }
        .abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<Balance, ChainError> {
        decoded("owed", SlotpayChannels::owedCall::abi_decode_returns(data))
    }
}

impl EvmMessage for messages::NextChannelId {
    type Value = ChannelId;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::nextChannelIdCall {}.abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<ChannelId, ChainError> {
        decoded(
            "next_channel_id",
            SlotpayChannels::nextChannelIdCall::abi_decode_returns(data),
        )
        .map(ChannelId)
    }
}
