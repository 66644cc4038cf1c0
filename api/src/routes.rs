//! Where the AS serves what: the one list of its routes, used by its router, the
//! [`crate::AsClient`], the tests and the benchmark.
use protocol::ChannelId;

/// `GET`: [`crate::TermsReply`].
pub const TERMS: &str = "/v1/terms";
/// `GET` with the channel id in place of `{id}`: [`crate::ChannelReply`].
pub const CHANNEL: &str = "/v1/channels/{id}";
/// `POST` a [`crate::PurchaseBody`]: [`crate::PurchaseReply`].
pub const PURCHASE: &str = "/v1/purchase";
/// `GET`: Prometheus text.
pub const METRICS: &str = "/metrics";

/// [`CHANNEL`] for `id`.
pub fn channel(id: ChannelId) -> String {
    CHANNEL.replace("{id}", &id.0.to_string())
}
