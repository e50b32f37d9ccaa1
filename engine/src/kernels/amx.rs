//! Prefill on AMX tiles (Sapphire Rapids and later): `tdpbf16ps` multiplies 16×32 bf16 activations by
//! 32×16 bf16 weights into 16×16 f32, 8192 multiply-adds per instruction.
//!
//! Why bf16 and not AMX-INT8: K-quant scales change every 32 (Q4_K) or 16 (Q6_K) values, so an int8
//! tile product would have to be stored, converted and scaled after every 32-deep step (that per-step
//! AVX-512 epilogue, not the tile unit, bounds an int8 design). Dequantizing a panel of weights to bf16
//! once per call folds the scales in, and the f32 accumulators then run the whole row uninterrupted.
//! The panel (32 rows) is built once per call and reused by every token, so its cost is amortized over
//! the prompt. Rounding to bf16 costs ≤ 2⁻⁹ relative per weight and per activation (the 8-bit
//! activation quantization of the integer path costs up to 1/254 of its block's largest value).
//!
//! Enabled only when CPUID reports AMX-TILE and AMX-BF16, the CPU has AVX-512 BF16, Linux grants the
//! tile-data permission (`arch_prctl(ARCH_REQ_XCOMP_PERM)`), and a self-test product comes out right.

use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::RefCell;
use std::sync::OnceLock;

use super::matmul::{OutPtr, QuantMatrix};
use super::quant::{q4_k, q6_k, QuantType};
use super::ThreadPool;

/// Fewest tokens for which the tile path beats the integer dot products.
pub(crate) const MIN_TOKENS: usize = 32;

/// Tokens per macro tile (two 16-row A tiles) and weight rows per panel (two 16-column B tiles).
const TB: usize = 32;
const PANEL_ROWS: usize = 32;
/// 32-deep steps per K chunk (see `panel_task`).
const KC: usize = 8;

/// Whether the AMX path can run in this process (checked once).
pub(crate) fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        let ok = cpu_has_amx_bf16() && request_permission() && self_test();
        if !ok && cpu_has_amx_bf16() {
            tracing::warn!("quantized kernels: the CPU has AMX but it could not be enabled; prefill uses AVX-512");
        }
        ok
    })
}

fn cpu_has_amx_bf16() -> bool {
    if !(std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512bf16"))
    {
        return false;
    }
    // CPUID.(EAX=7, ECX=0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
    let r = __cpuid_count(7, 0);
    r.edx & (1 << 22) != 0 && r.edx & (1 << 24) != 0
}

/// Asks Linux for permission to use AMX tile data (process-wide); true if granted.
#[cfg(target_os = "linux")]
fn request_permission() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: the arch_prctl system call with these arguments only changes this process's permitted
    // XSAVE features; it reads and writes no memory of ours. `syscall` clobbers rcx and r11.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret == 0
}

#[cfg(not(target_os = "linux"))]
fn request_permission() -> bool {
    false
}

/// The tile configuration: palette 1, tiles 0..8 all 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    _reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    _reserved: [0; 14],
    colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// The tile configuration this thread had before ours, restored by [`restore_tiles`]: other AMX code in
/// the process (candle's int8 path configures a thread once and keeps using it) must find its
/// configuration still loaded, and a thread that had none gets its tile state released.
struct SavedTiles(TileConfig);

/// Saves the thread's tile configuration and loads ours.
///
/// # Safety
/// AMX must be available ([`available`]); [`restore_tiles`] must follow on the same thread.
unsafe fn configure_tiles() -> SavedTiles {
    let mut old = TileConfig {
        palette: 0,
        start_row: 0,
        _reserved: [0; 14],
        colsb: [0; 16],
        rows: [0; 16],
    };
    // SAFETY: sttilecfg writes 64 bytes (zeros when tiles are not configured) into `old`; CONFIG is a
    // valid 64-byte palette-1 configuration; AMX is enabled (caller).
    unsafe {
        asm!("sttilecfg [{}]", in(reg) &mut old, options(nostack));
        asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly));
    }
    SavedTiles(old)
}

