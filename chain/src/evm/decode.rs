//! What comes back from the contract: its refusals (a revert's data) by error name, and
//! its events (logs) as the interface's types.
use super::*;

/// The contract's refusal in a revert's data: an [`interface::Error`] where the ink!
/// contract has the same error, else the EVM contract's own error by name.
pub fn refusal(message: &'static str, data: &[u8]) -> ChainError {
    use Errors as E;
    let Ok(error) = Errors::abi_decode(data) else {
        return ChainError::Call {
            message,
            reason: format!("reverted with 0x{}", hex::encode(data)),
        };
    };
    let mapped = match &error {
        E::ChannelNotFound(_) => Error::ChannelNotFound,
        E::NotPayer(_) => Error::NotPayer,
        E::NotPayee(_) => Error::NotPayee,
        E::ZeroDeposit(_) => Error::ZeroDeposit,
        E::PayeeIsPayer(_) => Error::PayeeIsPayer,
        E::ExpiryNotInFuture(_) => Error::ExpiryNotInFuture,
        E::AccountAuthorityNotPayer(_) => Error::AccountAuthorityNotPayer,
        E::ChannelExpired(_) => Error::ChannelExpired,
        E::NotExpired(_) => Error::NotExpired,
        E::ExpiryNotLater(_) => Error::ExpiryNotLater,
        E::DepositOverflow(_) => Error::DepositOverflow,
        E::WrongEpoch(_) => Error::WrongEpoch,
        E::AmountExceedsDeposit(_) => Error::AmountExceedsDeposit,
        E::NothingToSettle(_) => Error::NothingToSettle,
        E::BelowSettled(_) => Error::BelowSettled,
        E::ChannelIdsExhausted(_) => Error::ChannelIdsExhausted,
        E::InvalidRecoveryId(_) => Error::InvalidRecoveryId,
        E::SignatureROutOfRange(_) => Error::SignatureROutOfRange,
        E::SignatureSOutOfRange(_) => Error::SignatureSOutOfRange,
        E::SignatureHighS(_) => Error::SignatureHighS,
        E::SignatureRecoveryFailed(_) => Error::SignatureRecoveryFailed,
        E::NotPayerAccount(_) => Error::NotPayerAccount,
        E::NotDelegate(_) => Error::NotDelegate,
        E::MissingProof(_) => Error::MissingProof,
        E::UnexpectedProof(_) => Error::UnexpectedProof,
        E::ProofTooLong(_) => Error::ProofTooLong,
        E::NonCanonicalProof(_) => Error::NonCanonicalProof,
        E::NotMember(_) => Error::NotMember,
        E::Revoked(_) => Error::Revoked,
        E::NothingToWithdraw(_) => Error::NothingToWithdraw,
        E::WithdrawFailed(_) => Error::WithdrawFailed,
        E::InvalidSignatureLength(_) => return evm_only(message, "InvalidSignatureLength"),
        E::InvalidAuthority(_) => return evm_only(message, "InvalidAuthority"),
        E::BlockNumberOverflow(_) => return evm_only(message, "BlockNumberOverflow"),
        E::Reentered(_) => return evm_only(message, "Reentered"),
    };
    ChainError::Refused {
        message,
        error: mapped,
    }
}

fn evm_only(message: &'static str, name: &str) -> ChainError {
    ChainError::Call {
        message,
        reason: format!("the EVM contract refused it: {name}"),
    }
}

/// A contract event of slotpay's in `log`, as the interface's type (`None`: not one).
pub fn decode_log(log: &Log) -> Option<Result<SlotpayEvent, ChainError>> {
    use SlotpayChannels as S;
    let topic = *log.topic0()?;
    let data = log.data();
    let e = |name: &'static str, err: alloy::sol_types::Error| ChainError::decode(name, err);
    Some(match topic {
        t if t == S::Opened::SIGNATURE_HASH => S::Opened::decode_log_data(data)
            .map_err(|x| e("Opened", x))
            .and_then(|o| {
                let authority = match o.authorityKind {
                    // The event names the payer's address; the protocol, its account.
                    0 => Authority::Account(account(o.payer)),
                    k => authority_from_evm(k, o.authorityValue)?,
                };
                Ok(SlotpayEvent::Opened(ev::Opened {
                    channel: ChannelId(o.channel),
                    payer: account(o.payer),
                    payee: account(o.payee),
                    authority,
                    deposit: o.deposit,
                    expires_at: o.expiresAt,
                    notice: o.notice,
                }))
            }),
        t if t == S::ToppedUp::SIGNATURE_HASH => S::ToppedUp::decode_log_data(data)
            .map_err(|x| e("ToppedUp", x))
            .map(|o| {
                SlotpayEvent::ToppedUp(ev::ToppedUp {
                    channel: ChannelId(o.channel),
                    deposit: o.deposit,
                })
            }),
        t if t == S::Extended::SIGNATURE_HASH => S::Extended::decode_log_data(data)
            .map_err(|x| e("Extended", x))
            .map(|o| {
                SlotpayEvent::Extended(ev::Extended {
                    channel: ChannelId(o.channel),
                    expires_at: o.expiresAt,
                })
            }),
        t if t == S::RotationAnnounced::SIGNATURE_HASH => {
            S::RotationAnnounced::decode_log_data(data)
                .map_err(|x| e("RotationAnnounced", x))
                .and_then(|o| {
                    Ok(SlotpayEvent::RotationAnnounced(ev::RotationAnnounced {
                        channel: ChannelId(o.channel),
                        authority: authority_from_evm(o.authorityKind, o.authorityValue)?,
                        epoch: o.epoch,
                        effective_at: o.effectiveAt,
                    }))
                })
        }
        t if t == S::Settled::SIGNATURE_HASH => S::Settled::decode_log_data(data)
            .map_err(|x| e("Settled", x))
            .map(|o| {
                SlotpayEvent::Settled(ev::Settled {
                    channel: ChannelId(o.channel),
                    epoch: o.epoch,
                    settled: o.settled,
                    paid: o.paid,
                })
            }),
        t if t == S::Closed::SIGNATURE_HASH => S::Closed::decode_log_data(data)
            .map_err(|x| e("Closed", x))
            .map(|o| {
                SlotpayEvent::Closed(ev::Closed {
                    channel: ChannelId(o.channel),
                    paid: o.paid,
                    refunded: o.refunded,
                })
            }),
        t if t == S::ExpiredClaimed::SIGNATURE_HASH => S::ExpiredClaimed::decode_log_data(data)
            .map_err(|x| e("ExpiredClaimed", x))
            .map(|o| {
                SlotpayEvent::ExpiredClaimed(ev::ExpiredClaimed {
                    channel: ChannelId(o.channel),
                    refunded: o.refunded,
                })
            }),
        t if t == S::PaymentDeferred::SIGNATURE_HASH => S::PaymentDeferred::decode_log_data(data)
            .map_err(|x| e("PaymentDeferred", x))
            .map(|o| {
                SlotpayEvent::PaymentDeferred(ev::PaymentDeferred {
                    account: account(o.account),
                    amount: o.amount,
                    owed: o.owed,
                })
            }),
        t if t == S::Withdrawn::SIGNATURE_HASH => S::Withdrawn::decode_log_data(data)
            .map_err(|x| e("Withdrawn", x))
            .map(|o| {
                SlotpayEvent::Withdrawn(ev::Withdrawn {
                    account: account(o.account),
                    amount: o.amount,
                })
            }),
        _ => return None,
    })
}
