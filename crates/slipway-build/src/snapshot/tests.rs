use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::layer::Change::{Path as Put, Whiteout};

type Error = Box<dyn std::error::Error>;

/// The tree every case starts from.
fn base(root: &Path) -> Result<(), Error> {
    for d in ["etc", "opt/tree/a/b", "opt/keep", "gone/deep", "swap"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::write(root.join("etc/conf"), "one")?;
    std::fs::write(root.join("etc/mode"), "m")?;
    std::fs::write(root.join("etc/owner"), "o")?;
    std::fs::write(root.join("etc/touched"), "t")?;
    std::fs::write(root.join("etc/same"), "s")?;
    std::fs::write(root.join("opt/tree/a/b/f"), "f")?;
    std::fs::write(root.join("opt/keep/old"), "old")?;
    std::fs::write(root.join("gone/deep/x"), "x")?;
    std::fs::write(root.join("swap/inside"), "i")?;
    std::fs::write(root.join("linked"), "l")?;
    symlink("etc/conf", root.join("link"))?;
    Ok(())
}

/// What an instruction does to the tree.
fn change(root: &Path) -> Result<(), Error> {
    std::fs::write(root.join("etc/conf"), "two")?;
    std::fs::set_permissions(
        root.join("etc/mode"),
        std::fs::Permissions::from_mode(0o600),
    )?;
    std::os::unix::fs::chown(root.join("etc/owner"), Some(1234), Some(5678))?;
    let t = filetime::FileTime::from_unix_time(1_000_000, 0);
    filetime::set_file_mtime(root.join("etc/touched"), t)?;
    std::fs::write(root.join("new"), "n")?;
    std::fs::remove_dir_all(root.join("gone"))?;
    std::fs::remove_dir_all(root.join("swap"))?;
    std::fs::write(root.join("swap"), "now a file")?;
    std::fs::remove_dir_all(root.join("opt/keep"))?;
    std::fs::create_dir(root.join("opt/keep"))?;
    std::fs::write(root.join("opt/keep/new"), "fresh")?;
    std::fs::hard_link(root.join("linked"), root.join("opt/hard"))?;
    std::fs::remove_file(root.join("link"))?;
    symlink("etc/mode", root.join("link"))?;
    symlink("new", root.join("link2"))?;
    Ok(())
}

fn indexed(root: &Path) -> Result<Index, Error> {
    let index = Index::walk(root, &Ignore::default())?;
    // The kernel's file times move in clock ticks: a change in the tick of the walk could
    // leave ctime as it was.
    std::thread::sleep(Duration::from_millis(20));
    Ok(index)
}

#[test]
fn the_diff_names_what_changed_and_nothing_else() -> Result<(), Error> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    base(root)?;
    let before = indexed(root)?;
    change(root)?;
    let after = Index::walk(root, &Ignore::default())?;
    let changes = before.diff(&after);
    let p = |s: &str| Put(PathBuf::from(s));
    let w = |s: &str| Whiteout(PathBuf::from(s));
    let expected = vec![
        p("etc"),
        p("etc/conf"),
        p("etc/mode"),
        p("etc/owner"),
        p("etc/touched"),
        w("gone"),
        p("link"),
        p("link2"),
        p("linked"),
        p("new"),
        p("opt"),
        p("opt/hard"),
        p("opt/keep"),
        p("opt/keep/new"),
        w("opt/keep/old"),
        p("swap"),
    ];
    assert_eq!(changes, expected);
    Ok(())
}

#[test]
fn an_unchanged_tree_has_no_changes() -> Result<(), Error> {
    let tmp = tempfile::tempdir()?;
    base(tmp.path())?;
    let before = indexed(tmp.path())?;
    // Reading does not count (atime is not compared).
    std::fs::read(tmp.path().join("etc/conf"))?;
    assert!(
        before
            .diff(&Index::walk(tmp.path(), &Ignore::default())?)
            .is_empty()
    );
    Ok(())
}

