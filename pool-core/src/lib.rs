//! pool-core: the deterministic scheduling engine of opspool.
pub mod class;
pub mod outcome;
pub mod time;
