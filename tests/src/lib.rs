//! Cross-component end-to-end tests: filled in by its own issue.
