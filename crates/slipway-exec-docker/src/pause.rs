//! The pod's network holder: a container that only waits, so sidecars and steps can share one
//! network namespace while steps come and go. Its image is built here from a tiny static
//! program (no registry has to hold a pause image, and none may be reachable).

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

/// The pause image; bump the version in the name when the program changes (the tag stays
/// `latest`: Podman's import ignores a requested tag).
pub const IMAGE: &str = "slipway.local/pause-v1:latest";

/// A static ELF executable for this machine's architecture that blocks forever: `pause(2)` in a
/// loop on x86-64, `ppoll(NULL, 0, NULL, NULL)` in a loop on AArch64 (which has no `pause`).
fn program() -> Option<Vec<u8>> {
    let (machine, code): (u16, &[u8]) = match std::env::consts::ARCH {
        "x86_64" => (
            0x3e,
            &[
                0xb8, 0x22, 0x00, 0x00, 0x00, // mov eax, 34 (pause)
                0x0f, 0x05, // syscall
                0xeb, 0xf7, // jmp back to mov
            ],
        ),
        "aarch64" => (
            0xb7,
            &[
                0x00, 0x00, 0x80, 0xd2, // mov x0, #0
                0x01, 0x00, 0x80, 0xd2, // mov x1, #0
                0x02, 0x00, 0x80, 0xd2, // mov x2, #0
                0x03, 0x00, 0x80, 0xd2, // mov x3, #0
                0x28, 0x09, 0x80, 0xd2, // mov x8, #73 (ppoll)
                0x01, 0x00, 0x00, 0xd4, // svc #0
                0xfa, 0xff, 0xff, 0x17, // b back to the first mov
            ],
        ),
        _ => return None,
    };
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let size = HEADERS + code.len() as u64;
    let mut elf = Vec::with_capacity(size as usize);
    // ELF header: 64-bit, little-endian, version 1, System V ABI.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&machine.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // version
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers offset
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    elf.extend_from_slice(&64u16.to_le_bytes()); // header size
    elf.extend_from_slice(&56u16.to_le_bytes()); // program header size
    elf.extend_from_slice(&1u16.to_le_bytes()); // one program header
    elf.extend_from_slice(&[0; 6]); // no sections
    // One loadable, readable and executable segment: the whole file.
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R + X
    elf.extend_from_slice(&0u64.to_le_bytes()); // offset
    elf.extend_from_slice(&BASE.to_le_bytes()); // vaddr
    elf.extend_from_slice(&BASE.to_le_bytes()); // paddr
    elf.extend_from_slice(&size.to_le_bytes()); // file size
    elf.extend_from_slice(&size.to_le_bytes()); // memory size
    elf.extend_from_slice(&0x1000u64.to_le_bytes()); // alignment
    elf.extend_from_slice(code);
    Some(elf)
}

/// A root filesystem tarball holding `/pause`.
fn rootfs() -> Result<Vec<u8>, String> {
    let program = program().ok_or_else(|| {
        format!(
            "sidecars need a pause program, which slipway has for x86_64 and aarch64, not {}",
            std::env::consts::ARCH
        )
    })?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(program.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(&mut header, "pause", program.as_slice())
        .map_err(|e| e.to_string())?;
    tar.into_inner().map_err(|e| e.to_string())
}

/// Makes sure the pause image exists in the daemon; the message reads after "failed to".
pub async fn ensure_image(docker: &Docker) -> Result<(), String> {
    if docker.inspect_image(IMAGE).await.is_ok() {
        return Ok(());
    }
    let (repo, tag) = IMAGE.rsplit_once(':').unwrap_or((IMAGE, "latest"));
    // `docker import`: a root filesystem tarball becomes a one-layer image.
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(vec!["ENTRYPOINT [\"/pause\"]".to_string()])
        .build();
    let body = bollard::body_full(rootfs()?.into());
    let mut stream = docker.create_image(Some(options), Some(body), None);
    while let Some(item) = stream.next().await {
        item.map_err(|e| format!("build the pause image: {}", crate::container::message(e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_is_a_runnable_static_executable() {
        let Some(elf) = program() else { return };
        assert_eq!(&elf[..4], b"\x7fELF");
        let dir = std::env::temp_dir().join(format!("slipway-pause-{}", std::process::id()));
        std::fs::write(&dir, &elf).expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // It must still be running after a moment (it blocks), then die on SIGKILL.
        let mut child = std::process::Command::new(&dir)
            .spawn()
            .expect("spawn pause");
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(child.try_wait().expect("wait").is_none(), "pause exited");
        child.kill().expect("kill");
        let status = child.wait().expect("wait");
        let _ = std::fs::remove_file(&dir);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }
}
