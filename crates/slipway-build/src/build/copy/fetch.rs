//! ADD's remote files: an `http://` or `https://` URL downloaded to a temporary file, hashed
//! on the way, checked against `--checksum`.

use std::io::Write;
use std::path::Path;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::build::copy::CopyError;

/// A downloaded file.
#[derive(Debug)]
pub struct Download {
    /// The URL as written.
    pub url: String,
    /// The file's name: the URL path's last segment, percent-decoded.
    pub name: Option<String>,
    /// The bytes, removed when dropped.
    pub file: tempfile::NamedTempFile,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// `Last-Modified`, in seconds since the epoch (0 without one, for a reproducible layer).
    pub mtime: i64,
}

/// Whether ADD reads `source` from the network.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// Whether `source` is a git repository (ADD of git is not supported yet).
pub fn is_git(source: &str) -> bool {
    let base = source.split('#').next().unwrap_or(source);
    source.starts_with("git@")
        || source.starts_with("git://")
        || (is_url(source) && base.trim_end_matches('/').ends_with(".git"))
}

/// The sha256 hex that `--checksum=sha256:<hex>` asks for.
pub fn expected_sha256(flag: &str) -> Result<String, CopyError> {
    let bad = || CopyError::ChecksumFlag {
        value: flag.to_string(),
    };
    let hex = flag.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(hex.to_ascii_lowercase())
}

/// Downloads `url` into a temporary file in `tmp`, streaming, and checks `expected`.
pub async fn download(
    url: &str,
    tmp: &Path,
    expected: Option<&str>,
) -> Result<Download, CopyError> {
    let fail = |source| CopyError::Download {
        url: url.to_string(),
        source,
    };
    // The process-wide provider (aws-lc-rs) may already be installed by the registry code.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest_tls::Client::builder()
        .user_agent(concat!("slipway-build/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(fail)?;
    let response = client.get(url).send().await.map_err(fail)?;
    let status = response.status();
    if !status.is_success() {
        return Err(CopyError::HttpStatus {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    let mtime = response
        .headers()
        .get(reqwest_tls::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(0);
    let mut file = tempfile::Builder::new()
        .prefix("slipway-add-")
        .tempfile_in(tmp)
        .map_err(CopyError::TempFile)?;
    let mut hasher = Sha256::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(fail)?;
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(CopyError::TempFile)?;
    }
    file.flush().map_err(CopyError::TempFile)?;
    let sha256 = hex::encode(hasher.finalize());
    if let Some(expected) = expected
        && expected != sha256
    {
        return Err(CopyError::ChecksumMismatch {
            url: url.to_string(),
            expected: expected.to_string(),
            actual: sha256,
        });
    }
    Ok(Download {
        url: url.to_string(),
        name: file_name(url),
        file,
        sha256,
        mtime,
    })
}

/// The last segment of the URL's path, percent-decoded; `None` when there is none.
pub fn file_name(url: &str) -> Option<String> {
    let parsed = reqwest_tls::Url::parse(url).ok()?;
    // Like Go's path.Base, which Docker uses: trailing slashes do not count.
    let last = parsed.path_segments()?.rfind(|s| !s.is_empty())?;
    let name = percent_decode(last);
    (!name.is_empty() && name != "." && name != ".." && !name.contains('/')).then_some(name)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        assert_eq!(
            file_name("http://h/a/b.tar.gz?x=1").as_deref(),
            Some("b.tar.gz")
        );
        assert_eq!(file_name("https://h/a%20b.txt").as_deref(), Some("a b.txt"));
        assert_eq!(file_name("https://h/"), None);
        assert_eq!(file_name("https://h/dir/").as_deref(), Some("dir"));
        assert!(is_git("https://github.com/o/r.git#main"));
        assert!(is_git("git@github.com:o/r.git"));
        assert!(!is_git("https://h/r.tar.gz"));
    }

    #[test]
    fn checksum_flag_forms() {
        let hex = "a".repeat(64);
        assert_eq!(expected_sha256(&format!("sha256:{hex}")).ok(), Some(hex));
        assert!(expected_sha256("sha512:abc").is_err());
        assert!(expected_sha256("sha256:xyz").is_err());
    }
}
