//! COPY/ADD behaviour on temporary trees: a source tree and a spec in, the resulting tree
//! (types, modes, owners, contents) out.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use super::*;
use crate::dockerfile::Heredoc;

/// A node of a test tree.
enum Node<'a> {
    File(&'a str, u32),
    Dir(u32),
    Link(&'a str),
}

fn make(root: &Path, nodes: &[(&str, Node<'_>)]) {
    for (path, node) in nodes {
        let at = root.join(path);
        if let Some(parent) = at.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        match node {
            Node::File(text, mode) => {
                fs::write(&at, text).expect("write");
                fs::set_permissions(&at, fs::Permissions::from_mode(*mode)).expect("chmod");
            }
            Node::Dir(mode) => {
                fs::create_dir_all(&at).expect("mkdir");
                fs::set_permissions(&at, fs::Permissions::from_mode(*mode)).expect("chmod");
            }
            Node::Link(target) => symlink(target, &at).expect("symlink"),
        }
    }
}

/// Every object under `root` as `path type mode uid:gid [content|-> target]`, sorted.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut children: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    children.sort();
    for path in children {
        let meta = fs::symlink_metadata(&path).expect("lstat");
        let rel = path
            .strip_prefix(root)
            .expect("inside")
            .display()
            .to_string();
        let owner = format!("{}:{}", meta.uid(), meta.gid());
        let mode = meta.mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).expect("readlink");
            out.push(format!("{rel} link {owner} -> {}", target.display()));
        } else if meta.is_dir() {
            out.push(format!("{rel} dir {mode:o} {owner}"));
            walk(root, &path, out);
        } else {
            let text = fs::read_to_string(&path).unwrap_or_else(|_| "<binary>".into());
            out.push(format!("{rel} file {mode:o} {owner} {text:?}"));
        }
    }
}

