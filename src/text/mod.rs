//! Text the relay writes without `{:?}`: the MIPS builds drop `Debug` formatting
//! (`-Z fmt-debug=none`), so durations and figures (`decimal`) and client-supplied text
//! (`quoted`) have writers of their own. Used by every layer; uses nothing of the relay.
pub mod decimal;
pub mod host_name;
pub mod json;
pub mod quoted;
