//! The AS's refusals on the wire: one stable code each, with its HTTP status. The
//! protocol names why a receipt buys nothing ([`PurchaseError`]); this is where that
//! becomes a code an API client matches on, so the code table exists once, here.
use protocol::PurchaseError;
use serde::{Deserialize, Serialize};

/// A refusal's stable, machine-readable code (`snake_case` on the wire). Never renamed
/// once published; a code this build does not know decodes as [`ErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed JSON, hex or amount; unknown fields; a proof longer than 32.
    BadRequest,
    /// The signature is not the channel's authority's.
    Unauthorized,
    /// The channel pays another AS.
    WrongPayee,
    /// A retry of a sale by someone who did not make it (no matching request secret).
    NotTheBuyer,
    /// No open channel with this id.
    ChannelNotFound,
    /// The AS sells nothing for this device.
    UnknownDevice,
    /// The body or the answer took too long; a purchase may still be sold: retry it.
    RequestTimeout,
    /// Another member raised the running total first: sign above it.
    StaleTotal,
    /// The AS is closing the channel (or its planned close has come).
    ChannelClosing,
    /// The receipt adds a fraction of a slot.
    NotWholeSlots,
    /// More slots than one purchase buys.
    TooManySlots,
    /// Beyond what the deposit covers.
    ExceedsDeposit,
    /// A group member above its cap.
    OverCap,
    /// Too close to the channel's expiry.
    ChannelExpiring,
    /// Too close to a rotation of the channel's authority.
    RotationPending,
    /// The channel's rotation notice is shorter than the AS needs.
    NoticeTooShort,
    /// The receipt is for another authority epoch.
    WrongEpoch,
    /// The node did not answer.
    ChainUnavailable,
    /// Finality lags too far for the AS to trust its view of deposits.
    FinalityStalled,
    /// The AS cannot close more channels in time than it already must.
    ClosingCapacity,
    /// Something on the AS's side.
    Internal,
    /// A code this build does not know (a newer AS).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status it is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized | ErrorCode::WrongPayee | ErrorCode::NotTheBuyer => 403,
            ErrorCode::ChannelNotFound | ErrorCode::UnknownDevice => 404,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::StaleTotal => 409,
            ErrorCode::ChannelClosing => 410,
            ErrorCode::NotWholeSlots
            | ErrorCode::TooManySlots
            | ErrorCode::ExceedsDeposit
            | ErrorCode::OverCap
            | ErrorCode::ChannelExpiring
            | ErrorCode::RotationPending
            | ErrorCode::NoticeTooShort
            | ErrorCode::WrongEpoch => 422,
            ErrorCode::ChainUnavailable
            | ErrorCode::FinalityStalled
            | ErrorCode::ClosingCapacity => 503,
            ErrorCode::Internal | ErrorCode::Unknown => 500,
        }
    }

    /// Whether the same request may succeed if sent again unchanged (the AS or its chain
    /// was briefly unable to answer): a client retries these with the same receipt.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorCode::RequestTimeout
                | ErrorCode::ChainUnavailable
                | ErrorCode::FinalityStalled
                | ErrorCode::Internal
        )
    }

    /// The code as it appears on the wire (and in the AS's metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::WrongPayee => "wrong_payee",
            ErrorCode::NotTheBuyer => "not_the_buyer",
            ErrorCode::ChannelNotFound => "channel_not_found",
            ErrorCode::UnknownDevice => "unknown_device",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::StaleTotal => "stale_total",
            ErrorCode::ChannelClosing => "channel_closing",
            ErrorCode::NotWholeSlots => "not_whole_slots",
            ErrorCode::TooManySlots => "too_many_slots",
            ErrorCode::ExceedsDeposit => "exceeds_deposit",
            ErrorCode::OverCap => "over_cap",
            ErrorCode::ChannelExpiring => "channel_expiring",
            ErrorCode::RotationPending => "rotation_pending",
            ErrorCode::NoticeTooShort => "notice_too_short",
            ErrorCode::WrongEpoch => "wrong_epoch",
            ErrorCode::ChainUnavailable => "chain_unavailable",
            ErrorCode::FinalityStalled => "finality_stalled",
            ErrorCode::ClosingCapacity => "closing_capacity",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }

    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::WrongPayee,
        ErrorCode::NotTheBuyer,
        ErrorCode::ChannelNotFound,
        ErrorCode::UnknownDevice,
        ErrorCode::RequestTimeout,
        ErrorCode::StaleTotal,
        ErrorCode::ChannelClosing,
        ErrorCode::NotWholeSlots,
        ErrorCode::TooManySlots,
        ErrorCode::ExceedsDeposit,
        ErrorCode::OverCap,
        ErrorCode::ChannelExpiring,
        ErrorCode::RotationPending,
        ErrorCode::NoticeTooShort,
        ErrorCode::WrongEpoch,
        ErrorCode::ChainUnavailable,
        ErrorCode::FinalityStalled,
        ErrorCode::ClosingCapacity,
        ErrorCode::Internal,
        ErrorCode::Unknown,
    ];
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&PurchaseError> for ErrorCode {
    fn from(error: &PurchaseError) -> Self {
        match error {
            PurchaseError::ChannelNotFound => ErrorCode::ChannelNotFound,
            PurchaseError::WrongPayee => ErrorCode::WrongPayee,
            PurchaseError::NoticeTooShort { .. } => ErrorCode::NoticeTooShort,
            PurchaseError::ExpiringSoon { .. } => ErrorCode::ChannelExpiring,
            PurchaseError::RotationPending { .. } => ErrorCode::RotationPending,
            PurchaseError::WrongEpoch { .. } => ErrorCode::WrongEpoch,
            PurchaseError::StaleTotal { .. } => ErrorCode::StaleTotal,
            PurchaseError::NotWholeSlots { .. } => ErrorCode::NotWholeSlots,
            PurchaseError::TooManySlots { .. } => ErrorCode::TooManySlots,
            PurchaseError::ExceedsDeposit { .. } => ErrorCode::ExceedsDeposit,
            PurchaseError::OverCap { .. } => ErrorCode::OverCap,
            PurchaseError::Unauthorized(_) => ErrorCode::Unauthorized,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::AuthError;

    #[test]
    fn codes_are_their_serde_names_and_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
        // A newer AS's code does not break an older client.
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"from_the_future\"").unwrap(),
            ErrorCode::Unknown
        );
    }

    #[test]
    fn every_purchase_refusal_has_its_published_code_and_status() {
        let cases = [
            (PurchaseError::ChannelNotFound, "channel_not_found", 404),
            (PurchaseError::WrongPayee, "wrong_payee", 403),
            (
                PurchaseError::NoticeTooShort { notice: 0, min: 0 },
                "notice_too_short",
                422,
            ),
            (
                PurchaseError::ExpiringSoon {
                    expires_at: 0,
                    now: 0,
                    margin: 0,
                },
                "channel_expiring",
                422,
            ),
            (
                PurchaseError::RotationPending { effective_at: 0 },
                "rotation_pending",
                422,
            ),
            (
                PurchaseError::WrongEpoch {
                    claimed: 0,
                    current: 0,
                },
                "wrong_epoch",
                422,
            ),
            (
                PurchaseError::StaleTotal { current_total: 0 },
                "stale_total",
                409,
            ),
            (
                PurchaseError::NotWholeSlots { added: 0, price: 0 },
                "not_whole_slots",
                422,
            ),
            (
                PurchaseError::TooManySlots { slots: 0, max: 0 },
                "too_many_slots",
                422,
            ),
            (
                PurchaseError::ExceedsDeposit { limit: 0 },
                "exceeds_deposit",
                422,
            ),
            (
                PurchaseError::OverCap {
                    cap: 0,
                    would_spend: 0,
                },
                "over_cap",
                422,
            ),
            (
                PurchaseError::Unauthorized(AuthError::Revoked),
                "unauthorized",
                403,
            ),
        ];
        for (error, code, status) in cases {
            let mapped = ErrorCode::from(&error);
            assert_eq!(
                (mapped.as_str(), mapped.status()),
                (code, status),
                "{error:?}"
            );
        }
    }
}
