//! Where logs go: always stderr (never stdout — in server mode stdout is the LSP stream), plus a file that can
//! be chosen while running (the language server's `logFile` setting).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::fmt::MakeWriter;

static FILE: Mutex<Option<(PathBuf, File)>> = Mutex::new(None);

/// Also appends every log line to `path` (`None`: stop). Re-setting the same path keeps the open file.
pub fn set_log_file(path: Option<&Path>) -> io::Result<()> {
    let mut current = FILE.lock().unwrap_or_else(|e| e.into_inner());
    match path {
        None => *current = None,
        Some(path) if current.as_ref().is_some_and(|(p, _)| p == path) => {}
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            *current = Some((path.to_path_buf(), file));
        }
    }
    Ok(())
}

/// The `tracing_subscriber` writer: stderr plus the optional file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tee;

/// One log event's writer (see [`Tee`]).
#[derive(Debug)]
pub struct TeeWriter;

impl Write for TeeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some((_, file)) = FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            // A full disk must not take the server down: the file is best effort.
            let _ = file.write_all(buf);
        }
        // So is stderr: an editor that closed it must not make logging fail.
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Tee {
    type Writer = TeeWriter;

    fn make_writer(&'a self) -> TeeWriter {
        TeeWriter
    }
}
