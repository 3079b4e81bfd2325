//! Layers against the real thing: an upper directory made by a real overlay mount.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::*;
use crate::store::Store;

/// A v2 file capability granting CAP_NET_BIND_SERVICE (effective).
const CAP: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// Builds lower and upper dirs, mounts overlay, changes things through it, unmounts;
/// returns the upper directory.
fn overlay_upper(base: &Path) -> PathBuf {
    let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|d| base.join(d));
    for d in [&lower, &upper, &work, &merged] {
        std::fs::create_dir(d).expect("mkdir");
    }
    std::fs::write(lower.join("gone.txt"), "bye").expect("write");
    std::fs::create_dir_all(lower.join("old/deep")).expect("mkdir");
    std::fs::write(lower.join("old/deep/a"), "a").expect("write");
    std::fs::create_dir(lower.join("keep")).expect("mkdir");
    std::fs::write(lower.join("keep/k"), "k").expect("write");
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(opts.as_str()),
    )
    .expect("mount overlay (the tests run as root)");
    let m = |p: &str| merged.join(p);
    std::fs::remove_file(m("gone.txt")).expect("rm");
    std::fs::remove_dir_all(m("old")).expect("rm -rf");
    std::fs::create_dir(m("old")).expect("mkdir");
    std::fs::write(m("old/new"), "new").expect("write");
    std::fs::remove_file(m("keep/k")).expect("rm");
    std::fs::write(m("hl1"), "shared").expect("write");
    std::fs::hard_link(m("hl1"), m("hl2")).expect("link");
    std::os::unix::fs::symlink("../target/x", m("link")).expect("symlink");
    nix::unistd::mkfifo(&m("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640))
        .expect("mkfifo");
    std::fs::write(m("cap"), "bin").expect("write");
    xattr::set(&m("cap"), OsStr::new("security.capability"), &CAP).expect("setcap");
    xattr::set(&m("cap"), OsStr::new("user.note"), b"hello").expect("user xattr");
    std::fs::write(m("suid"), "x").expect("write");
    // chown clears set-id bits, so it comes first.
    std::os::unix::fs::lchown(m("suid"), Some(1234), Some(5678)).expect("chown");
    std::fs::set_permissions(
        m("suid"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .expect("chmod");
    let long = "d".repeat(120);
    std::fs::create_dir_all(m(&format!("{long}/{long}"))).expect("mkdir long");
    std::fs::write(m(&format!("{long}/{long}/f")), "long").expect("write long");
    nix::mount::umount(&merged).expect("umount");
    upper
}

/// One tar entry as a test compares it.
#[derive(Debug)]
struct Seen {
    path: String,
    kind: tar::EntryType,
    size: u64,
    link: Option<String>,
    xattrs: BTreeMap<String, Vec<u8>>,
    uname: Vec<u8>,
}

fn entries(blob: &Path) -> Vec<Seen> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(blob).expect("open blob"));
    let mut archive = tar::Archive::new(gz);
    let mut out = Vec::new();
    for e in archive.entries().expect("tar") {
        let mut e = e.expect("entry");
        let mut xattrs = BTreeMap::new();
        if let Some(pax) = e.pax_extensions().expect("pax") {
            for x in pax {
                let x = x.expect("pax record");
                if let Some(n) = x.key().expect("key").strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(n.to_string(), x.value_bytes().to_vec());
                }
            }
        }
        out.push(Seen {
            path: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            kind: e.header().entry_type(),
            size: e.header().size().expect("size"),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned()),
            xattrs,
            uname: e.header().username_bytes().unwrap_or_default().to_vec(),
        });
        let mut sink = Vec::new();
        e.read_to_end(&mut sink).expect("read");
    }
    out
}

