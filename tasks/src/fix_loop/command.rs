//! Runs one check command in the scratch tree: `sh -c COMMAND` in a process group of its own, stdin closed,
//! stdout and stderr on one pipe (the order a terminal would show), the output kept up to a bound. On timeout
//! or cancellation the whole group is killed with SIGKILL, so a test runner's children die with it; after a
//! normal exit the group is killed too, so nothing the command left running holds the pipe open.

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use qwen_engine::CancelToken;

/// Output kept from the start of a command's output.
const HEAD_BYTES: usize = 256 * 1024;
/// Output kept from the end (test summaries come last).
const TAIL_BYTES: usize = 256 * 1024;
/// How often the child is polled for exit, timeout and cancellation.
const POLL: Duration = Duration::from_millis(20);
/// How long to wait for the pipe to close once the group is gone (a process that left the group may hold it).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The exit status `sh` reports for a command it cannot find.
pub const EXIT_NOT_FOUND: i32 = 127;

/// What one command did.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRun {
    /// The command line as given.
    pub command: String,
    /// The exit code; `None` when it was killed (timeout, cancellation) or died of a signal.
    pub exit_code: Option<i32>,
    /// Killed at its timeout.
    pub timed_out: bool,
    /// Killed because the request was cancelled.
    pub cancelled: bool,
    /// Wall time.
    pub duration: Duration,
    /// Its output (stdout and stderr interleaved), lossy UTF-8; the middle is cut beyond 512 KiB.
    pub output: String,
}

impl CommandRun {
    /// Exit code 0 within the timeout.
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.cancelled
    }
}

/// Runs `command` with `sh -c` in `dir`, with extra environment variables `env`, for at most `timeout`.
pub fn run_command(
    command: &str,
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
    cancel: &CancelToken,
) -> std::io::Result<CommandRun> {
    let started = Instant::now();
    let (reader, writer) = std::io::pipe()?;
    let mut builder = Command::new("sh");
    builder
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    for (name, value) in env {
        builder.env(name, value);
    }
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut builder, 0);
    let mut child = builder.spawn()?;
    // The builder holds the pipe's write ends: drop them, or the reader never sees the end of the output.
    drop(builder);
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(read_bounded(reader));
    });

    let (mut timed_out, mut cancelled) = (false, false);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if cancel.is_cancelled() {
            cancelled = true;
        } else if started.elapsed() >= timeout {
            timed_out = true;
        }
        if timed_out || cancelled {
            kill_group(&mut child);
            break child.wait()?;
        }
        std::thread::sleep(POLL);
    };
    kill_group(&mut child);
    let output = receiver.recv_timeout(DRAIN_GRACE).unwrap_or_else(|_| {
        "[the output pipe stayed open: a process left the command's group]".into()
    });
    Ok(CommandRun {
        command: command.to_string(),
        exit_code: if timed_out || cancelled {
            None
        } else {
            status.code()
        },
        timed_out,
        cancelled,
        duration: started.elapsed(),
        output,
    })
}

/// SIGKILL to the child's process group (the child leads it: `process_group(0)`).
#[cfg(unix)]
fn kill_group(child: &mut std::process::Child) {
    let Ok(group) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours. A negative pid addresses the process
    // group the child leads; the group id cannot be reused while any member lives, and ESRCH (no members
    // left) is harmless.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill_group(child: &mut std::process::Child) {
    let _ = child.kill();
}

/// Reads the pipe to its end, keeping the first [`HEAD_BYTES`] and the last [`TAIL_BYTES`].
fn read_bounded(mut reader: impl Read) -> String {
    let mut head = Vec::new();
    let mut tail: VecDeque<u8> = VecDeque::new();
    let mut dropped = 0usize;
    let mut buffer = [0u8; 8192];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &buffer[..n];
        let room = HEAD_BYTES.saturating_sub(head.len());
        if room > 0 {
            let taken = room.min(chunk.len());
            head.extend_from_slice(&chunk[..taken]);
            chunk = &chunk[taken..];
        }
        tail.extend(chunk);
        while tail.len() > TAIL_BYTES {
            tail.pop_front();
            dropped += 1;
        }
    }
    let mut text = String::from_utf8_lossy(&head).into_owned();
    if dropped > 0 {
        text.push_str(&format!("\n[… {dropped} bytes of output left out …]\n"));
    }
    text.push_str(&String::from_utf8_lossy(tail.make_contiguous()));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(command: &str, timeout: Duration) -> CommandRun {
        let dir = tempfile::tempdir().expect("temp");
        run_command(command, dir.path(), &[], timeout, &CancelToken::new()).expect("runs")
    }

    #[test]
    fn exit_codes_and_interleaved_output() {
        let ok = run(
            "echo out; echo err >&2; echo again",
            Duration::from_secs(20),
        );
        assert!(ok.passed());
        assert_eq!(ok.output, "out\nerr\nagain\n");
        let failed = run("echo nope; exit 3", Duration::from_secs(20));
        assert_eq!((failed.exit_code, failed.passed()), (Some(3), false));
        let missing = run("no-such-command-qwen-ls", Duration::from_secs(20));
        assert_eq!(missing.exit_code, Some(EXIT_NOT_FOUND));
    }

    #[test]
    fn a_hanging_command_and_its_children_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().expect("temp");
        let marker = dir.path().join("child-survived");
        // The child sleeps in the background and would write the marker after 3 s if it survived.
        let command = format!("(sleep 3; touch '{}') & sleep 60", marker.display());
        let started = Instant::now();
        let run = run_command(
            &command,
            dir.path(),
            &[],
            Duration::from_millis(500),
            &CancelToken::new(),
        )
        .expect("runs");
        assert!(run.timed_out && run.exit_code.is_none() && !run.passed());
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(3500));
        assert!(
            !marker.exists(),
            "the background child outlived the timeout"
        );
    }

    #[test]
    fn cancellation_kills_the_command() {
        let dir = tempfile::tempdir().expect("temp");
        let cancel = CancelToken::new();
        let trigger = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            trigger.cancel();
        });
        let run = run_command(
            "sleep 30",
            dir.path(),
            &[],
            Duration::from_secs(60),
            &cancel,
        )
        .expect("runs");
        assert!(run.cancelled && run.duration < Duration::from_secs(10));
    }

    #[test]
    fn long_output_keeps_its_head_and_tail() {
        let text = read_bounded(std::io::Cursor::new(
            [b"first\n".as_slice(), &vec![b'x'; 600 * 1024], b"\nlast\n"].concat(),
        ));
        assert!(text.starts_with("first\n") && text.ends_with("\nlast\n"));
        assert!(text.contains("bytes of output left out"));
        assert!(text.len() < 520 * 1024);
    }
}
