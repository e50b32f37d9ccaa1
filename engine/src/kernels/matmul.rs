//! Quantized weight matrices times f32 activations: `out[t, r] = Σ_c W[r, c] · x[t, c]`, i.e.
//! `x · Wᵀ` as in a linear layer, with `W` in GGUF's row-major block layout.
//!
//! Activations are quantized once per call (or once for several calls, see [`Activations`]). Work is
//! split over chunks of output rows; within a chunk the tokens are taken in tiles of up to
//! [`MAX_TILE`], and each weight block is unpacked once per tile and multiplied with every token of
//! the tile, so prefill reads each weight row `tokens / MAX_TILE` times from cache instead of
//! `tokens` times, while decode (one token) streams each weight byte from memory exactly once. Where the
//! level has a row-group kernel for the format ([`super::isa::RowsK`]) and there are at least
//! [`GROUP_MIN_TOKENS`] tokens, whole groups of [`GROUP_ROWS`] rows go to it instead (the rest of the chunk to
//! the tiles).

use super::acts::{ActBlockK, Activations, RowQ8_0};
use super::isa::{KernelSet, GROUP_MIN_TOKENS, GROUP_ROWS, MAX_TILE};
use super::quant::{check_len, QuantError, QuantType};

/// A borrowed `[rows, cols]` quantized matrix (e.g. a memory-mapped GGUF tensor, whose first
/// dimension `ne[0]` is `cols`). Cheap to build; the length is checked once here.
#[derive(Clone, Copy, Debug)]
pub struct QuantMatrix<'a> {
    ty: QuantType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    data: &'a [u8],
}

impl<'a> QuantMatrix<'a> {
    /// Wraps `data`, which must be exactly `rows` rows of `cols` values of format `ty`.
    pub fn new(
        ty: QuantType,
        rows: usize,
        cols: usize,
        data: &'a [u8],
    ) -> Result<Self, QuantError> {
        let row_bytes = ty.row_bytes(cols)?;
        check_len(
            "quantized matrix (bytes)",
            ty.matrix_bytes(rows, cols)?,
            data.len(),
        )?;
        Ok(QuantMatrix {
            ty,
            rows,
            cols,
            row_bytes,
            data,
        })
    }

    /// Weight format.
    pub fn quant_type(&self) -> QuantType {
        self.ty
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The raw bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    /// Rows `r0..r1` as a matrix of their own.
    pub fn rows_range(&self, r0: usize, r1: usize) -> Result<QuantMatrix<'a>, QuantError> {
        if r0 > r1 || r1 > self.rows {
            return Err(QuantError::Invalid(format!(
                "rows {r0}..{r1} of a matrix with {} rows",
                self.rows
            )));
        }
        Ok(QuantMatrix {
            rows: r1 - r0,
            data: &self.data[r0 * self.row_bytes..r1 * self.row_bytes],
            ..*self
        })
    }
}

/// A raw output pointer shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub *mut f32);