/// Puts back the configuration [`configure_tiles`] saved (tile data is zeroed either way).
///
/// # Safety
/// AMX must be available.
unsafe fn restore_tiles(saved: SavedTiles) {
    // SAFETY: a configuration read back by sttilecfg is valid to load; tilerelease only resets state.
    unsafe {
        if saved.0.palette != 0 {
            asm!("ldtilecfg [{}]", in(reg) &saved.0, options(nostack, readonly));
        } else {
            asm!("tilerelease", options(nostack, nomem));
        }
    }
}

/// `c[m][n] += Σ_k a[m][k] · b[k][n]` over one 16 × 32 × 16 tile product, for the self-test.
fn self_test() -> bool {
    let bf = |x: f32| (x.to_bits() >> 16) as u16; // exact for these small integers
    let a: Vec<u16> = (0..16 * 32)
        .map(|i| bf(((i * 7 % 11) as f32) - 5.0))
        .collect();
    // B in pair layout: row i holds (k = 2i, 2i+1) for 16 columns.
    let b: Vec<u16> = (0..16 * 32)
        .map(|i| bf(((i * 5 % 9) as f32) - 4.0))
        .collect();
    let mut c = vec![0f32; 256];
    // SAFETY: AMX-BF16 is reported and permitted (checked before this runs); the buffers are 1 KiB
    // each with a 64-byte stride, exactly one tile.
    unsafe {
        let saved = configure_tiles();
        asm!(
            "tilezero tmm0",
            "tileloadd tmm4, [{a} + {s}*1]",
            "tileloadd tmm6, [{b} + {s}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tilestored [{c} + {s}*1], tmm0",
            a = in(reg) a.as_ptr(),
            b = in(reg) b.as_ptr(),
            c = in(reg) c.as_mut_ptr(),
            s = in(reg) 64usize,
            options(nostack)
        );
        restore_tiles(saved);
    }
    let f = |x: u16| f32::from_bits((x as u32) << 16);
    (0..16).all(|m| {
        (0..16).all(|n| {
            let s: f32 = (0..32)
                .map(|k| f(a[m * 32 + k]) * f(b[(k / 2) * 32 + n * 2 + k % 2]))
                .sum();
            s == c[m * 16 + n]
        })
    })
}

/// Activations for the tile path: bf16 in tile order. For each block of 32 tokens (zero rows past the
/// last token) and each 32-deep step `s`, the two 16 × 32 A tiles lie next to each other (2 KiB), so
/// every tile load reads 1 KiB of consecutive memory.
#[derive(Clone, Debug, Default)]
pub(crate) struct ActsBf16 {
    /// `blocks × steps × 32 × 32` bf16 bits.
    pub x: Vec<u16>,
}

impl ActsBf16 {
    /// Converts `x` (`tokens × cols`) to bf16 (round to nearest even) in tile order.
    pub(crate) fn fill(&mut self, x: &[f32], tokens: usize, cols: usize) {
        let blocks = tokens.div_ceil(TB);
        self.x.clear();
        self.x.resize(blocks * TB * cols, 0);
        // SAFETY: `available()` was true for the Kernels that calls this (AVX-512 F/BW/BF16).
        unsafe { to_bf16_tiles(&x[..tokens * cols], cols, &mut self.x) };
    }
}

/// Token `t`'s values `32 s .. 32 s + 32` go to `((t / 32 · steps + s) · 32 + t % 32) · 32`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
fn to_bf16_tiles(x: &[f32], cols: usize, out: &mut [u16]) {
    let steps = cols / 32;
    for (t, row) in x.chunks_exact(cols).enumerate() {
        for (s, xs) in row.chunks_exact(32).enumerate() {
            let at = ((t / TB * steps + s) * TB + t % TB) * 32;
            let o = &mut out[at..at + 32];
            // SAFETY: 32 floats in, 32 u16 out.
            unsafe {
                let lo = _mm512_loadu_ps(xs.as_ptr());
                let hi = _mm512_loadu_ps(xs.as_ptr().add(16));
                let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_storeu_si512(o.as_mut_ptr() as *mut _, v);
            }
        }
    }
}

