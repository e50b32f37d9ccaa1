//! The cache's binary encoding: LEB128 varints and length-prefixed strings, hand-written so that the index's
//! core types need no serde derives and decoding never allocates more than the input can justify.

use qwen_syntax::{Definition, DefinitionKind, Import, Reference, ReferenceKind};

use super::windows::Window;
use super::FileSymbols;

const DEFINITION_KINDS: [DefinitionKind; 15] = [
    DefinitionKind::Function,
    DefinitionKind::Method,
    DefinitionKind::Class,
    DefinitionKind::Struct,
    DefinitionKind::Enum,
    DefinitionKind::Union,
    DefinitionKind::Variant,
    DefinitionKind::Interface,
    DefinitionKind::Type,
    DefinitionKind::Impl,
    DefinitionKind::Module,
    DefinitionKind::Macro,
    DefinitionKind::Constant,
    DefinitionKind::Variable,
    DefinitionKind::Other,
];
const REFERENCE_KINDS: [ReferenceKind; 6] = [
    ReferenceKind::Call,
    ReferenceKind::Type,
    ReferenceKind::Class,
    ReferenceKind::Implementation,
    ReferenceKind::Import,
    ReferenceKind::Other,
];

/// Malformed input (truncated, or a value out of range).
#[derive(Debug)]
pub struct DecodeError(pub &'static str);

/// Appends values to a byte buffer.
#[derive(Default)]
pub struct Writer {
    /// The encoded bytes.
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn u64(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    pub fn u32(&mut self, value: u32) {
        self.u64(u64::from(value));
    }

    pub fn fixed64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub fn str(&mut self, value: &str) {
        self.u64(value.len() as u64);
        self.bytes.extend_from_slice(value.as_bytes());
    }

    pub fn symbols(
        &mut self,
        definitions: &[Definition],
        references: &[Reference],
        imports: &[Import],
        windows: &[Window],
    ) {
        self.u64(definitions.len() as u64);
        for d in definitions {
            self.str(&d.name);
            self.u32(kind_code(&DEFINITION_KINDS, d.kind));
            self.u32(d.start_byte);
            self.u32(d.end_byte - d.start_byte);
            self.u32(d.name_byte - d.start_byte);
            self.u32(d.start_line);
            self.u32(d.end_line - d.start_line);
            self.str(d.scope.as_deref().unwrap_or(""));
            self.str(&d.signature);
        }
        self.u64(references.len() as u64);
        let mut previous = 0;
        for r in references {
            self.str(&r.name);
            self.u32(kind_code(&REFERENCE_KINDS, r.kind));
            // References are sorted by position: store deltas, mostly one byte.
            self.u32(r.start_byte.wrapping_sub(previous));
            self.u32(r.end_byte - r.start_byte);
            self.u32(r.line);
            previous = r.start_byte;
        }
        self.u64(imports.len() as u64);
        for i in imports {
            self.str(&i.path);
            self.u32(i.start_byte);
            self.u32(i.end_byte - i.start_byte);
            self.u32(i.line);
        }
        self.u64(windows.len() as u64);
        for w in windows {
            self.u32(w.start_line);
            self.u32(w.end_line - w.start_line);
            self.u64(w.terms.len() as u64);
            for &t in w.terms.iter() {
                self.bytes.extend_from_slice(&t.to_le_bytes());
            }
        }
    }
}

/// Reads values back in the order they were written.
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.position >= self.bytes.len()
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.position)
                .ok_or(DecodeError("truncated varint"))?;
            self.position += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError("varint too long"))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.u64()?).map_err(|_| DecodeError("value over u32"))
    }

    pub fn fixed64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    /// A count of items that each take at least `min_item_bytes`: rejects counts the input cannot hold, so a
    /// corrupt length never triggers a huge allocation.
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let count = usize::try_from(self.u64()?).map_err(|_| DecodeError("count overflow"))?;
        let remaining = self.bytes.len() - self.position;
        if count.saturating_mul(min_item_bytes.max(1)) > remaining {
            return Err(DecodeError("count larger than input"));
        }
        Ok(count)
    }

    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.count(1)?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError("invalid UTF-8 string"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .position
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(DecodeError("truncated"))?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    pub fn symbols(&mut self) -> Result<FileSymbols, DecodeError> {
        let mut symbols = FileSymbols::default();
        let count = self.count(9)?;
        symbols.definitions.reserve(count);
        for _ in 0..count {
            let name = self.str()?.into();
            let kind = *DEFINITION_KINDS
                .get(self.u32()? as usize)
                .ok_or(DecodeError("definition kind"))?;
            let start_byte = self.u32()?;
            let end_byte = start_byte.saturating_add(self.u32()?);
            let name_byte = start_byte.saturating_add(self.u32()?);
            let start_line = self.u32()?;
            let end_line = start_line.saturating_add(self.u32()?);
            let scope = self.str()?;
            let signature = self.str()?.into();
            symbols.definitions.push(Definition {
                name,
                kind,
                start_byte,
                end_byte,
                name_byte,
                start_line,
                end_line,
                scope: (!scope.is_empty()).then(|| scope.into()),
                signature,
            });
        }
        let count = self.count(5)?;
        symbols.references.reserve(count);
        let mut previous = 0u32;
        for _ in 0..count {
            let name = self.str()?.into();
            let kind = *REFERENCE_KINDS
                .get(self.u32()? as usize)
                .ok_or(DecodeError("reference kind"))?;
            let start_byte = previous.wrapping_add(self.u32()?);
            let end_byte = start_byte.saturating_add(self.u32()?);
            let line = self.u32()?;
            previous = start_byte;
            symbols.references.push(Reference {
                name,
                kind,
                start_byte,
                end_byte,
                line,
            });
        }
        let count = self.count(4)?;
        for _ in 0..count {
            let path = self.str()?.into();
            let start_byte = self.u32()?;
            let end_byte = start_byte.saturating_add(self.u32()?);
            let line = self.u32()?;
            symbols.imports.push(Import {
                path,
                start_byte,
                end_byte,
                line,
            });
        }
        let count = self.count(3)?;
        symbols.windows.reserve(count);
        for _ in 0..count {
            let start_line = self.u32()?;
            let end_line = start_line.saturating_add(self.u32()?);
            let terms = self.count(4)?;
            let raw = self.take(terms * 4)?;
            let terms = raw
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            symbols.windows.push(Window {
                start_line,
                end_line,
                terms,
            });
        }
        Ok(symbols)
    }
}

fn kind_code<T: PartialEq>(table: &[T], kind: T) -> u32 {
    table
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(table.len() - 1) as u32
}
