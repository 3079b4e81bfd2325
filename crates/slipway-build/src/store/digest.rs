//! `sha256:<hex>` content digests.

use sha2::{Digest as _, Sha256};

use crate::store::StoreError;

/// A `sha256:<hex>` digest.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Digest(pub String);

/// The only algorithm the store keeps blobs under.
const PREFIX: &str = "sha256:";

impl Digest {
    /// The hex part (what blob file names are).
    pub fn hex(&self) -> &str {
        self.0.strip_prefix(PREFIX).unwrap_or(&self.0)
    }

    /// The digest of `b`.
    pub fn of_bytes(b: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(b))
    }

    /// The digest a finished hasher holds.
    pub fn from_hasher(hasher: Sha256) -> Digest {
        Digest(format!("{PREFIX}{}", hex::encode(hasher.finalize())))
    }

    /// Parses `sha256:` followed by 64 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Digest, StoreError> {
        match s.strip_prefix(PREFIX) {
            Some(h) if is_sha256_hex(h) => Ok(Digest(s.to_string())),
            _ => Err(StoreError::BadDigest {
                text: s.chars().take(80).collect(),
            }),
        }
    }
}

/// True for 64 lowercase hex digits (a sha256 as file names and cache keys spell it).
pub fn is_sha256_hex(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn of_bytes_is_sha256() {
        let d = Digest::of_bytes(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.hex().len(), 64);
        assert_eq!(Digest::parse(&d.0).ok(), Some(d));
    }

    #[test]
    fn parse_refuses_other_shapes() {
        for bad in [
            "",
            "sha256:",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../../../etc/passwd",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    proptest! {
        #[test]
        fn parse_accepts_only_hex_that_stays_a_file_name(s in "sha256:[0-9a-z./]{0,70}") {
            if let Ok(d) = Digest::parse(&s) {
                prop_assert!(is_sha256_hex(d.hex()));
                prop_assert_eq!(d.to_string(), s);
            }
        }
    }
}
