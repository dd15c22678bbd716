//! The framed protocol between the supervisor and a sandbox host: a 4-byte
//! little-endian length, then that many bytes of JSON.
//!
//! A host has a control socket (`Ready`, `Ping`/`Pong`, and the faults of
//! the whole host) and one socket per isolate thread (`Run`, `Reply`,
//! `Cancel` towards it; `Call`, `Logs`, `Done` back), so a run's frames
//! reach the thread that runs it directly.

use citadel_analyzer::Language;
use citadel_sandbox::{Capability, HostCall, HostError, Limits, LogLine, RunOutcome};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest frame either side accepts.
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// The deepest JSON a frame may nest: a few levels of message around the
/// deepest value either side makes (the sandbox parses capability arguments,
/// and serde_json any value, at most 128 levels deep).
pub(crate) const MAX_FRAME_DEPTH: usize = 160;

/// Supervisor → host. Messages are externally tagged: an internally tagged
/// enum would buffer its content, which `RawValue` results do not survive.
///
/// `Run` is much larger than the others, and stays unboxed: a message lives
/// only from decoding to its dispatch, and a box would cost an allocation
/// on every run's hot path to save bytes on a stack frame.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
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
    /// A sign of life, please: answered by the host's main thread on the
    /// control socket, so a `Pong` means the host works even if one isolate
    /// thread is stuck.
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
    /// Who the host serves now (the pool's opaque tenant key; empty when
    /// tenants share hosts). A host that goes on to serve another drops
    /// the warm contexts it holds first.
    #[serde(default)]
    pub scope: String,
    /// The warm context this run may reuse (`Isolation::Version`): one
    /// version of one tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<String>,
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
    #[error("frame nests deeper than {MAX_FRAME_DEPTH} levels")]
    TooDeep,
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
    decode(buf).map(Some)
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
    decode(buf).map(Some)
}

/// Parses a frame. serde_json refuses values nested past 128 levels, and a
/// frame wraps its values in a few levels of message, so a capability
/// argument or reply the sandbox accepted could make a frame the peer
/// refused — and a host that sends a refused frame is killed with every
/// run on it. Such frames are parsed again without serde_json's limit once
/// a linear scan shows they nest no deeper than [`MAX_FRAME_DEPTH`].
fn decode<T: DeserializeOwned>(buf: &[u8]) -> Result<T, FrameError> {
    match serde_json::from_slice(buf) {
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => {
            if json_depth(buf) > MAX_FRAME_DEPTH {
                return Err(FrameError::TooDeep);
            }
            let mut de = serde_json::Deserializer::from_slice(buf);
            de.disable_recursion_limit();
            let value = T::deserialize(&mut de)?;
            de.end()?;
            Ok(value)
        }
        other => Ok(other?),
    }
}

/// How deeply arrays and objects nest in JSON text (strings skipped).
fn json_depth(buf: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in buf {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
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

    fn nested(depth: usize) -> Value {
        (0..depth).fold(Value::from(1), |v, _| Value::Array(vec![v]))
    }

    #[test]
    fn frames_carry_values_as_deep_as_serde_json_makes_them() {
        // 128 levels: what serde_json parses, and so what the sandbox sends
        // as a capability argument; the message around it adds four more.
        let call = ToSupervisor::Call {
            run: 1,
            call: 2,
            request: HostCall::Echo { value: nested(127) },
        };
        let mut buf = Vec::new();
        let got: ToSupervisor = read_blocking(&mut &encode(&call)[..], &mut buf)
            .unwrap()
            .unwrap();
        assert!(matches!(
            got,
            ToSupervisor::Call { request: HostCall::Echo { value }, .. } if value == nested(127)
        ));
        let reply = ToHost::Reply {
            run: 1,
            call: 2,
            result: Ok(nested(128)),
        };
        let got: ToHost = read_blocking(&mut &encode(&reply)[..], &mut buf)
            .unwrap()
            .unwrap();
        assert!(matches!(got, ToHost::Reply { result: Ok(v), .. } if v == nested(128)));
    }

    #[test]
    fn a_frame_nested_past_the_limit_is_refused_without_recursing() {
        let deep = "[".repeat(1_000_000);
        let frame =
            format!(r#"{{"call":{{"run":1,"call":2,"request":{{"op":"echo","value":{deep}"#);
        let mut bytes = (frame.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(frame.as_bytes());
        let err = read_blocking::<_, ToSupervisor>(&mut &bytes[..], &mut Vec::new()).unwrap_err();
        assert!(matches!(err, FrameError::TooDeep), "{err}");
        assert_eq!(json_depth(br#"{"a":"[[[{{","b":[["\"[",{}]]}"#), 4);
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
