//! The framed protocol between the supervisor and a sandbox host: a 4-byte
//! little-endian length, then that many bytes of JSON.

use citadel_analyzer::Language;
use citadel_sandbox::{Capability, HostCall, HostError, Limits, LogLine, RunOutcome};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest frame either side accepts.
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// Supervisor → host. Messages are externally tagged: an internally tagged
/// enum would buffer its content, which `RawValue` results do not survive.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ToHost {
    Run(RunJob),
    Reply {
        run: u64,
        call: u32,
        result: Result<Value, HostError>,
    },
    Cancel {
        run: u64,
    },
    /// A sign of life, please: answered by the host's reading thread, so a
    /// `Pong` means the host works even if one isolate thread is stuck.
    Ping {
        seq: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RunJob {
    pub run: u64,
    pub source: String,
    pub language: Language,
    pub input_json: String,
    pub limits: Limits,
    pub grants: Vec<Capability>,
    /// The isolate thread to run on, chosen by the supervisor so it knows
    /// which runs share a thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<usize>,
    /// Fault injection for tests; honoured only by hosts started with
    /// `--allow-faults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
}

/// Ways a host can be told to misbehave, to test the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Write bytes that are not a frame.
    Garbage,
    /// Stop responding (block the thread that reads the supervisor's frames).
    Hang,
    /// Abort the process.
    Abort,
    /// Block the run's isolate thread, as a native operation that the
    /// interrupt handler cannot stop would.
    Block,
}

/// Host → supervisor.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ToSupervisor {
    Ready,
    Pong {
        seq: u64,
    },
    Call {
        run: u64,
        call: u32,
        request: HostCall,
    },
    /// Lines the run logged since its last `Logs`, sent while it awaits.
    Logs {
        run: u64,
        lines: Vec<LogLine>,
    },
    Done {
        run: u64,
        outcome: RunOutcome,
    },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is larger than allowed")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Encodes a message as one frame.
pub(crate) fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut buf = vec![0u8; 4];
    serde_json::to_writer(&mut buf, msg).expect("protocol messages serialise");
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf
}

/// Reads one frame; `None` at a clean end of stream.
pub(crate) async fn read<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf).await?;
    Ok(Some(serde_json::from_slice(buf)?))
}

/// Reads one frame from a blocking reader; `None` at a clean end of stream.
pub(crate) fn read_blocking<R: std::io::Read, T: DeserializeOwned>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf)?;
    Ok(Some(serde_json::from_slice(buf)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_garbage_is_an_error() {
        let msg = ToHost::Cancel { run: 7 };
        let bytes = encode(&msg);
        let mut buf = Vec::new();
        let got: Option<ToHost> = read(&mut &bytes[..], &mut buf).await.unwrap();
        assert!(matches!(got, Some(ToHost::Cancel { run: 7 })));
        let empty: Option<ToHost> = read(&mut &[][..], &mut buf).await.unwrap();
        assert!(empty.is_none());
        let garbage = b"\x05\x00\x00\x00hello";
        let err = read::<_, ToHost>(&mut &garbage[..], &mut buf)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");
        let huge = u32::MAX.to_le_bytes();
        let err = read::<_, ToHost>(&mut &huge[..], &mut buf)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(_)), "{err}");
    }

    #[test]
    fn blocking_reads_agree_with_async_ones() {
        let mut bytes = encode(&ToHost::Cancel { run: 7 });
        bytes.extend(encode(&ToHost::Cancel { run: 8 }));
        let mut buf = Vec::new();
        let mut r = &bytes[..];
        let first: Option<ToHost> = read_blocking(&mut r, &mut buf).unwrap();
        assert!(matches!(first, Some(ToHost::Cancel { run: 7 })));
        let second: Option<ToHost> = read_blocking(&mut r, &mut buf).unwrap();
        assert!(matches!(second, Some(ToHost::Cancel { run: 8 })));
        let end: Option<ToHost> = read_blocking(&mut r, &mut buf).unwrap();
        assert!(end.is_none());
        let huge = u32::MAX.to_le_bytes();
        let err = read_blocking::<_, ToHost>(&mut &huge[..], &mut buf).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(_)), "{err}");
    }
}
