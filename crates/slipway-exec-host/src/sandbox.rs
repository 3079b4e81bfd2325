//! A per-step mount namespace whose root is the host's, plus Tekton's paths (`/workspace`, `/tekton/...`).
//!
//! The host part of that root (a tmpfs with every top-level host directory bound in) is built once,
//! in a template namespace kept alive by an open descriptor. Each step joins the template, takes a
//! private copy of it (`unshare`), and adds only its TaskRun's mounts.
//!
//! Everything is prepared before `fork`; the child only makes system calls on prepared data,
//! because a forked child of a threaded program may not allocate.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use slipway_taskdir::layout::Bind;

/// How the host's root directory looks, read once.
#[derive(Debug, Clone)]
pub struct HostRoot {
    entries: Vec<RootEntry>,
}

#[derive(Debug, Clone)]
enum RootEntry {
    Dir(String),
    File(String),
    Link(String, PathBuf),
}

impl RootEntry {
    fn name(&self) -> &str {
        match self {
            RootEntry::Dir(n) | RootEntry::File(n) | RootEntry::Link(n, _) => n,
        }
    }
}

impl HostRoot {
    /// Lists `/`.
    pub fn read() -> io::Result<HostRoot> {
        let mut entries = Vec::new();
        for e in std::fs::read_dir("/")? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let ft = e.file_type()?;
            if ft.is_symlink() {
                entries.push(RootEntry::Link(name, std::fs::read_link(e.path())?));
            } else if ft.is_dir() {
                entries.push(RootEntry::Dir(name));
            } else {
                entries.push(RootEntry::File(name));
            }
        }
        Ok(HostRoot { entries })
    }
}

/// A live template namespace holding the host skeleton at `root`.
#[derive(Debug)]
pub struct Template {
    user: Option<OwnedFd>,
    mnt: OwnedFd,
    root: PathBuf,
}

impl Template {
    /// Builds the skeleton once, in a helper process whose namespaces outlive it through our descriptors.
    pub fn create(host: &HostRoot, dir: &Path, shell: Option<&Path>) -> io::Result<Template> {
        let root = dir.join(format!("template-{}", std::process::id()));
        std::fs::create_dir_all(&root)?;
        let mut ops = Vec::new();
        skeleton(host, &root, shell, &mut ops)?;
        let prepared = Prepared {
            entry: Entry::Fresh {
                user_ns: user_maps()?,
            },
            new_root: cstr(&root)?,
            ops,
            workdir: None,
            ids: None,
        };
        let mut cmd = std::process::Command::new("cat");
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: `enter` makes only async-signal-safe system calls on prepared data.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || prepared.enter());
        }
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let opened = (|| -> io::Result<(Option<OwnedFd>, OwnedFd)> {
            let user = if unsafe_free_euid() == 0 {
                None
            } else {
                Some(std::fs::File::open(format!("/proc/{pid}/ns/user"))?.into())
            };
            let mnt = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))?.into();
            Ok((user, mnt))
        })();
        drop(child.stdin.take());
        let _ = child.wait();
        let (user, mnt) = opened?;
        Ok(Template { user, mnt, root })
    }
}

/// How a step gets its namespace.
#[derive(Debug)]
enum Entry {
    /// New namespaces built from scratch (the template itself, or when no template exists).
    Fresh { user_ns: Option<(CString, CString)> },
    /// Join the template and take a private copy.
    Template {
        user: Option<libc::c_int>,
        mnt: libc::c_int,
    },
}

/// Everything the child does, as C strings ready for system calls.
#[derive(Debug)]
pub struct Prepared {
    entry: Entry,
    new_root: CString,
    ops: Vec<Op>,
    /// Where to `chroot` and `chdir`; `None` for the template helper, which stays outside.
    workdir: Option<CString>,
    ids: Option<(libc::uid_t, libc::gid_t)>,
}

#[derive(Debug)]
enum Op {
    Mkdir(CString),
    Touch(CString),
    Symlink(CString, CString),
    Bind {
        src: CString,
        dst: CString,
        read_only: bool,
    },
}

