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
/// The same for one expert of an MoE layer (its panels are small, and the whole layer's experts run
/// in one parallel call, so the tile path wins earlier).
pub(crate) const MOE_MIN_TOKENS: usize = 16;

/// Tokens per macro tile (two 16-row A tiles) and weight rows per panel (two 16-column B tiles).
pub(crate) const TB: usize = 32;
pub(crate) const PANEL_ROWS: usize = 32;
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

/// Activations for the tile path (the B operand of `tdpbf16ps`): bf16 pairs in tile order. For each
/// block of 32 tokens (zeros past the last token) and each 32-deep step `s`, two 16 × 16 tiles of u32
/// (tokens 0..16 and 16..32 of the block), row `i` = the pair `(k = 32 s + 2 i, 2 i + 1)`, column =
/// token. Built once per call (a 16 × 16 transpose per 16 tokens × 32 values), so the weights, which
/// are the A operand, need no transposing.
#[derive(Clone, Debug, Default)]
pub(crate) struct ActsBf16 {
    /// `blocks × steps × 2 × 256` bf16 pairs.
    pub x: Vec<u32>,
}

impl ActsBf16 {
    /// Converts `x` (`tokens × cols`) to bf16 (round to nearest even) in tile order.
    pub(crate) fn fill(&mut self, x: &[f32], tokens: usize, cols: usize) {
        let idx: Vec<usize> = (0..tokens).collect();
        self.x.resize(tokens.div_ceil(TB) * TB * cols / 2, 0);
        gather_bf16_tiles(x, cols, &idx, &mut self.x);
    }
}

/// Converts rows `rows[i]` of `x` (`cols` wide) to tile-order bf16 pairs in `out` as tokens `i`;
/// `out` must hold `rows.len()` rounded up to 32 tokens (the padding is written as zeros).
pub(crate) fn gather_bf16_tiles(x: &[f32], cols: usize, rows: &[usize], out: &mut [u32]) {
    // SAFETY: callers only use this when `available()` (AVX-512 F/BW/BF16).
    unsafe { gather_tiles(x, cols, rows, out) };
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
fn gather_tiles(x: &[f32], cols: usize, rows: &[usize], out: &mut [u32]) {
    let steps = cols / 32;
    let groups = rows.len().div_ceil(TB) * 2;
    for g in 0..groups {
        for s in 0..steps {
            let mut v = [_mm512_setzero_si512(); 16];
            for (t, vt) in v.iter_mut().enumerate() {
                if let Some(&r) = rows.get(16 * g + t) {
                    let xs = &x[r * cols + 32 * s..r * cols + 32 * s + 32];
                    // SAFETY: 32 floats.
                    unsafe {
                        let lo = _mm512_loadu_ps(xs.as_ptr());
                        let hi = _mm512_loadu_ps(xs.as_ptr().add(16));
                        *vt = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo));
                    }
                }
            }
            transpose16(&mut v);
            let at = ((g / 2 * steps + s) * 2 + g % 2) * 256;
            let tile = &mut out[at..at + 256];
            for (i, vi) in v.iter().enumerate() {
                // SAFETY: 16 u32 at `16 i` inside the tile.
                unsafe { _mm512_storeu_si512(tile.as_mut_ptr().add(16 * i) as *mut _, *vi) };
            }
        }
    }
}

