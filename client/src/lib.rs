//! The slotpay client CLI (issue 5): filled in by its own issue.