impl OutPtr {
    /// The pointer (a method, so closures capture the `Sync` wrapper rather than the raw field).
    #[inline(always)]
    pub(crate) fn ptr(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: only used by tasks that write disjoint index sets of one live buffer (see the call sites).
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

/// Whether [`compute_rows`] may use the level's row-group kernels ([`super::isa::RowsK`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowGroups {
    /// For many tokens, where the level has one.
    Allowed,
    /// Never: every token's outputs as a one-token call computes them.
    Never,
}

/// Checks that `acts` fit `w` and `out` holds `tokens × rows`.
pub(crate) fn check_matmul(
    w: &QuantMatrix<'_>,
    acts: &Activations,
    out_len: usize,
) -> Result<(), QuantError> {
    if acts.weight_type() != w.ty {
        return Err(QuantError::Invalid(format!(
            "activations were quantized for {} weights, the matrix is {}",
            acts.weight_type(),
            w.ty
        )));
    }
    check_len("activation columns (matrix cols)", w.cols, acts.cols())?;
    check_len("output (tokens × rows)", acts.tokens() * w.rows, out_len)
}

/// Rows per task: enough tasks for dynamic balancing over `threads`, never tiny.
pub(crate) fn chunk_rows(rows: usize, threads: usize) -> usize {
    if threads <= 1 {
        return rows.max(1);
    }
    // Whole groups of rows for the row-group kernels.
    rows.div_ceil(threads * 8)
        .clamp(GROUP_ROWS, 256)
        .next_multiple_of(GROUP_ROWS)
}

/// Computes rows `r0..r1` of `w` for the tokens `tokens` (indices into `acts`), writing
/// `out[slot(i) * out_stride + r]` for the `i`-th token of `tokens`.
///
/// # Safety
/// `out` must be valid for writes at every index `slot(i) * out_stride + r` (`r in r0..r1`), and no
/// other thread may access those elements during the call; `r1 <= w.rows()`; every token index must be
/// `< acts.tokens()`; `acts` must have passed [`check_matmul`]-style shape checks for `w`; `set` must
/// be supported by the CPU.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn compute_rows(
    set: &KernelSet,
    groups: RowGroups,
    w: &QuantMatrix<'_>,
    acts: &Activations,
    tokens: &[usize],
    slot: impl Fn(usize) -> usize,
    r0: usize,
    r1: usize,
    out: OutPtr,
    out_stride: usize,
) {
    let mut r0 = r0;
    let grouped = groups == RowGroups::Allowed && tokens.len() >= GROUP_MIN_TOKENS;
    if let Some(rows_kernel) = set.rows(w.ty).filter(|_| grouped) {
        let grouped_end = r0 + (r1 - r0) / GROUP_ROWS * GROUP_ROWS;
        // SAFETY: forwarded contract, on whole groups of this call's rows.
        unsafe { rows_kernel(w, acts, tokens, &slot, r0, grouped_end, out, out_stride) };
        r0 = grouped_end;
    }
    let nb = w.cols / w.ty.block_values();
    let mut buf = [0f32; MAX_TILE];
    for (tile_i, tile) in tokens.chunks(MAX_TILE).enumerate() {
        let n = tile.len();
        let base = tile_i * MAX_TILE;
        match set.k_tile(w.ty) {
            Some(kern) => {
                let mut ptrs = [std::ptr::null::<ActBlockK>(); MAX_TILE];
                for (p, &t) in ptrs.iter_mut().zip(tile) {
                    *p = acts.k_row(t).map_or(std::ptr::null(), |r| r.as_ptr());
                }
                for r in r0..r1 {
                    let wr = w.data[r * w.row_bytes..(r + 1) * w.row_bytes].as_ptr();
                    // SAFETY: `wr` is a whole row (`nb` blocks); every activation row has `nb` blocks
                    // (checked shapes); `n <= MAX_TILE` and `buf[..n]` matches `ptrs[..n]`.
                    unsafe { kern(wr, nb, &ptrs[..n], &mut buf[..n]) };
                    for (i, &v) in buf[..n].iter().enumerate() {
                        // SAFETY: the caller guarantees this index is ours to write.
                        unsafe { *out.ptr().add(slot(base + i) * out_stride + r) = v };
                    }
                }
            }
            None => {
                let empty = RowQ8_0 {
                    qs: std::ptr::null(),
                    d8: std::ptr::null(),
                    corr8: std::ptr::null(),
                };
                let mut rows_q = [empty; MAX_TILE];
                for (p, &t) in rows_q.iter_mut().zip(tile) {
                    *p = acts.q8_0_row(t).unwrap_or(empty);
                }
                for r in r0..r1 {
                    let wr = w.data[r * w.row_bytes..(r + 1) * w.row_bytes].as_ptr();
                    // SAFETY: as above, for Q8_0 rows.
                    unsafe { (set.q8_0)(wr, nb, &rows_q[..n], &mut buf[..n]) };
                    for (i, &v) in buf[..n].iter().enumerate() {
                        // SAFETY: the caller guarantees this index is ours to write.
                        unsafe { *out.ptr().add(slot(base + i) * out_stride + r) = v };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_views_check_lengths() {
        let data = vec![0u8; 3 * 144];
        assert!(QuantMatrix::new(QuantType::Q4K, 3, 256, &data).is_ok());
        assert!(QuantMatrix::new(QuantType::Q4K, 2, 256, &data).is_err());
        assert!(QuantMatrix::new(QuantType::Q4K, 3, 128, &data[..3 * 72]).is_err());
        let m = QuantMatrix::new(QuantType::Q4K, 3, 256, &data).unwrap();
        assert_eq!(m.rows_range(1, 3).unwrap().rows(), 2);
        assert!(m.rows_range(2, 4).is_err());
    }

    #[test]
    fn chunks_cover_rows() {
        assert_eq!(chunk_rows(1536, 1), 1536);
        assert_eq!(chunk_rows(1536, 2), 96);
        assert_eq!(chunk_rows(10, 2), 16);
    }
}
