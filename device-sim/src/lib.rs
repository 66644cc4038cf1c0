//! The slotpay device core and CoAP simulator (issue 5): filled in by its own issue.
