//! The config file (TOML): any text must parse or fail with a line and column, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway::config::{ConfigError, parse_file};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(ConfigError::Invalid { line, col, .. }) =
        parse_file(std::path::Path::new("config.toml"), text)
    {
        assert!(line >= 1 && col >= 1);
    }
});
