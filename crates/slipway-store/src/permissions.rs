//! The store's files kept to their owner: the database directory 0700, the database and its
//! WAL and shared-memory files 0600. The database file is made before SQLite opens it, because
//! SQLite gives the WAL and `-shm` files the database file's mode; files an older build left
//! wider are narrowed.

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Creates `dir` (and missing parents) as 0700, and narrows it to 0700 when it exists. A
/// directory this user does not own (a volume's root, group-writable for it) cannot be narrowed
/// and is left as it is: what is created inside it is private all the same.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    match narrow(dir, 0o700) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot narrow a directory this user does not own");
            Ok(())
        }
        other => other,
    }
}

/// Creates the database file as 0600 when missing, and narrows it and its companions to 0600.
pub fn private_database(path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    narrow(path, 0o600)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        match narrow(Path::new(&companion), 0o600) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Sets `mode` when the file has any permission bit outside it.
fn narrow(path: &Path, mode: u32) -> io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn new_and_existing_files_end_up_private() {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().join("a/db");
        private_dir(&dir).expect("dir");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&base.path().join("a")), 0o700);
        let db = dir.join("runs.db");
        private_database(&db).expect("db");
        assert_eq!(mode(&db), 0o600);

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let wal = dir.join("runs.db-wal");
        std::fs::write(&wal, b"").expect("wal");
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        private_dir(&dir).expect("dir");
        private_database(&db).expect("db");
        assert_eq!((mode(&dir), mode(&db), mode(&wal)), (0o700, 0o600, 0o600));
    }
}
