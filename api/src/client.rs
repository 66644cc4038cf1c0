//! A blocking client of the AS's API (feature `client`): what the `slotpay` CLI, the
//! tests and the benchmark talk to an AS through. It decodes answers into the wire
//! types and refusals into [`ApiError`] with its [`ErrorCode`]; it decides nothing.
use crate::error::ErrorCode;
use crate::routes;
use crate::wire::{ApiError, ChannelReply, PurchaseBody, PurchaseReply, TermsReply};
use protocol::ChannelId;
use std::time::Duration;

/// What went wrong asking the AS.
#[derive(Debug, thiserror::Error)]
pub enum AsClientError {
    /// The AS answered with a refusal it explained.
    #[error("the AS refused ({status} {}): {}", .error.code, .error.message)]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The refusal.
        error: Box<ApiError>,
    },
    /// The AS answered a status without an explanation (a proxy, a body limit).
    #[error("HTTP {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, as far as it was text.
        body: String,
    },
    /// No answer: the connection failed or timed out.
    #[error("no answer from the AS: {0}")]
    Transport(String),
    /// An answer that is not what the route returns.
    #[error("the AS's answer does not decode: {0}")]
    Decode(String),
}

impl AsClientError {
    /// The refusal's code, if the AS gave one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            AsClientError::Refused { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// Whether the same request may succeed unchanged later: no answer at all, or a
    /// refusal the AS calls transient ([`ErrorCode::is_transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            AsClientError::Transport(_) => true,
            AsClientError::Refused { error, .. } => error.code.is_transient(),
            AsClientError::Status { status, .. } => *status == 408 || *status >= 502,
            AsClientError::Decode(_) => false,
        }
    }
}

/// A client of one AS.
#[derive(Debug, Clone)]
pub struct AsClient {
    base: String,
    agent: ureq::Agent,
}

impl AsClient {
    /// A client of the AS at `base_url` (e.g. `http://127.0.0.1:8700`), waiting at most
    /// `timeout` for any one answer.
    pub fn new(base_url: &str, timeout: Duration) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_owned(),
            agent: ureq::AgentBuilder::new().timeout(timeout).build(),
        }
    }

    /// The AS's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET` [`routes::TERMS`].
    pub fn terms(&self) -> Result<TermsReply, AsClientError> {
        answer(
            self.agent
                .get(&format!("{}{}", self.base, routes::TERMS))
                .call(),
        )
    }

    /// `GET` [`routes::CHANNEL`].
    pub fn channel(&self, id: ChannelId) -> Result<ChannelReply, AsClientError> {
        answer(
            self.agent
                .get(&format!("{}{}", self.base, routes::channel(id)))
                .call(),
        )
    }

    /// `POST` [`routes::PURCHASE`].
    pub fn purchase(&self, body: &PurchaseBody) -> Result<PurchaseReply, AsClientError> {
        answer(
            self.agent
                .post(&format!("{}{}", self.base, routes::PURCHASE))
                .send_json(body),
        )
    }
}

fn answer<T: serde::de::DeserializeOwned>(
    sent: Result<ureq::Response, ureq::Error>,
) -> Result<T, AsClientError> {
    match sent {
        Ok(response) => response
            .into_json()
            .map_err(|e| AsClientError::Decode(e.to_string())),
        Err(ureq::Error::Status(status, response)) => {
            let body = response.into_string().unwrap_or_default();
            match serde_json::from_str::<ApiError>(&body) {
                Ok(error) => Err(AsClientError::Refused {
                    status,
                    error: Box::new(error),
                }),
                Err(_) => Err(AsClientError::Status { status, body }),
            }
        }
        Err(e) => Err(AsClientError::Transport(e.to_string())),
    }
}