fn spec(sources: &[&str], dest: &str) -> CopySpec {
    CopySpec {
        add: false,
        sources: sources.iter().map(|s| s.to_string()).collect(),
        dest: dest.to_string(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        exclude: Vec::new(),
        checksum: None,
        keep_git_dir: false,
        heredocs: Vec::new(),
    }
}

/// The standard context for the table.
fn standard_context(dir: &Path) {
    make(
        dir,
        &[
            ("a.txt", Node::File("a", 0o640)),
            ("b.txt", Node::File("b", 0o644)),
            ("ab", Node::File("ab", 0o644)),
            ("run.sh", Node::File("#!", 0o755)),
            ("src/main.rs", Node::File("main", 0o644)),
            ("src/sub", Node::Dir(0o750)),
            ("src/sub/x", Node::File("x", 0o600)),
            ("src/link", Node::Link("main.rs")),
            ("alias", Node::Link("src/main.rs")),
        ],
    );
    // The context's own owners never reach the image.
    std::os::unix::fs::lchown(dir.join("a.txt"), Some(4321), Some(4321)).expect("chown");
    std::os::unix::fs::lchown(dir.join("src/sub"), Some(4321), Some(4321)).expect("chown");
}

/// A root file system with users, a symlinked /lib and an existing /opt.
fn standard_rootfs(dir: &Path) {
    make(
        dir,
        &[
            (
                "etc/passwd",
                Node::File("root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n", 0o644),
            ),
            ("etc/group", Node::File("root:x:0:\nstaff:x:50:\n", 0o644)),
            ("usr/lib", Node::Dir(0o755)),
            ("lib", Node::Link("usr/lib")),
            ("opt", Node::Dir(0o755)),
            ("old.txt", Node::File("old", 0o644)),
        ],
    );
}

/// Runs one COPY from the standard context into the standard rootfs; the rootfs listing
/// without the standard part.
async fn run(spec: &CopySpec, workdir: &str) -> Result<Vec<String>, CopyError> {
    let context_dir = tempfile::tempdir().expect("tempdir");
    standard_context(context_dir.path());
    let context = Context::open(&context_dir.path().to_string_lossy(), None).expect("context");
    let rootfs = tempfile::tempdir().expect("tempdir");
    standard_rootfs(rootfs.path());
    let before = listing(rootfs.path());
    let prepared = prepare(spec, &Source::Context(&context), rootfs.path()).await?;
    prepared.apply(rootfs.path(), workdir)?;
    Ok(listing(rootfs.path())
        .into_iter()
        .filter(|l| !before.contains(l))
        .collect())
}

#[tokio::test]
async fn copy_table() {
    let with = |mut s: CopySpec, f: fn(&mut CopySpec)| {
        f(&mut s);
        s
    };
    let cases: Vec<(&str, CopySpec, &str, Vec<&str>)> = vec![
        (
            "file into a new directory",
            spec(&["a.txt"], "/dst/"),
            "/",
            vec!["dst dir 755 0:0", "dst/a.txt file 640 0:0 \"a\""],
        ),
        (
            "file to a new file name",
            spec(&["a.txt"], "/dst"),
            "/",
            vec!["dst file 640 0:0 \"a\""],
        ),
        (
            "file into an existing directory without a slash",
            spec(&["a.txt"], "/opt"),
            "/",
            vec!["opt/a.txt file 640 0:0 \"a\""],
        ),
        (
            "a directory's contents, not the directory",
            spec(&["src"], "/app"),
            "/",
            vec![
                "app dir 755 0:0",
                "app/link link 0:0 -> main.rs",
                "app/main.rs file 644 0:0 \"main\"",
                "app/sub dir 750 0:0",
                "app/sub/x file 600 0:0 \"x\"",
            ],
        ),
        (
            "--parents keeps the source path",
            with(spec(&["src/sub/x"], "/out/"), |s| s.parents = true),
            "/",
            vec![
                "out dir 755 0:0",
                "out/src dir 755 0:0",
                "out/src/sub dir 755 0:0",
                "out/src/sub/x file 600 0:0 \"x\"",
            ],
        ),
        (
            "a glob means several files",
            spec(&["*.txt"], "/t/"),
            "/",
            vec![
                "t dir 755 0:0",
                "t/a.txt file 640 0:0 \"a\"",
                "t/b.txt file 644 0:0 \"b\"",
            ],
        ),
        (
            "a character class",
            spec(&["[ab]?"], "/t/"),
            "/",
            vec!["t dir 755 0:0", "t/ab file 644 0:0 \"ab\""],
        ),
        (
            "a wildcard matching nothing copies nothing",
            spec(&["*.nothing"], "/t/"),
            "/",
            vec![],
        ),
        (
            "../ stays in the context",
            spec(&["../../a.txt"], "/x"),
            "/",
            vec!["x file 640 0:0 \"a\""],
        ),
        (
            "relative destination under WORKDIR",
            spec(&["a.txt"], "rel/"),
            "/w",
            vec![
                "w dir 755 0:0",
                "w/rel dir 755 0:0",
                "w/rel/a.txt file 640 0:0 \"a\"",
            ],
        ),
        (
            "--chown by name, group from the uid; --chmod on files and directories",
            with(spec(&["src"], "/app"), |s| {
                s.chown = Some("app".into());
                s.chmod = Some(0o751);
            }),
            "/",
            vec![
                "app dir 755 1000:1000",
                "app/link link 1000:1000 -> main.rs",
                "app/main.rs file 751 1000:1000 \"main\"",
                "app/sub dir 751 1000:1000",
                "app/sub/x file 751 1000:1000 \"x\"",
            ],
        ),
        (
            "--chown user:group, created parents owned too (BuildKit)",
            with(spec(&["a.txt"], "/p/q/"), |s| {
                s.chown = Some("app:staff".into())
            }),
            "/",
            vec![
                "p dir 755 1000:50",
                "p/q dir 755 1000:50",
                "p/q/a.txt file 640 1000:50 \"a\"",
            ],
        ),
        (
            "a source that is a link is followed",
            spec(&["alias"], "/m"),
            "/",
            vec!["m file 644 0:0 \"main\""],
        ),
        (
            "a link in the destination is followed inside the root",
            spec(&["a.txt"], "/lib/"),
            "/",
            vec!["usr/lib/a.txt file 640 0:0 \"a\""],
        ),
        (
            "a file replaces a file",
            spec(&["a.txt"], "/old.txt"),
            "/",
            vec!["old.txt file 640 0:0 \"a\""],
        ),
        (
            "--exclude",
            with(spec(&["src"], "/app/"), |s| {
                s.exclude = vec!["sub".into(), "link".into()]
            }),
            "/",
            vec!["app dir 755 0:0", "app/main.rs file 644 0:0 \"main\""],
        ),
        (
            "here-document",
            with(spec(&["<<EOF"], "/etc/motd"), |s| {
                s.heredocs = vec![Heredoc {
                    name: "EOF".into(),
                    content: "\thello\n".into(),
                    strip_tabs: true,
                    quoted: false,
                }];
            }),
            "/",
            vec!["etc/motd file 644 0:0 \"hello\\n\""],
        ),
    ];
    for (name, spec, workdir, want) in cases {
        let got = run(&spec, workdir)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[tokio::test]
async fn file_onto_a_directory_is_refused() {
    let err = run(&spec(&["a.txt"], "/usr/lib/../"), "/").await;
    assert!(err.is_ok(), "a directory destination takes the file inside");
    let context_dir = tempfile::tempdir().expect("tempdir");
    make(context_dir.path(), &[("d/usr", Node::File("x", 0o644))]);
    let context = Context::open(&context_dir.path().to_string_lossy(), None).expect("context");
    let rootfs = tempfile::tempdir().expect("tempdir");
    standard_rootfs(rootfs.path());
    let prepared = prepare(
        &spec(&["d"], "/"),
        &Source::Context(&context),
        rootfs.path(),
    )
    .await
    .expect("prepare");
    let err = prepared
        .apply(rootfs.path(), "/")
        .expect_err("usr is a directory");
    assert_eq!(err.to_string(), "replace the directory /usr with a file");
}

#[tokio::test]
async fn hostile_symlink_in_the_rootfs_cannot_escape() {
    let outside = tempfile::tempdir().expect("tempdir");
    let context_dir = tempfile::tempdir().expect("tempdir");
    make(
        context_dir.path(),
        &[("passwd", Node::File("pwned", 0o644))],
    );
    let context = Context::open(&context_dir.path().to_string_lossy(), None).expect("context");
    let rootfs = tempfile::tempdir().expect("tempdir");
    let escape = format!("/../../../..{}", outside.path().display());
    symlink(&escape, rootfs.path().join("etc")).expect("symlink");
    let prepared = prepare(
        &spec(&["passwd"], "/etc/"),
        &Source::Context(&context),
        rootfs.path(),
    )
    .await
    .expect("prepare");
    prepared.apply(rootfs.path(), "/").expect("apply");
    assert!(
        !outside.path().join("passwd").exists(),
        "wrote outside the root"
    );
    let inside = rootfs
        .path()
        .join(escape.trim_start_matches("/../../../../"))
        .join("passwd");
    assert_eq!(fs::read_to_string(inside).expect("inside"), "pwned");
}

#[tokio::test]
async fn hard_links_stay_linked() {
    let context_dir = tempfile::tempdir().expect("tempdir");
    make(context_dir.path(), &[("d/one", Node::File("same", 0o644))]);
    fs::hard_link(
        context_dir.path().join("d/one"),
        context_dir.path().join("d/two"),
    )
    .expect("link");
    let context = Context::open(&context_dir.path().to_string_lossy(), None).expect("context");
    let rootfs = tempfile::tempdir().expect("tempdir");
    let prepared = prepare(
        &spec(&["d"], "/d"),
        &Source::Context(&context),
        rootfs.path(),
    )
    .await
    .expect("prepare");
    prepared.apply(rootfs.path(), "/").expect("apply");
    let one = fs::metadata(rootfs.path().join("d/one")).expect("one");
    let two = fs::metadata(rootfs.path().join("d/two")).expect("two");
    assert_eq!(one.ino(), two.ino());
}

#[tokio::test]
async fn from_a_rootfs_keeps_owners_and_times() {
    let source = tempfile::tempdir().expect("tempdir");
    make(source.path(), &[("srv/data", Node::File("d", 0o640))]);
    std::os::unix::fs::lchown(source.path().join("srv/data"), Some(123), Some(456)).expect("chown");
    let old = fs::File::open(source.path().join("srv/data")).expect("open");
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    old.set_modified(when).expect("mtime");
    let rootfs = tempfile::tempdir().expect("tempdir");
    let mut s = spec(&["/srv"], "/srv");
    s.from = Some("builder".into());
    let prepared = prepare(&s, &Source::Rootfs(source.path()), rootfs.path())
        .await
        .expect("prepare");
    prepared.apply(rootfs.path(), "/").expect("apply");
    let meta = fs::metadata(rootfs.path().join("srv/data")).expect("copied");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mtime()),
        (123, 456, 1_000_000)
    );
    // The owner is part of the key for --from sources.
    std::os::unix::fs::lchown(source.path().join("srv/data"), Some(7), Some(7)).expect("chown");
    let again = prepare(&s, &Source::Rootfs(source.path()), rootfs.path())
        .await
        .expect("prepare");
    assert_ne!(prepared.checksum(), again.checksum());
}

#[tokio::test]
async fn dockerignore_hides_files_and_leaves_the_checksum_alone() {
    let context_dir = tempfile::tempdir().expect("tempdir");
    make(
        context_dir.path(),
        &[
            (
                ".dockerignore",
                Node::File("*.log\n!keep.log\nsecret\n", 0o644),
            ),
            ("app.rs", Node::File("fn main", 0o644)),
            ("debug.log", Node::File("noise", 0o644)),
            ("keep.log", Node::File("kept", 0o644)),
            ("secret/key", Node::File("k", 0o600)),
        ],
    );
    let checksum = || async {
        let context = Context::open(&context_dir.path().to_string_lossy(), None).expect("ctx");
        let rootfs = tempfile::tempdir().expect("tempdir");
        let prepared = prepare(
            &spec(&["."], "/c/"),
            &Source::Context(&context),
            rootfs.path(),
        )
        .await
        .expect("prepare");
        prepared.apply(rootfs.path(), "/").expect("apply");
        (prepared.checksum(), listing(&rootfs.path().join("c")))
    };
    let (first, tree) = checksum().await;
    assert_eq!(
        tree,
        [
            ".dockerignore file 644 0:0 \"*.log\\n!keep.log\\nsecret\\n\"",
            "app.rs file 644 0:0 \"fn main\"",
            "keep.log file 644 0:0 \"kept\"",
        ]
    );
    fs::write(context_dir.path().join("debug.log"), "more noise").expect("write");
    fs::write(context_dir.path().join("secret/key"), "k2").expect("write");
    assert_eq!(
        checksum().await.0,
        first,
        "an ignored change must not change the key"
    );
    fs::write(context_dir.path().join("keep.log"), "kept!").expect("write");
    let second = checksum().await.0;
    assert_ne!(second, first, "a re-included file's content counts");
    let perms = fs::Permissions::from_mode(0o600);
    fs::set_permissions(context_dir.path().join("app.rs"), perms).expect("chmod");
    assert_ne!(checksum().await.0, second, "a mode counts");
}

async fn missing_message(dir: &Path, source: &str) -> String {
    let context = Context::open(&dir.to_string_lossy(), None).expect("context");
    let rootfs = tempfile::tempdir().expect("tempdir");
    let err = prepare(
        &spec(&[source], "/"),
        &Source::Context(&context),
        rootfs.path(),
    )
    .await
    .expect_err("missing");
    err.to_string()
}

#[tokio::test]
async fn missing_sources_say_what_is_there() {
    let context_dir = tempfile::tempdir().expect("tempdir");
    make(
        context_dir.path(),
        &[
            (".dockerignore", Node::File("src/secret.rs\n", 0o644)),
            ("src/lib.rs", Node::File("", 0o644)),
            ("src/main.rs", Node::File("", 0o644)),
            ("src/secret.rs", Node::File("", 0o644)),
            ("src/util", Node::Dir(0o755)),
        ],
    );
    let dir = context_dir.path();
    let messages = [
        missing_message(dir, "src/mian.rs").await,
        missing_message(dir, "src/nope/deeper/x").await,
        missing_message(dir, "src/secret.rs").await,
        missing_message(dir, "nodir/*.rs").await,
        missing_message(dir, "/etc/passwd").await,
    ];
    insta::assert_snapshot!(messages.join("\n"));
}

fn tar_bytes() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, body: &[u8], mode: u32, link: Option<&str>| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        header.set_uid(33);
        header.set_gid(44);
        header.set_mtime(1_234_567);
        if let Some(link) = link {
            header.set_link_name(link).expect("link name");
        }
        header.set_cksum();
        builder
            .append_data(&mut header, name, body)
            .expect("append");
    };
    add("pkg/", tar::EntryType::Directory, b"", 0o750, None);
    add("pkg/bin", tar::EntryType::Regular, b"ELF", 0o755, None);
    add("pkg/.wh.gone", tar::EntryType::Regular, b"", 0o644, None);
    add(
        "pkg/current",
        tar::EntryType::Symlink,
        b"",
        0o777,
        Some("bin"),
    );
    add(
        "pkg/same",
        tar::EntryType::Link,
        b"",
        0o755,
        Some("pkg/bin"),
    );
    builder.into_inner().expect("tar")
}

