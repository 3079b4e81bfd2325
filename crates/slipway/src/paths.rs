//! Where slipway keeps its data.

use std::path::PathBuf;

/// `--data-dir`/`$SLIPWAY_HOME`, else `$XDG_DATA_HOME/slipway`, else `~/.local/share/slipway`.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    if let Some(d) = flag {
        return d;
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("slipway");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/slipway"),
        None => PathBuf::from(".slipway-data"),
    }
}
