//! The slotpay Authorization Server (issue 5): filled in by its own issue.