#[tokio::test]
async fn add_extracts_local_archives_by_content() {
    let tar = tar_bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gz");
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    std::io::Write::write_all(&mut bz, &tar).expect("bz");
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
    std::io::Write::write_all(&mut xz, &tar).expect("xz");
    let archives = [
        ("plain.tar", tar.clone()),
        ("pkg.tar.gz", gz.finish().expect("gz")),
        ("named-oddly.bin", bz.finish().expect("bz")),
        ("pkg.txz", xz.finish().expect("xz")),
    ];
    for (name, bytes) in archives {
        let context_dir = tempfile::tempdir().expect("tempdir");
        fs::write(context_dir.path().join(name), bytes).expect("write");
        let context = Context::open(&context_dir.path().to_string_lossy(), None).expect("ctx");
        let rootfs = tempfile::tempdir().expect("tempdir");
        let mut s = spec(&[name], "/opt");
        s.add = true;
        let prepared = prepare(&s, &Source::Context(&context), rootfs.path())
            .await
            .expect("prepare");
        prepared.apply(rootfs.path(), "/").expect("apply");
        let tree = listing(&rootfs.path().join("opt"));
        assert_eq!(
            tree,
            [
                "pkg dir 750 33:44",
                "pkg/.wh.gone file 644 33:44 \"\"",
                "pkg/bin file 755 33:44 \"ELF\"",
                "pkg/current link 33:44 -> bin",
                "pkg/same file 755 33:44 \"ELF\"",
            ],
            "{name}"
        );
        let bin = fs::metadata(rootfs.path().join("opt/pkg/bin")).expect("bin");
        let same = fs::metadata(rootfs.path().join("opt/pkg/same")).expect("same");
        assert_eq!((bin.ino(), bin.mtime()), (same.ino(), 1_234_567), "{name}");
    }
    // COPY never extracts, and neither does ADD of something that only looks like a tar.
    let context_dir = tempfile::tempdir().expect("tempdir");
    fs::write(context_dir.path().join("fake.tar.gz"), "not gzip").expect("write");
    fs::write(context_dir.path().join("real.tar"), tar_bytes()).expect("write");
    let context = Context::open(&context_dir.path().to_string_lossy(), None).expect("ctx");
    let rootfs = tempfile::tempdir().expect("tempdir");
    let mut s = spec(&["fake.tar.gz"], "/f/");
    s.add = true;
    let prepared = prepare(&s, &Source::Context(&context), rootfs.path())
        .await
        .expect("prep");
    prepared.apply(rootfs.path(), "/").expect("apply");
    assert_eq!(
        fs::read_to_string(rootfs.path().join("f/fake.tar.gz")).expect("f"),
        "not gzip"
    );
    let prepared = prepare(
        &spec(&["real.tar"], "/r/"),
        &Source::Context(&context),
        rootfs.path(),
    )
    .await
    .expect("prep");
    prepared.apply(rootfs.path(), "/").expect("apply");
    assert!(rootfs.path().join("r/real.tar").is_file());
}

