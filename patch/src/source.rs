//! Reads the files a patch targets and refuses the ones it must not touch: binary files (a NUL byte) and
//! files that are not valid UTF-8. The exact bytes are kept: they are what the patch was computed against,
//! and `--apply` writes only if the file still holds them.

use std::io;
use std::path::Path;

use thiserror::Error;

/// A target file as read before patching.
#[derive(Debug, Clone)]
pub(crate) struct Original {
    pub bytes: Vec<u8>,
    pub text: String,
}

/// Why a target file's content was refused.
#[derive(Debug, Error)]
pub enum SourceError {
    /// A NUL byte: binary files are never edited.
    #[error(
        "`{path}` is a binary file (NUL byte at offset {offset}); binary files are not edited"
    )]
    Binary {
        /// Root-relative path.
        path: String,
        /// Byte offset of the first NUL.
        offset: usize,
    },
    /// Not valid UTF-8: the edit format is text, and a lossy round trip would corrupt the file.
    #[error("`{path}` is not valid UTF-8 (first invalid byte at line {line}, byte offset {offset}); it is not edited")]
    NotUtf8 {
        /// Root-relative path.
        path: String,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The file could not be read (an environment problem).
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// Root-relative path.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
}

/// Reads `abs`; `Ok(None)` when it does not exist.
pub(crate) fn read_original(abs: &Path, rel: &str) -> Result<Option<Original>, SourceError> {
    let bytes = match std::fs::read(abs) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SourceError::Io {
                path: rel.to_string(),
                source,
            })
        }
    };
    decode(bytes, rel).map(Some)
}

/// Checks that `bytes` are editable text.
pub(crate) fn decode(bytes: Vec<u8>, rel: &str) -> Result<Original, SourceError> {
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(SourceError::Binary {
            path: rel.to_string(),
            offset,
        });
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Original {
            bytes: text.as_bytes().to_vec(),
            text,
        }),
        Err(err) => {
            let offset = err.utf8_error().valid_up_to();
            let bytes = err.as_bytes();
            let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(SourceError::NotUtf8 {
                path: rel.to_string(),
                line,
                offset,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_binary_and_invalid_utf8() {
        assert!(matches!(
            decode(b"a\0b".to_vec(), "x"),
            Err(SourceError::Binary { offset: 1, .. })
        ));
        assert!(matches!(
            decode(b"a\n\xffb".to_vec(), "x"),
            Err(SourceError::NotUtf8 {
                line: 2,
                offset: 2,
                ..
            })
        ));
        assert_eq!(
            decode("é\n".as_bytes().to_vec(), "x").expect("utf8").text,
            "é\n"
        );
    }
}
