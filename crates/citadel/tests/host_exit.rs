//! A sandbox host started by hand (no jail) under its own seccomp allow
//! list: it says it is ready on its control socket, and when the supervisor
//! closes its sockets it exits with status 0 — not killed by its filter for
//! a system call made on the way out.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::time::Duration;

/// Starts `citadel sandbox-host` with the control socket at 3 and one lane
/// per isolate thread from 5 on; returns the supervisor's ends.
fn start(threads: usize, seccomp: bool) -> (std::process::Child, UnixStream, Vec<UnixStream>) {
    let (control, control_theirs) = UnixStream::pair().unwrap();
    let lanes: Vec<(UnixStream, UnixStream)> =
        (0..threads).map(|_| UnixStream::pair().unwrap()).collect();
    let mut wanted = vec![(control_theirs.as_raw_fd(), 3)];
    wanted.extend(
        lanes
            .iter()
            .enumerate()
            .map(|(i, (_, theirs))| (theirs.as_raw_fd(), 5 + i as i32)),
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_citadel"));
    command
        .args(["sandbox-host", "--isolate-threads", &threads.to_string()])
        .env("CITADEL_HOST_SECCOMP", if seccomp { "1" } else { "0" });
    // SAFETY: dup2 and fcntl only, in the child before exec.
    unsafe {
        command.pre_exec(move || {
            for (i, (from, _)) in wanted.iter().enumerate() {
                if libc::dup2(*from, 100 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, (_, to)) in wanted.iter().enumerate() {
                if libc::dup2(100 + i as i32, *to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    drop(control_theirs);
    let lanes = lanes.into_iter().map(|(ours, _)| ours).collect();
    (child, control, lanes)
}

fn wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    for _ in 0..500 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("the host did not exit within 5 s");
}

#[test]
fn a_closed_host_exits_cleanly_under_its_allow_list() {
    // SAFETY: plain system call.
    let root = unsafe { libc::geteuid() } == 0;
    for threads in [1, 3] {
        let (mut child, mut control, lanes) = start(threads, root);
        control
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut len = [0u8; 4];
        control.read_exact(&mut len).unwrap();
        let mut frame = vec![0u8; u32::from_le_bytes(len) as usize];
        control.read_exact(&mut frame).unwrap();
        assert_eq!(String::from_utf8_lossy(&frame), r#""ready""#);
        // As the supervisor closes a host: the lanes, then the control socket.
        drop(lanes);
        std::thread::sleep(Duration::from_millis(100));
        control.flush().unwrap();
        drop(control);
        let status = wait(&mut child);
        assert_eq!(
            (status.code(), status.signal()),
            (Some(0), None),
            "{threads} threads"
        );
    }
}
