//! Where slipway keeps its data, kept to its owner.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use slipway_store::SqliteStore;

use crate::error::CliError;

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

/// `--secret-key-file`, else the config file's, set by `main` before any command runs (every
/// command that opens the store needs it, and none should have to carry it).
static SECRET_KEY_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Keeps the key file named by `--secret-key-file`/`$SLIPWAY_SECRET_KEY_FILE` or the config
/// file: the first one given wins.
pub fn set_secret_key_file(flag: Option<PathBuf>) {
    if let Some(f) = flag {
        let _ = SECRET_KEY_FILE.set(f);
    }
}

/// The key Secrets are sealed with: `--secret-key-file`, else the config file's `[secrets]
/// key_file`, else `DATA/secret.key` (outside `db/`, so a copy of the database alone does not
/// carry it).
pub fn secret_key_file(data: &Path) -> PathBuf {
    SECRET_KEY_FILE
        .get()
        .cloned()
        .unwrap_or_else(|| data.join("secret.key"))
}

/// Opens the run database of `data`, its Secrets sealed with [`secret_key_file`].
pub async fn open_store(data: &Path) -> Result<SqliteStore, CliError> {
    Ok(SqliteStore::open_with_key(&data.join("db"), &secret_key_file(data)).await?)
}

/// Directories the executors fill with run data (workspaces, control files), made here first so
/// that they are private whatever mode the executors would give them.
const MADE_PRIVATE: [&str; 3] = ["db", "scratch", "taskruns"];
/// What an older build may have left open: narrowed to the owner.
const NARROWED_DIRS: [&str; 1] = ["claims"];
const NARROWED_FILES: [&str; 2] = ["serve.lock", "secret.key"];

/// Creates the data directory as 0700, or narrows an existing one (and what an older build
/// left in it) to its owner: it holds run history, logs, workspaces and the secret key. A
/// directory that cannot be made at all is left to the command to report (the store or the
/// server's lock says what is wrong with it, as an internal error).
pub fn make_private(data: &Path) {
    if slipway_store::permissions::private_dir(data).is_err() {
        return;
    }
    if let Ok(m) = std::fs::metadata(data)
        && m.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "warning: the data directory {} is open to other users (mode {:o}) and this user may not narrow it; what slipway keeps in it is private all the same",
            data.display(),
            m.permissions().mode() & 0o7777
        );
    }
    // Best effort: a file this user does not own is reported, not fatal.
    let narrow = |name: &str, mode: u32| {
        let p = data.join(name);
        if let Ok(m) = std::fs::metadata(&p)
            && m.permissions().mode() & 0o777 & !mode != 0
            && let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
        {
            eprintln!(
                "warning: {} is open to other users and could not be narrowed: {e}",
                p.display()
            );
        }
    };
    for d in MADE_PRIVATE {
        // A failure here surfaces where the directory is used.
        let _ = slipway_store::permissions::private_dir(&data.join(d));
    }
    for d in NARROWED_DIRS {
        narrow(d, 0o700);
    }
    for f in NARROWED_FILES {
        narrow(f, 0o600);
    }
}