#[test]
fn overlay_upper_becomes_a_docker_layer_and_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let upper = overlay_upper(tmp.path());
    let store = Store::open(&tmp.path().join("store")).expect("store");
    let layer = write_layer(&store, &upper, &LayerOptions::default()).expect("write_layer");
    assert_eq!(
        layer.media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let blob = store.blob_path(&layer.digest);
    assert_eq!(std::fs::metadata(&blob).expect("blob").len(), layer.size);
    assert_eq!(
        crate::store::Digest::of_bytes(&std::fs::read(&blob).expect("read")),
        layer.digest
    );
    let seen = entries(&blob);
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    let by = |p: &str| {
        seen.iter()
            .find(|s| s.path == p)
            .unwrap_or_else(|| panic!("no {p} in {paths:?}"))
    };

    // Whiteouts: empty regular files named `.wh.<name>`; the deleted names are gone.
    for wh in [".wh.gone.txt", "keep/.wh.k"] {
        assert_eq!(
            (by(wh).kind, by(wh).size),
            (tar::EntryType::Regular, 0),
            "{wh}"
        );
    }
    assert!(!paths.contains(&"gone.txt"));
    // The replaced directory: its entry, then the opaque marker right after it.
    let old = paths.iter().position(|p| *p == "old/").expect("old/");
    assert_eq!(paths[old + 1], "old/.wh..wh..opq");
    assert_eq!(by("old/.wh..wh..opq").kind, tar::EntryType::Regular);
    assert!(!paths.contains(&"keep/.wh..wh..opq"), "keep is not opaque");
    // Hardlinks: the first is the file, the second a link to it.
    assert_eq!(by("hl1").kind, tar::EntryType::Regular);
    assert_eq!(by("hl2").kind, tar::EntryType::Link);
    assert_eq!(by("hl2").link.as_deref(), Some("hl1"));
    assert_eq!(by("link").kind, tar::EntryType::Symlink);
    assert_eq!(by("link").link.as_deref(), Some("../target/x"));
    assert_eq!(by("fifo").kind, tar::EntryType::Fifo);
    assert_eq!(
        by("cap").xattrs.get("security.capability"),
        Some(&CAP.to_vec())
    );
    assert_eq!(
        by("cap").xattrs.get("user.note").map(Vec::as_slice),
        Some(&b"hello"[..])
    );
    for s in &seen {
        assert!(
            s.xattrs.keys().all(|k| !k.contains("overlay")),
            "overlay attribute leaked on {}",
            s.path
        );
        assert!(s.uname.is_empty(), "uname written on {}", s.path);
    }
    // Sorted by the names on disk (a whiteout sits where the deleted name would), parents
    // before their children.
    let key = |p: &&str| -> Vec<String> {
        p.trim_end_matches('/')
            .split('/')
            .map(|c| {
                c.strip_prefix(".wh.")
                    .filter(|c| !c.starts_with(".wh."))
                    .unwrap_or(c)
                    .to_string()
            })
            .collect()
    };
    let mut sorted = paths.clone();
    sorted.sort_by_key(key);
    assert_eq!(paths, sorted, "entries are sorted by name, parents first");

    let back = tmp.path().join("back");
    unpack(&blob, &layer.media_type, &back).expect("unpack");
    let upper_tree = tree(&upper);
    assert!(upper_tree[Path::new("suid")].starts_with("mode=104755 uid=1234 gid=5678"));
    assert_eq!(upper_tree, tree(&back));
    let ino = |p: &str| std::fs::metadata(back.join(p)).expect("stat").ino();
    assert_eq!(ino("hl1"), ino("hl2"), "hardlinks stay one inode");

    // The same tree again gives the same bytes.
    let again = write_layer(&store, &upper, &LayerOptions::default()).expect("again");
    assert_eq!(again, layer);
}

