//! Printing a command's result to stdout. `println!` panics when the reader has gone away
//! (`qwen-ls isa --supported | head -n 1`); a command-line tool should stop quietly instead, as the tools
//! upstream of `head` do. Other write errors end the process with the usage-or-environment exit code.

use std::fmt;
use std::io::{ErrorKind, Write};

/// Writes formatted text to stdout, ending the process when stdout cannot be written (see the module doc).
pub fn write(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        exit_on_write_error(&err);
    }
}

/// Ends the process after a failed write to stdout: quietly with success when the reader closed the pipe
/// (the reader has all it wanted), with an error message otherwise.
pub fn exit_on_write_error(err: &std::io::Error) -> ! {
    if err.kind() == ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to stdout: {err}");
    std::process::exit(i32::from(super::EXIT_USAGE_OR_ENVIRONMENT));
}

/// `print!` to stdout without the panic on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::stdout::write(format_args!($($arg)*)) };
}

/// `println!` to stdout without the panic on a closed pipe.
macro_rules! outln {
    () => { $crate::cli::stdout::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::stdout::write(format_args!("{}\n", format_args!($($arg)*))) };
}
