//! Design notes (placeholder).
