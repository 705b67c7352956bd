//! Text.
pub mod decimal;
pub mod quoted;
