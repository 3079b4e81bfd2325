//! Extended attributes of a path itself (never following a final symlink), through libc.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

fn c_path(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

fn c_name(n: &OsStr) -> std::io::Result<CString> {
    CString::new(n.as_bytes()).map_err(std::io::Error::other)
}

/// True for errors meaning "this file system or file has no such attributes".
fn unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTSUP) | Some(libc::ENODATA) | Some(libc::EPERM)
    )
}

/// The names of `p`'s extended attributes (empty where the file system has none).
pub fn list(p: &Path) -> std::io::Result<Vec<OsString>> {
    let cp = c_path(p)?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `cp` is NUL-terminated and `buf` is valid for `buf.len()` bytes.
        let n = unsafe { libc::llistxattr(cp.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n.unsigned_abs());
            return Ok(buf
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| OsString::from_vec(s.to_vec()))
                .collect());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            _ if unsupported(&e) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    }
}

/// The value of `name` on `p`, `None` when absent.
pub fn get(p: &Path, name: &OsStr) -> std::io::Result<Option<Vec<u8>>> {
    let (cp, cn) = (c_path(p)?, c_name(name)?);
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: both strings are NUL-terminated and `buf` is valid for `buf.len()` bytes.
        let n = unsafe {
            libc::lgetxattr(cp.as_ptr(), cn.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        if n >= 0 {
            buf.truncate(n.unsigned_abs());
            return Ok(Some(buf));
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            _ if unsupported(&e) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// Sets `name` to `value` on `p`.
pub fn set(p: &Path, name: &OsStr, value: &[u8]) -> std::io::Result<()> {
    let (cp, cn) = (c_path(p)?, c_name(name)?);
    // SAFETY: both strings are NUL-terminated and `value` is valid for `value.len()` bytes.
    let r = unsafe {
        libc::lsetxattr(
            cp.as_ptr(),
            cn.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
