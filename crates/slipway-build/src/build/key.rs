//! Cache keys: a chain in the spirit of Kaniko's, each the hash of the previous key and what
//! the instruction depends on (its resolved form, the environment it sees, the digests of the
//! files it copies).

use sha2::{Digest as _, Sha256};

use crate::image::{Image, Platform};

/// One link of the chain: a hex sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key(String);

/// Bumped when the meaning of a cached layer changes, so old entries are never reused.
const VERSION: &str = "slipway-build-cache-1";

impl Key {
    /// The chain's start: the base image's layers and config, and the platform.
    pub(crate) fn start(image: &Image, platform: &Platform) -> Self {
        let mut h = Sha256::new();
        h.update(VERSION);
        h.update(format!("{platform:?}"));
        for l in &image.layers {
            h.update(l.diff_id.0.as_bytes());
        }
        h.update(serde_json::to_vec(&image.config.config).unwrap_or_default());
        Self(hex::encode(h.finalize()))
    }

    /// The next link from the parts an instruction depends on.
    pub(crate) fn next(&self, parts: &[&str]) -> Self {
        let mut h = Sha256::new();
        h.update(self.0.as_bytes());
        for p in parts {
            // Lengths keep ["ab", "c"] and ["a", "bc"] apart.
            h.update((p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        Self(hex::encode(h.finalize()))
    }

    /// The key as the store indexes it.
    pub(crate) fn hex(&self) -> &str {
        &self.0
    }
}

/// Seconds since the epoch (0 if the clock is before it).
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_delimited_and_order_matters() {
        let k = Key("0".into());
        assert_ne!(k.next(&["ab", "c"]), k.next(&["a", "bc"]));
        assert_ne!(k.next(&["a"]).next(&["b"]), k.next(&["b"]).next(&["a"]));
        assert_eq!(k.next(&["x"]), k.next(&["x"]));
    }
}