#[test]
fn compressions_agree_on_the_diff_id_and_times_clamp() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let upper = tmp.path().join("u");
    std::fs::create_dir_all(upper.join("a")).expect("mkdir");
    std::fs::write(upper.join("a/f"), "content").expect("write");
    let store = Store::open(&tmp.path().join("store")).expect("store");
    let mut layers = Vec::new();
    for compression in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Uncompressed,
    ] {
        let opts = LayerOptions {
            compression,
            media: MediaTypes::Docker,
            source_date_epoch: Some(1000),
            level: None,
        };
        layers.push(write_layer(&store, &upper, &opts).expect("write"));
    }
    assert!(layers.iter().all(|l| l.diff_id == layers[0].diff_id));
    assert_eq!(
        layers[2].digest, layers[2].diff_id,
        "uncompressed: blob = tar"
    );
    assert_ne!(layers[0].digest, layers[1].digest);
    for l in &layers {
        let out = tmp.path().join(l.digest.hex());
        unpack(&store.blob_path(&l.digest), &l.media_type, &out).expect("unpack");
        assert_eq!(std::fs::read(out.join("a/f")).expect("read"), b"content");
        let mtime = std::fs::metadata(out.join("a/f")).expect("stat").mtime();
        assert_eq!(mtime, 1000, "clamped to SOURCE_DATE_EPOCH");
    }
}

/// An entry's name, type and link name, written raw.
type RawEntry<'a> = (&'a [u8], tar::EntryType, &'a [u8]);

/// A tar whose entries' names are written raw (the tar crate refuses to write `..`).
fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &[][..]).expect("append");
    }
    b.into_inner().expect("finish")
}

#[test]
fn unpack_refuses_entries_leaving_the_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let reg = tar::EntryType::Regular;
    let cases: [(&[RawEntry<'_>], &str, Escape); 4] = [
        (&[(b"../evil", reg, b"")], "../evil", Escape::ParentDir),
        (&[(b"/etc/evil", reg, b"")], "/etc/evil", Escape::Absolute),
        (
            &[
                (b"s", tar::EntryType::Symlink, b"/tmp"),
                (b"s/evil", reg, b""),
            ],
            "s/evil",
            Escape::Symlink,
        ),
        (
            &[(b"h", tar::EntryType::Link, b"../../etc/passwd")],
            "h",
            Escape::ParentDir,
        ),
    ];
    for (i, (entries, name, why)) in cases.iter().enumerate() {
        let blob = tmp.path().join(format!("t{i}.tar"));
        std::fs::write(&blob, raw_tar(entries)).expect("write");
        let err = unpack(
            &blob,
            "application/vnd.oci.image.layer.v1.tar",
            &tmp.path().join(format!("o{i}")),
        )
        .expect_err("must refuse");
        match &err {
            LayerError::Escape { entry, reason } => {
                assert_eq!((entry.as_str(), *reason), (*name, *why));
            }
            other => panic!("{name}: {other}: {:?}", std::error::Error::source(other)),
        }
        assert!(err.to_string().contains(name), "{err}");
    }
    let foreign = unpack(
        &tmp.path().join("t0.tar"),
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        &tmp.path().join("f"),
    );
    assert!(matches!(foreign, Err(LayerError::Foreign { .. })));
}

/// Everything comparable about a tree: type, mode, owner, size, content, link target,
/// times (not for whiteouts), device numbers and the attributes layers carry.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let p = e.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let ft = m.file_type();
            let mut attrs = Vec::new();
            for n in ["trusted.overlay.opaque", "security.capability", "user.note"] {
                if let Some(v) = xattr::get(&p, OsStr::new(n)).expect("getxattr") {
                    attrs.push(format!("{n}={v:?}"));
                }
            }
            let whiteout = ft.is_char_device() && m.rdev() == 0;
            let content = if ft.is_file() {
                String::from_utf8_lossy(&std::fs::read(&p).expect("read")).into_owned()
            } else if ft.is_symlink() {
                std::fs::read_link(&p)
                    .expect("readlink")
                    .display()
                    .to_string()
            } else {
                String::new()
            };
            let mode = if ft.is_symlink() { 0 } else { m.mode() };
            let mtime = if whiteout || ft.is_symlink() {
                0
            } else {
                m.mtime()
            };
            out.insert(
                p.strip_prefix(root).expect("inside").to_path_buf(),
                format!(
                    "mode={mode:o} uid={} gid={} rdev={} mtime={mtime} {content:?} {attrs:?}",
                    m.uid(),
                    m.gid(),
                    m.rdev()
                ),
            );
            if ft.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}
