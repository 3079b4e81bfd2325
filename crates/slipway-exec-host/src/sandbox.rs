//! A per-step mount namespace whose root is the host's, plus Tekton's paths (`/workspace`, `/tekton/...`).
//!
//! Everything is prepared before `fork`; the child only makes system calls on prepared data,
//! because a forked child of a threaded program may not allocate.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One bind mount into the sandbox.
#[derive(Debug, Clone)]
pub struct Bind {
    /// Path on the host.
    pub host: PathBuf,
    /// Path inside the sandbox.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

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

/// Everything the child does, as C strings ready for system calls.
#[derive(Debug)]
pub struct Prepared {
    user_ns: Option<(CString, CString)>,
    new_root: CString,
    ops: Vec<Op>,
    workdir: CString,
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

/// Prepares a sandbox rooted at `new_root` (an empty host directory).
/// `shell` is bound over the host's `/bin/sh` target inside the sandbox.
pub fn prepare(
    root: &HostRoot,
    new_root: &Path,
    binds: &[Bind],
    shell: Option<&Path>,
    workdir: &str,
    ids: Option<(u32, u32)>,
) -> io::Result<Prepared> {
    let euid = unsafe_free_euid();
    let user_ns = if euid == 0 {
        None
    } else {
        let egid = unsafe_free_egid();
        Some((
            cstr(format!("{euid} {euid} 1\n"))?,
            cstr(format!("{egid} {egid} 1\n"))?,
        ))
    };
    let inside = |p: &str| new_root.join(p.trim_start_matches('/'));
    let mut ops = Vec::new();
    let mut made: Vec<PathBuf> = Vec::new();
    let top: Vec<String> = root
        .entries
        .iter()
        .map(|e| match e {
            RootEntry::Dir(n) | RootEntry::File(n) | RootEntry::Link(n, _) => n.clone(),
        })
        .collect();
    for e in &root.entries {
        match e {
            RootEntry::Dir(n) => {
                let dst = new_root.join(n);
                ops.push(Op::Mkdir(cstr(&dst)?));
                ops.push(Op::Bind {
                    src: cstr(Path::new("/").join(n))?,
                    dst: cstr(&dst)?,
                    read_only: false,
                });
                made.push(dst);
            }
            RootEntry::File(n) => {
                let dst = new_root.join(n);
                ops.push(Op::Touch(cstr(&dst)?));
                ops.push(Op::Bind {
                    src: cstr(Path::new("/").join(n))?,
                    dst: cstr(&dst)?,
                    read_only: false,
                });
            }
            RootEntry::Link(n, target) => {
                ops.push(Op::Symlink(cstr(target)?, cstr(new_root.join(n))?))
            }
        }
    }
    let mut mkdirs = |p: &Path, ops: &mut Vec<Op>| -> io::Result<()> {
        let mut chain = Vec::new();
        let mut cur = Some(p);
        while let Some(c) = cur {
            if c == new_root || made.iter().any(|m| m == c) {
                break;
            }
            // Inside a bound host directory the path may already exist on the host.
            let rel = c.strip_prefix(new_root).unwrap_or(c);
            let first = rel
                .components()
                .next()
                .map(|x| x.as_os_str().to_string_lossy().into_owned())
                .unwrap_or_default();
            if top.contains(&first) && Path::new("/").join(rel).is_dir() {
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
    if let Some(sh) = shell
        && let Ok(target) = std::fs::canonicalize("/bin/sh")
    {
        ops.push(Op::Bind {
            src: cstr(sh)?,
            dst: cstr(inside(&target.to_string_lossy()))?,
            read_only: false,
        });
    }
    mkdirs(&inside(workdir), &mut ops)?;
    Ok(Prepared {
        user_ns,
        new_root: cstr(new_root)?,
        ops,
        workdir: cstr(workdir)?,
        ids: if euid == 0 { ids } else { None },
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
        // SAFETY: every pointer comes from a live CString owned by `self`; these calls only
        // change the calling (child) process and allocate nothing.
        unsafe {
            if let Some((uid_map, gid_map)) = &self.user_ns {
                check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS))?;
                write_file(c"/proc/self/setgroups", b"deny")?;
                write_file(c"/proc/self/uid_map", uid_map.as_bytes())?;
                write_file(c"/proc/self/gid_map", gid_map.as_bytes())?;
            } else {
                check(libc::unshare(libc::CLONE_NEWNS))?;
            }
            let none = std::ptr::null::<libc::c_char>();
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
            check(libc::chroot(self.new_root.as_ptr()))?;
            check(libc::chdir(self.workdir.as_ptr()))?;
            if let Some((uid, gid)) = self.ids {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
        }
        Ok(())
    }
}

/// True when this process may create the namespaces the sandbox needs.
pub fn available(root: &HostRoot, scratch: &Path) -> bool {
    // Per process: concurrent slipway processes share the runtime directory.
    let new_root = scratch.join(format!("probe-root-{}", std::process::id()));
    if std::fs::create_dir_all(&new_root).is_err() {
        return false;
    }
    let Ok(prepared) = prepare(root, &new_root, &[], None, "/", None) else {
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