fn cstr(p: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

/// uid and gid maps for a user namespace, when not root (root needs none).
fn user_maps() -> io::Result<Option<(CString, CString)>> {
    let euid = unsafe_free_euid();
    if euid == 0 {
        return Ok(None);
    }
    let egid = unsafe_free_egid();
    Ok(Some((
        cstr(format!("{euid} {euid} 1\n"))?,
        cstr(format!("{egid} {egid} 1\n"))?,
    )))
}

/// The host part of the root: each top-level entry of `/` re-created under `new_root`, and `shell`
/// bound over the target of `/bin/sh`.
fn skeleton(
    host: &HostRoot,
    new_root: &Path,
    shell: Option<&Path>,
    ops: &mut Vec<Op>,
) -> io::Result<()> {
    for e in &host.entries {
        let dst = new_root.join(e.name());
        match e {
            RootEntry::Dir(n) | RootEntry::File(n) => {
                let dir = matches!(e, RootEntry::Dir(_));
                ops.push(if dir {
                    Op::Mkdir(cstr(&dst)?)
                } else {
                    Op::Touch(cstr(&dst)?)
                });
                ops.push(Op::Bind {
                    src: cstr(Path::new("/").join(n))?,
                    dst: cstr(&dst)?,
                    read_only: false,
                });
            }
            RootEntry::Link(_, target) => ops.push(Op::Symlink(cstr(target)?, cstr(&dst)?)),
        }
    }
    if let Some(sh) = shell
        && let Ok(target) = std::fs::canonicalize("/bin/sh")
    {
        let dst = new_root.join(target.strip_prefix("/").unwrap_or(&target));
        ops.push(Op::Bind {
            src: cstr(sh)?,
            dst: cstr(dst)?,
            read_only: false,
        });
    }
    Ok(())
}

/// Prepares a step's sandbox: from `template` when there is one, else from scratch at `new_root`
/// (an empty host directory).
fn prepare(
    host: &HostRoot,
    template: Option<&Template>,
    new_root: &Path,
    binds: &[Bind],
    shell: Option<&Path>,
    workdir: &str,
    ids: Option<(u32, u32)>,
) -> io::Result<Prepared> {
    let mut ops = Vec::new();
    let (entry, new_root) = match template {
        Some(t) => (
            Entry::Template {
                user: t.user.as_ref().map(AsRawFd::as_raw_fd),
                mnt: t.mnt.as_raw_fd(),
            },
            t.root.as_path(),
        ),
        None => {
            skeleton(host, new_root, shell, &mut ops)?;
            (
                Entry::Fresh {
                    user_ns: user_maps()?,
                },
                new_root,
            )
        }
    };
    // Resolved as the step would, so `..` in a mount path cannot lead out of the new root.
    let inside =
        |p: &str| new_root.join(slipway_taskdir::layout::normalized(p).trim_start_matches('/'));
    let top: Vec<&str> = host.entries.iter().map(RootEntry::name).collect();
    let mut made: Vec<PathBuf> = Vec::new();
    // Directories that exist in the skeleton or on the host (inside a bound host directory) need no mkdir.
    let exists = |c: &Path, made: &[PathBuf]| -> bool {
        if c == new_root || made.iter().any(|m| m == c) {
            return true;
        }
        let rel = c.strip_prefix(new_root).unwrap_or(c);
        let first = rel
            .components()
            .next()
            .map(|x| x.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        top.contains(&first.as_str()) && Path::new("/").join(rel).is_dir()
    };
    let mut mkdirs = |p: &Path, ops: &mut Vec<Op>| -> io::Result<()> {
        let mut chain = Vec::new();
        let mut cur = Some(p);
        while let Some(c) = cur {
            if exists(c, &made) {
                break;
            }
            chain.push(c.to_path_buf());
            cur = c.parent();
        }
        for c in chain.into_iter().rev() {
            ops.push(Op::Mkdir(cstr(&c)?));
            made.push(c);
        }
        Ok(())
    };
    for b in binds {
        let dst = inside(&b.target);
        if b.host.is_dir() {
            mkdirs(&dst, &mut ops)?;
        } else {
            if let Some(parent) = dst.parent() {
                mkdirs(parent, &mut ops)?;
            }
            ops.push(Op::Touch(cstr(&dst)?));
        }
        ops.push(Op::Bind {
            src: cstr(&b.host)?,
            dst: cstr(&dst)?,
            read_only: b.read_only,
        });
    }
    mkdirs(&inside(workdir), &mut ops)?;
    let ids = if unsafe_free_euid() == 0 { ids } else { None };
    Ok(Prepared {
        entry,
        new_root: cstr(new_root)?,
        ops,
        workdir: Some(cstr(workdir)?),
        ids,
    })
}

fn unsafe_free_euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn unsafe_free_egid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: `path` is a valid C string and `bytes` a live slice.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl Prepared {
    /// Enters the sandbox. Runs in the forked child before `exec`: system calls only.
    pub fn enter(&self) -> io::Result<()> {
        let none = std::ptr::null::<libc::c_char>();
        // SAFETY: every pointer comes from a live CString owned by `self`, and the descriptors are
        // owned by the executor's template; these calls only change the calling (child) process.
        unsafe {
            match &self.entry {
                Entry::Fresh { user_ns } => {
                    if let Some((uid_map, gid_map)) = user_ns {
                        check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS))?;
                        write_file(c"/proc/self/setgroups", b"deny")?;
                        write_file(c"/proc/self/uid_map", uid_map.as_bytes())?;
                        write_file(c"/proc/self/gid_map", gid_map.as_bytes())?;
                    } else {
                        check(libc::unshare(libc::CLONE_NEWNS))?;
                    }
                    check(libc::mount(
                        none,
                        c"/".as_ptr(),
                        none,
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ))?;
                    check(libc::mount(
                        c"tmpfs".as_ptr(),
                        self.new_root.as_ptr(),
                        c"tmpfs".as_ptr(),
                        0,
                        c"mode=755".as_ptr().cast(),
                    ))?;
                }
                Entry::Template { user, mnt } => {
                    if let Some(u) = user {
                        check(libc::setns(*u, libc::CLONE_NEWUSER))?;
                    }
                    check(libc::setns(*mnt, libc::CLONE_NEWNS))?;
                    check(libc::unshare(libc::CLONE_NEWNS))?;
                }
            }
            for op in &self.ops {
                match op {
                    Op::Mkdir(p) => {
                        if libc::mkdir(p.as_ptr(), 0o777) == -1
                            && *libc::__errno_location() != libc::EEXIST
                        {
                            return Err(io::Error::last_os_error());
                        }
                    }
                    Op::Touch(p) => {
                        let fd = libc::open(p.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
                        if fd >= 0 {
                            libc::close(fd);
                        }
                    }
                    Op::Symlink(target, link) => {
                        libc::symlink(target.as_ptr(), link.as_ptr());
                    }
                    Op::Bind {
                        src,
                        dst,
                        read_only,
                    } => {
                        check(libc::mount(
                            src.as_ptr(),
                            dst.as_ptr(),
                            none,
                            libc::MS_BIND | libc::MS_REC,
                            std::ptr::null(),
                        ))?;
                        if *read_only {
                            check(libc::mount(
                                none,
                                dst.as_ptr(),
                                none,
                                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                                std::ptr::null(),
                            ))?;
                        }
                    }
                }
            }
            if let Some(workdir) = &self.workdir {
                check(libc::chroot(self.new_root.as_ptr()))?;
                check(libc::chdir(workdir.as_ptr()))?;
            }
            if let Some((uid, gid)) = self.ids {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
        }
        Ok(())
    }
}

/// True when a step can enter a sandbox prepared this way.
pub fn works(host: &HostRoot, template: Option<&Template>, scratch: &Path) -> bool {
    // Per process: concurrent slipway processes share the runtime directory.
    let new_root = scratch.join(format!("probe-root-{}", std::process::id()));
    if std::fs::create_dir_all(&new_root).is_err() {
        return false;
    }
    let Ok(prepared) = prepare(host, template, &new_root, &[], None, "/", None) else {
        return false;
    };
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg("test -d /proc/self");
    // SAFETY: `enter` makes only async-signal-safe system calls on prepared data.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || prepared.enter());
    }
    let ok = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let _ = std::fs::remove_dir(&new_root);
    ok
}

/// The sandbox steps run in: the host root, and the template when one could be built.
#[derive(Debug)]
pub struct Sandbox {
    host: HostRoot,
    template: Option<Template>,
}

impl Sandbox {
    /// A working sandbox under `runtime`, or `None` when this machine allows none.
    pub fn new(runtime: &Path, shell: Option<&Path>) -> Option<Sandbox> {
        let host = HostRoot::read().ok()?;
        if let Ok(t) = Template::create(&host, runtime, shell)
            && works(&host, Some(&t), runtime)
        {
            return Some(Sandbox {
                host,
                template: Some(t),
            });
        }
        works(&host, None, runtime).then_some(Sandbox {
            host,
            template: None,
        })
    }

    /// Prepares one step; `new_root` is used only without a template.
    pub fn prepare(
        &self,
        new_root: &Path,
        binds: &[Bind],
        shell: Option<&Path>,
        workdir: &str,
        ids: Option<(u32, u32)>,
    ) -> io::Result<Prepared> {
        prepare(
            &self.host,
            self.template.as_ref(),
            new_root,
            binds,
            shell,
            workdir,
            ids,
        )
    }
}

impl Drop for Template {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.root);
    }
}