/// Serves `body` once per connection on 127.0.0.1 with `Last-Modified`; 404 for `/missing`.
fn serve(body: &'static [u8]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                    break;
                }
            }
            let head = if request.contains("/missing") {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_string()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nlast-modified: Sat, 01 Jan 2022 00:00:00 GMT\r\nconnection: close\r\n\r\n",
                    body.len()
                )
            };
            let _ = stream.write_all(head.as_bytes());
            if !request.contains("/missing") {
                let _ = stream.write_all(body);
            }
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn add_downloads_urls_without_extracting() {
    let tar: &'static [u8] = Box::leak(tar_bytes().into_boxed_slice());
    let base = serve(tar);
    let context_dir = tempfile::tempdir().expect("tempdir");
    let context = Context::open(&context_dir.path().to_string_lossy(), None).expect("ctx");
    let rootfs = tempfile::tempdir().expect("tempdir");
    let url = format!("{base}/files/pkg.tar?x=1");
    let mut s = spec(&[&url], "/dl/");
    s.add = true;
    let sha = hex::encode(Sha256::digest(tar));
    s.checksum = Some(format!("sha256:{sha}"));
    let prepared = prepare(&s, &Source::Context(&context), rootfs.path())
        .await
        .expect("prep");
    prepared.apply(rootfs.path(), "/").expect("apply");
    let meta = fs::metadata(rootfs.path().join("dl/pkg.tar")).expect("downloaded");
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!(meta.mtime(), 1_640_995_200);
    assert_eq!(
        fs::read(rootfs.path().join("dl/pkg.tar")).expect("read"),
        tar
    );

    s.checksum = Some(format!("sha256:{}", "0".repeat(64)));
    let err = prepare(&s, &Source::Context(&context), rootfs.path())
        .await
        .expect_err("mismatch");
    assert!(matches!(err, CopyError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&sha), "{err}");

    let mut missing = spec(&[&format!("{base}/missing")], "/dl/");
    missing.add = true;
    let err = prepare(&missing, &Source::Context(&context), rootfs.path())
        .await
        .expect_err("404");
    assert!(
        matches!(err, CopyError::HttpStatus { status: 404, .. }),
        "{err}"
    );

    let copy = spec(&[&url], "/dl/");
    let err = prepare(&copy, &Source::Context(&context), rootfs.path())
        .await
        .expect_err("copy");
    assert!(matches!(err, CopyError::UrlInCopy { .. }), "{err}");
}
