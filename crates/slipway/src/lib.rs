//! What of the `slipway` binary is worth using (and fuzzing) as a library: the config file.

pub mod config;
