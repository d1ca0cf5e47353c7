//! Checks (STUB).