thread_local! {
    /// Per-thread weight panel (bf16 pairs) and accumulators, reused across calls.
    static SCRATCH: RefCell<(Vec<u32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
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
    // When the activations outgrow L2, each task takes several panels and streams the activations
    // once for all of them (the panels' current K chunks stay in L1/L2 together).
    let act_bytes = tokens.div_ceil(TB) * TB * w.cols() * 2;
    let per_task = if act_bytes > (1 << 20) { 4 } else { 1 };
    let rows_per_task = per_task * PANEL_ROWS;
    pool.run(rows.div_ceil(rows_per_task), |p| {
        // SAFETY: forwarded contract; task `p` writes only its rows of `out`, disjoint across tasks.
        unsafe { panels(w, &x.x, tokens, p * rows_per_task, per_task, outp, 0, rows) };
    });
}

/// Output rows `r0..r0 + 32 · n_panels` of `w` (clipped to `w.rows()`) for `tokens` tokens of
/// tile-order bf16 activations `x`, written to `out[(out_row0 + t) · out_stride + r]`. One parallel
/// task's work.
///
/// # Safety
/// [`available`] must be true; `x` must hold `tokens` (rounded up to 32) × `w.cols()` tile-order values;
/// every written index must be inside `out`'s buffer and not accessed by another thread meanwhile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn panels(
    w: &QuantMatrix<'_>,
    x: &[u32],
    tokens: usize,
    r0: usize,
    n_panels: usize,
    out: OutPtr,
    out_row0: usize,
    out_stride: usize,
) {
    SCRATCH.with(|s| {
        let (panel, acc) = &mut *s.borrow_mut();
        // SAFETY: forwarded contract.
        unsafe {
            panel_task(
                w, x, tokens, r0, n_panels, panel, acc, out, out_row0, out_stride,
            )
        };
    })
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn panel_task(
    w: &QuantMatrix<'_>,
    x: &[u32],
    tokens: usize,
    r0: usize,
    n_panels: usize,
    panel: &mut Vec<u32>,
    acc: &mut Vec<f32>,
    out: OutPtr,
    out_row0: usize,
    out_stride: usize,
) {
    let (rows, cols) = (w.rows(), w.cols());
    let steps = cols / 32;
    let n_panels = n_panels
        .min((rows - r0.min(rows)).div_ceil(PANEL_ROWS))
        .max(1);
    let psize = steps * 512;
    panel.resize(n_panels * psize, 0);
    for p in 0..n_panels {
        build_panel(
            w,
            r0 + p * PANEL_ROWS,
            &mut panel[p * psize..(p + 1) * psize],
        );
    }
    let blocks = tokens.div_ceil(TB);
    acc.resize(n_panels * blocks * 1024, 0.0);
    // SAFETY: AMX is available (contract). Tile loads read 16 rows × 64 bytes: A tiles of the panel
    // (`steps × 2` KiB), B tiles of token block `blk` at step `s` (`(blk · steps + s) · 2` KiB into the
    // padded activations), C tiles of `acc` (`blocks` × 4 KiB); stores write `acc`.
    unsafe {
        let saved = configure_tiles();
        // K in chunks of KC steps so the panel's chunk (32 rows × 32 KC bf16) stays in L1 while every
        // token block passes over it; the accumulators go through `acc` between chunks.
        let mut k0 = 0;
        while k0 < steps {
            let k1 = (k0 + KC).min(steps);
            for blk in 0..blocks {
                for p in 0..n_panels {
                    let c = acc.as_mut_ptr().add((p * blocks + blk) * 1024);
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
                    let b_blk = x.as_ptr().add(blk * steps * 512) as *const u8;
                    for s in k0..k1 {
                        let a = panel.as_ptr().add(p * psize + s * 512) as *const u8;
                        let b = b_blk.add(s * 2048);
                        asm!(
                            "tileloadd tmm4, [{a} + {st}*1]",
                            "tileloadd tmm6, [{b} + {st}*1]",
                            "tileloadd tmm7, [{b} + {st}*1 + 1024]",
                            "tdpbf16ps tmm0, tmm4, tmm6",
                            "tileloadd tmm5, [{a} + {st}*1 + 1024]",
                            "tdpbf16ps tmm1, tmm4, tmm7",
                            "tdpbf16ps tmm2, tmm5, tmm6",
                            "tdpbf16ps tmm3, tmm5, tmm7",
                            a = in(reg) a,
                            b = in(reg) b,
                            st = in(reg) 64usize,
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
            }
            k0 = k1;
        }
        restore_tiles(saved);
    }
    // C tile `2 j + h` of panel `p`, block `blk` holds rows r0 + 32 p + 16 j + m (tile row) × tokens
    // 32 blk + 16 h + n (tile column); transpose it to write token rows of `out`.
    for (pb, accs) in acc.chunks_exact(1024).enumerate() {
        let (p, blk) = (pb / blocks, pb % blocks);
        for tile in 0..4 {
            let (j, h) = (tile / 2, tile % 2);
            let rbase = r0 + p * PANEL_ROWS + 16 * j;
            let t0 = blk * TB + 16 * h;
            if rbase >= rows || t0 >= tokens {
                continue;
            }
            let nr = (rows - rbase).min(16);
            let mask: __mmask16 = if nr == 16 { 0xFFFF } else { (1u16 << nr) - 1 };
            let ct = &accs[tile * 256..tile * 256 + 256];
            let mut v = [_mm512_setzero_si512(); 16];
            for (m, vm) in v.iter_mut().enumerate() {
                // SAFETY: 16 floats at `16 m` inside the tile.
                *vm = unsafe { _mm512_loadu_si512(ct.as_ptr().add(16 * m) as *const _) };
            }
            transpose16(&mut v);
            for (n, vn) in v.iter().enumerate().take((tokens - t0).min(16)) {
                // SAFETY: row `out_row0 + t0 + n`, columns `rbase .. rbase + nr` are this task's to
                // write (contract); the mask keeps the store inside them.
                unsafe {
                    let o = out.ptr().add((out_row0 + t0 + n) * out_stride + rbase);
                    _mm512_mask_storeu_epi32(o as *mut i32, mask, *vn);
                }
            }
        }
    }
}

/// Dequantizes weight rows `r0..r0 + 32` (zeros past the end) into the A-operand layout: for each
/// 32-deep step `s` and 16-row half `j`, a 16 × 32 bf16 tile (row = weight row, 64 bytes) at
/// `(2 s + j) · 256` u32.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,fma")]
fn build_panel(w: &QuantMatrix<'_>, r0: usize, panel: &mut [u32]) {
    let (rows, cols, ty) = (w.rows(), w.cols(), w.quant_type());
    let (bv, bb) = (ty.block_values(), ty.block_bytes());
    let nb = cols / bv;
    let mut buf = [0f32; 256];
    for n in 0..PANEL_ROWS {
        let r = r0 + n;
        let (j, m) = (n / 16, n % 16);
        for b in 0..nb {
            if r < rows {
                let blk = &w.data()[r * w.row_bytes() + b * bb..][..bb];
                // SAFETY: `blk` is one whole block of `ty`; `buf` holds 256 ≥ `bv` floats.
                unsafe { dequantize_block(ty, blk.as_ptr(), buf.as_mut_ptr()) };
            } else {
                buf[..bv].fill(0.0);
            }
            for s8 in 0..bv / 32 {
                let s = b * (bv / 32) + s8;
                let at = (2 * s + j) * 256 + 16 * m;
                // SAFETY: 32 floats of `buf`; 16 u32 at `at` inside the panel (`steps × 512` u32).
                unsafe {
                    let p = buf.as_ptr().add(32 * s8);
                    let pair = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(p.add(16)), _mm512_loadu_ps(p));
                    _mm512_storeu_si512(
                        panel.as_mut_ptr().add(at) as *mut _,
                        std::mem::transmute::<__m512bh, __m512i>(pair),
                    );
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