thread_local! {
    /// Per-thread panel (pairs of bf16 as u32), dequantization scratch and accumulators, reused
    /// across calls.
    static SCRATCH: RefCell<(Vec<u32>, Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// `out[t, r] = Σ_c w[r, c] · x[t, c]` on the pool with tile products.
///
/// # Safety
/// [`available`] must be true; `x` must be `ActsBf16::fill`ed for `tokens × w.cols()`; `out` must hold
/// `tokens × w.rows()` floats.
pub(crate) unsafe fn matmul(
    pool: &ThreadPool,
    w: &QuantMatrix<'_>,
    x: &ActsBf16,
    tokens: usize,
    out: &mut [f32],
) {
    let rows = w.rows();
    let outp = OutPtr(out.as_mut_ptr());
    pool.run(rows.div_ceil(PANEL_ROWS), |p| {
        SCRATCH.with(|s| {
            let (panel, deq, acc) = &mut *s.borrow_mut();
            // SAFETY: forwarded contract; panel `p` writes only rows p*32..p*32+32 of `out`, disjoint
            // across tasks.
            unsafe { panel_task(w, x, tokens, p * PANEL_ROWS, panel, deq, acc, outp) };
        })
    });
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn panel_task(
    w: &QuantMatrix<'_>,
    x: &ActsBf16,
    tokens: usize,
    r0: usize,
    panel: &mut Vec<u32>,
    deq: &mut Vec<f32>,
    acc: &mut Vec<f32>,
    out: OutPtr,
) {
    let (rows, cols) = (w.rows(), w.cols());
    let steps = cols / 32;
    panel.resize(steps * 2 * 256, 0);
    build_panel(w, r0, panel, deq);
    let blocks = tokens.div_ceil(TB);
    acc.resize(blocks * 1024, 0.0);
    // SAFETY: AMX is available (contract). Tile loads read 16 rows × 64 bytes: A tiles of token block
    // `blk` at step `s` (`(blk · steps + s) · 2` KiB into the padded activations), B tiles of
    // the panel (`steps × 2` KiB-sized tiles), C tiles of `acc` (`blocks` × 4 KiB); stores write `acc`.
    unsafe {
        let saved = configure_tiles();
        // K in chunks of KC steps so the panel's chunk (32 rows × 32 KC bf16) stays in L1 while every
        // token block passes over it; the accumulators go through `acc` between chunks.
        let mut k0 = 0;
        while k0 < steps {
            let k1 = (k0 + KC).min(steps);
            for blk in 0..blocks {
                let tb = blk * TB;
                let c = acc.as_mut_ptr().add(blk * 1024);
                if k0 == 0 {
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        options(nostack, nomem)
                    );
                } else {
                    asm!(
                        "tileloadd tmm0, [{c} + {s}*1]",
                        "tileloadd tmm1, [{c} + {s}*1 + 1024]",
                        "tileloadd tmm2, [{c} + {s}*1 + 2048]",
                        "tileloadd tmm3, [{c} + {s}*1 + 3072]",
                        c = in(reg) c,
                        s = in(reg) 64usize,
                        options(nostack, readonly)
                    );
                }
                let a_blk = x.x.as_ptr().add(tb * cols) as *const u8;
                for s in k0..k1 {
                    let a0 = a_blk.add(s * 2048);
                    let b0 = panel.as_ptr().add(s * 512) as *const u8;
                    asm!(
                        "tileloadd tmm4, [{a0} + {sa}*1]",
                        "tileloadd tmm6, [{b0} + {sb}*1]",
                        "tileloadd tmm7, [{b0} + {sb}*1 + 1024]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tileloadd tmm5, [{a0} + {sa}*1 + 1024]",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        a0 = in(reg) a0,
                        b0 = in(reg) b0,
                        sa = in(reg) 64usize,
                        sb = in(reg) 64usize,
                        options(nostack, readonly)
                    );
                }
                asm!(
                    "tilestored [{c} + {s}*1], tmm0",
                    "tilestored [{c} + {s}*1 + 1024], tmm1",
                    "tilestored [{c} + {s}*1 + 2048], tmm2",
                    "tilestored [{c} + {s}*1 + 3072], tmm3",
                    c = in(reg) c,
                    s = in(reg) 64usize,
                    options(nostack)
                );
            }
            k0 = k1;
        }
        restore_tiles(saved);
        // Tile (ti, tj) of block `blk`: tokens 32 blk + 16 ti .., rows r0 + 16 tj ..
        for blk in 0..blocks {
            for (tile, ct) in acc[blk * 1024..(blk + 1) * 1024]
                .chunks_exact(256)
                .enumerate()
            {
                let (ti, tj) = (tile / 2, tile % 2);
                let rbase = r0 + 16 * tj;
                if rbase >= rows {
                    continue;
                }
                let nr = (rows - rbase).min(16);
                for m in 0..16 {
                    let t = blk * TB + 16 * ti + m;
                    if t >= tokens {
                        break;
                    }
                    std::ptr::copy_nonoverlapping(
                        ct.as_ptr().add(16 * m),
                        out.ptr().add(t * rows + rbase),
                        nr,
                    );
                }
            }
        }
    }
}

/// Dequantizes weight rows `r0..r0 + 32` (zeros past the end) into the tile layout: for each 32-deep
/// step `s` and 16-row half `j`, a 16 × 16 tile of u32 bf16 pairs, row `i` = k pair `(32 s + 2 i, + 1)`,
/// column = weight row. Rows are dequantized a block at a time and transposed 16 × 16 in registers.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,fma")]
fn build_panel(w: &QuantMatrix<'_>, r0: usize, panel: &mut [u32], deq: &mut Vec<f32>) {
    let (rows, cols, ty) = (w.rows(), w.cols(), w.quant_type());
    let bv = ty.block_values();
    let nb = cols / bv;
    deq.resize(16 * bv, 0.0);
    for j in 0..2 {
        for b in 0..nb {
            for n in 0..16 {
                let r = r0 + 16 * j + n;
                let dst = &mut deq[n * bv..(n + 1) * bv];
                if r >= rows {
                    dst.fill(0.0);
                    continue;
                }
                let blk = &w.data()[r * w.row_bytes() + b * ty.block_bytes()..][..ty.block_bytes()];
                // SAFETY: `blk` is one whole block of `ty`; `dst` holds `bv` floats.
                unsafe { dequantize_block(ty, blk.as_ptr(), dst.as_mut_ptr()) };
            }
            for s8 in 0..bv / 32 {
                let mut v = [_mm512_setzero_si512(); 16];
                for (n, vn) in v.iter_mut().enumerate() {
                    // SAFETY: 32 floats at `n * bv + 32 * s8` lie inside `deq`.
                    unsafe {
                        let p = deq.as_ptr().add(n * bv + 32 * s8);
                        let pair =
                            _mm512_cvtne2ps_pbh(_mm512_loadu_ps(p.add(16)), _mm512_loadu_ps(p));
                        *vn = std::mem::transmute::<__m512bh, __m512i>(pair);
                    }
                }
                transpose16(&mut v);
                let s = b * (bv / 32) + s8;
                let tile = &mut panel[(s * 2 + j) * 256..(s * 2 + j + 1) * 256];
                for (i, vi) in v.iter().enumerate() {
                    // SAFETY: 16 u32 at `16 i` inside the 256-element tile.
                    unsafe { _mm512_storeu_si512(tile.as_mut_ptr().add(16 * i) as *mut _, *vi) };
                }
            }
        }
    }
}

/// Transposes a 16 × 16 matrix of u32 held as 16 row vectors.
#[target_feature(enable = "avx512f")]
fn transpose16(r: &mut [__m512i; 16]) {
    let mut t = [_mm512_setzero_si512(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // Now s[4 i + j] lane L = column 4 L + j, rows 4 i .. 4 i + 4.
    let mut s = [_mm512_setzero_si512(); 16];
    for i in 0..4 {
        s[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        s[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        s[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        s[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    // A 4 × 4 transpose of 128-bit lanes among s[j], s[4 + j], s[8 + j], s[12 + j].
    for j in 0..4 {
        let (a, b, c, d) = (s[j], s[4 + j], s[8 + j], s[12 + j]);
        let e0 = _mm512_shuffle_i32x4::<0x44>(a, b);
        let e1 = _mm512_shuffle_i32x4::<0xEE>(a, b);
        let f0 = _mm512_shuffle_i32x4::<0x44>(c, d);
        let f1 = _mm512_shuffle_i32x4::<0xEE>(c, d);
        r[j] = _mm512_shuffle_i32x4::<0x88>(e0, f0);
        r[4 + j] = _mm512_shuffle_i32x4::<0xDD>(e0, f0);
        r[8 + j] = _mm512_shuffle_i32x4::<0x88>(e1, f1);
        r[12 + j] = _mm512_shuffle_i32x4::<0xDD>(e1, f1);
    }
}

/// Dequantizes one block of `ty` at `blk` into `out` (its `block_values` floats), with FMA (so within
/// an f32 rounding of ggml's values, which is far below the bf16 rounding that follows).
///
/// # Safety
/// `blk` points to one whole block; `out` to `ty.block_values()` writable floats; AVX-512 F/BW/VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn dequantize_block(ty: QuantType, blk: *const u8, out: *mut f32) {
    let f16 = |p: *const u8| {
        // SAFETY: inside the block (caller).
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(unsafe {
            std::ptr::read_unaligned(p as *const u16)
        } as i32)))
    };
    // SAFETY (all arms): offsets stay inside the block and `out`'s `block_values` floats.
    unsafe {
        match ty {
            QuantType::Q8_0 => {
                let d = _mm512_set1_ps(f16(blk));
                for h in 0..2 {
                    let q = _mm_loadu_si128(blk.add(2 + 16 * h) as *const __m128i);
                    let v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
                    _mm512_storeu_ps(out.add(16 * h), _mm512_mul_ps(v, d));
                }
            }
            QuantType::Q4K => {
                let d = f16(blk);
                let dmin = f16(blk.add(2));
                let (sc, mn) =
                    q4_k::unpack_scales(std::slice::from_raw_parts(blk.add(q4_k::SCALES_AT), 12));
                for i in 0..4 {
                    for h in 0..2 {
                        let q = _mm_loadu_si128(
                            blk.add(q4_k::QS_AT + 32 * i + 16 * h) as *const __m128i
                        );
                        let lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(
                            q,
                            _mm_set1_epi8(0x0F),
                        )));
                        let hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(
                            _mm_srli_epi16::<4>(q),
                            _mm_set1_epi8(0x0F),
                        )));
                        let (j0, j1) = (2 * i, 2 * i + 1);
                        let y0 = _mm512_fmsub_ps(
                            lo,
                            _mm512_set1_ps(d * sc[j0] as f32),
                            _mm512_set1_ps(dmin * mn[j0] as f32),
                        );
                        let y1 = _mm512_fmsub_ps(
                            hi,
                            _mm512_set1_ps(d * sc[j1] as f32),
                            _mm512_set1_ps(dmin * mn[j1] as f32),
                        );
                        _mm512_storeu_ps(out.add(32 * j0 + 16 * h), y0);
                        _mm512_storeu_ps(out.add(32 * j1 + 16 * h), y1);
                    }
                }
            }
            QuantType::Q6K => {
                let d = f16(blk.add(q6_k::D_AT));
                let m4 = _mm_set1_epi8(0x0F);
                let m3 = _mm_set1_epi8(0x03);
                for h in 0..2 {
                    for part in 0..2 {
                        // 16 bytes at l = 16 part of each 32-byte row of this half.
                        let ql_a = _mm_loadu_si128(blk.add(64 * h + 16 * part) as *const __m128i);
                        let ql_b =
                            _mm_loadu_si128(blk.add(64 * h + 32 + 16 * part) as *const __m128i);
                        let qh = _mm_loadu_si128(
                            blk.add(q6_k::QH_AT + 32 * h + 16 * part) as *const __m128i
                        );
                        let levels = [
                            _mm_or_si128(
                                _mm_and_si128(ql_a, m4),
                                _mm_slli_epi16::<4>(_mm_and_si128(qh, m3)),
                            ),
                            _mm_or_si128(
                                _mm_and_si128(ql_b, m4),
                                _mm_slli_epi16::<4>(_mm_and_si128(_mm_srli_epi16::<2>(qh), m3)),
                            ),
                            _mm_or_si128(
                                _mm_and_si128(_mm_srli_epi16::<4>(ql_a), m4),
                                _mm_slli_epi16::<4>(_mm_and_si128(_mm_srli_epi16::<4>(qh), m3)),
                            ),
                            _mm_or_si128(
                                _mm_and_si128(_mm_srli_epi16::<4>(ql_b), m4),
                                _mm_slli_epi16::<4>(_mm_and_si128(_mm_srli_epi16::<6>(qh), m3)),
                            ),
                        ];
                        for (quarter, lv) in levels.iter().enumerate() {
                            // Values 128 h + 32 quarter + 16 part .. + 16: one 16-value scale group.
                            let at = 128 * h + 32 * quarter + 16 * part;
                            let sc = *blk.add(q6_k::SCALES_AT + at / 16) as i8 as f32;
                            let q =
                                _mm512_sub_epi32(_mm512_cvtepu8_epi32(*lv), _mm512_set1_epi32(32));
                            _mm512_storeu_ps(
                                out.add(at),
                                _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(d * sc)),
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::quant;

    #[test]
    fn transpose_and_dequantize() {
        if !available() {
            return;
        }
        let src: Vec<u32> = (0..256).collect();
        // SAFETY: AVX-512 is available (checked by `available`).
        unsafe {
            let mut v = [_mm512_setzero_si512(); 16];
            for (i, vi) in v.iter_mut().enumerate() {
                *vi = _mm512_loadu_si512(src.as_ptr().add(16 * i) as *const _);
            }
            transpose16(&mut v);
            for (i, vi) in v.iter().enumerate() {
                let mut row = [0u32; 16];
                _mm512_storeu_si512(row.as_mut_ptr() as *mut _, *vi);
                for (n, &x) in row.iter().enumerate() {
                    assert_eq!(x, (16 * n + i) as u32);
                }
            }
        }
        let x: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        for ty in QuantType::ALL {
            let q = quant::quantize_to_vec(ty, &x).unwrap();
            let want = quant::dequantize_to_vec(ty, &q, 512).unwrap();
            let mut got = vec![0f32; 512];
            let bv = ty.block_values();
            for b in 0..512 / bv {
                // SAFETY: one block in, one block of floats out; AVX-512 available.
                unsafe {
                    dequantize_block(
                        ty,
                        q.as_ptr().add(b * ty.block_bytes()),
                        got.as_mut_ptr().add(b * bv),
                    )
                };
            }
            for i in 0..512 {
                assert!(
                    (got[i] - want[i]).abs() <= 1e-6 * (1.0 + want[i].abs()),
                    "{ty} {i}: {} vs {}",
                    got[i],
                    want[i]
                );
            }
        }
    }
}
