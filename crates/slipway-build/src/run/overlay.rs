//! An overlay mount of read-only layers under one writable upper directory.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::run::RunError;

/// A mounted overlay; unmounted when dropped.
#[derive(Debug)]
pub struct Overlay {
    target: PathBuf,
    mounted: bool,
}

impl Overlay {
    /// Mounts `lowers` (bottom layer first, as an image lists them) under `upper` at `target`.
    /// `links` is an empty directory with a short path for the lower directories' aliases:
    /// mount options hold one page, and store paths would fit only a few dozen layers.
    /// With `upper` `None` the mount is read-only.
    pub fn mount(
        lowers: &[PathBuf],
        upper: Option<(&Path, &Path)>,
        links: &Path,
        target: &Path,
    ) -> Result<Self, RunError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RunError::Io { path, source }
        };
        std::fs::create_dir_all(target).map_err(io(target))?;
        std::fs::create_dir_all(links).map_err(io(links))?;
        // Overlay wants at least one lower directory, two when there is no upper one.
        let empty = links.join("e");
        std::fs::create_dir_all(&empty).map_err(io(&empty))?;
        let mut names = Vec::with_capacity(lowers.len() + 1);
        for (i, dir) in lowers.iter().enumerate().rev() {
            let link = links.join(format!("{i:x}"));
            if !link.exists() {
                symlink(dir, &link).map_err(io(&link))?;
            }
            names.push(link.display().to_string());
        }
        if names.len() < 2 && upper.is_none() || names.is_empty() {
            names.push(empty.display().to_string());
        }
        let mut options = format!("lowerdir={}", names.join(":"));
        if let Some((upper, work)) = upper {
            std::fs::create_dir_all(upper).map_err(io(upper))?;
            std::fs::create_dir_all(work).map_err(io(work))?;
            options.push_str(&format!(
                ",upperdir={},workdir={}",
                upper.display(),
                work.display()
            ));
        }
        let flags = if upper.is_none() {
            MsFlags::MS_RDONLY
        } else {
            MsFlags::empty()
        };
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            flags,
            Some(options.as_str()),
        )
        .map_err(|source| RunError::Mount {
            what: "overlay".into(),
            target: target.to_path_buf(),
            source,
        })?;
        Ok(Self {
            target: target.to_path_buf(),
            mounted: true,
        })
    }

    /// Where the merged tree is.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Unmounts now, reporting failure (dropping unmounts too, silently).
    pub fn unmount(mut self) -> Result<(), RunError> {
        self.mounted = false;
        unmount(&self.target)
    }
}

/// Detaches a mount (lazily, so a process still inside cannot keep it busy).
pub(crate) fn unmount(target: &Path) -> Result<(), RunError> {
    umount2(target, MntFlags::MNT_DETACH).map_err(|source| RunError::Mount {
        what: "unmount".into(),
        target: target.to_path_buf(),
        source,
    })
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if self.mounted {
            let _ = unmount(&self.target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_receives_changes_and_whiteouts() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(&a)?;
        std::fs::create_dir_all(&b)?;
        std::fs::write(a.join("x"), "from a")?;
        std::fs::write(b.join("x"), "from b")?;
        std::fs::write(a.join("gone"), "")?;
        let upper = tmp.path().join("u");
        let ov = Overlay::mount(
            &[a, b],
            Some((&upper, &tmp.path().join("w"))),
            &tmp.path().join("l"),
            &tmp.path().join("m"),
        )?;
        // The later layer wins.
        assert_eq!(std::fs::read_to_string(ov.path().join("x"))?, "from b");
        std::fs::remove_file(ov.path().join("gone"))?;
        std::fs::write(ov.path().join("new"), "n")?;
        ov.unmount()?;
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::symlink_metadata(upper.join("gone"))?
                .file_type()
                .is_char_device()
        );
        assert_eq!(std::fs::read_to_string(upper.join("new"))?, "n");
        Ok(())
    }
}