#[test]
fn ignored_paths_are_not_indexed() -> Result<(), Error> {
    let tmp = tempfile::tempdir()?;
    base(tmp.path())?;
    let ignore = Ignore::only([PathBuf::from("opt/tree"), PathBuf::from("etc/conf")]);
    let index = Index::walk(tmp.path(), &ignore)?;
    assert!(index.paths.contains_key(Path::new("opt")));
    assert!(!index.paths.keys().any(|p| p.starts_with("opt/tree")));
    assert!(!index.paths.contains_key(Path::new("etc/conf")));
    assert!(index.paths.contains_key(Path::new("etc/mode")));
    Ok(())
}

/// What a container sees of a tree: type, mode, owner, content or target.
fn listing(root: &Path) -> Result<BTreeMap<PathBuf, String>, Error> {
    let mut out = BTreeMap::new();
    for (rel, m) in Index::walk(root, &Ignore::default())?.paths {
        let abs = root.join(&rel);
        let what = match m.kind {
            Kind::File => String::from_utf8_lossy(&std::fs::read(&abs)?).into_owned(),
            Kind::Symlink => format!("-> {:?}", m.link),
            _ => String::new(),
        };
        let mtime = if m.kind == Kind::File { m.mtime.0 } else { 0 };
        out.insert(
            rel,
            format!(
                "{:?} {:o} {}:{} {mtime} {what}",
                m.kind, m.mode, m.uid, m.gid
            ),
        );
    }
    Ok(out)
}

#[test]
fn the_layer_of_a_diff_applied_to_the_old_tree_gives_the_new_one() -> Result<(), Error> {
    let tmp = tempfile::tempdir()?;
    let (live, copy) = (tmp.path().join("live"), tmp.path().join("copy"));
    for r in [&live, &copy] {
        std::fs::create_dir(r)?;
        base(r)?;
    }
    let before = indexed(&live)?;
    change(&live)?;
    let after = Index::walk(&live, &Ignore::default())?;
    let store = crate::store::Store::open(&tmp.path().join("store"))?;
    let layer =
        crate::layer::write_changes(&store, &live, &before.diff(&after), &Default::default())?;
    crate::layer::apply(
        &store.blob_path(&layer.digest),
        &layer.media_type,
        &copy,
        &|_| false,
    )?;
    assert_eq!(listing(&copy)?, listing(&live)?);
    // The new hard link shares its inode with the file it links, as in the live tree.
    let (a, b) = (
        std::fs::metadata(copy.join("linked"))?,
        std::fs::metadata(copy.join("opt/hard"))?,
    );
    assert_eq!(a.ino(), b.ino());
    Ok(())
}

#[test]
fn applying_leaves_skipped_paths_alone() -> Result<(), Error> {
    let tmp = tempfile::tempdir()?;
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    std::fs::create_dir_all(src.join("etc"))?;
    std::fs::write(src.join("etc/hosts"), "from the image")?;
    std::fs::write(src.join("etc/passwd"), "root")?;
    std::fs::create_dir_all(dst.join("etc"))?;
    std::fs::write(dst.join("etc/hosts"), "the runtime's")?;
    std::fs::write(dst.join("etc/stale"), "old")?;
    let store = crate::store::Store::open(&tmp.path().join("store"))?;
    let layer = crate::layer::write_layer(&store, &src, &Default::default())?;
    let skip = |p: &Path| p == Path::new("etc/hosts");
    // A whole-root reset keeps the skipped file and the directory holding it.
    crate::layer::unpack::prune(&dst, Path::new(""), &skip, None)?;
    assert!(!dst.join("etc/stale").exists());
    crate::layer::apply(
        &store.blob_path(&layer.digest),
        &layer.media_type,
        &dst,
        &skip,
    )?;
    assert_eq!(
        std::fs::read_to_string(dst.join("etc/hosts"))?,
        "the runtime's"
    );
    assert_eq!(std::fs::read_to_string(dst.join("etc/passwd"))?, "root");
    Ok(())
}
