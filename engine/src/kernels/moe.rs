//! Mixture-of-experts SwiGLU FFN grouped by expert, over experts stored as one quantized 3-D tensor
//! `[n_experts, rows, cols]` (GGUF `ffn_gate_exps`, `ffn_up_exps`, `ffn_down_exps`).
//!
//! `out[t] = Σ_j weight[t, j] · down_e(silu(gate_e(x[t])) · up_e(x[t]))` with `e = ids[t, j]`.
//!
//! Steps, each one parallel call on the pool: (1) a counting sort of the `tokens × k` (token, expert)
//! assignments by expert — the only per-token host loop; (2) quantize `x` once; (3) tasks of
//! (expert, chunk of FFN rows) compute gate and up for just the tokens routed to that expert and
//! apply SwiGLU in place; (4) quantize the hidden activations once per assignment; (5) tasks of
//! (expert, chunk of output rows) compute down; (6) the weighted sum over each token's k experts.
//! Decoding one token with k = 8 therefore spreads 8 experts × rows over all threads in steps 3 and
//! 5, and each expert's weights are read once per call however many tokens chose it.

use super::acts::Activations;
use super::matmul::{chunk_rows, compute_rows, OutPtr, QuantMatrix, RowGroups};
use super::quant::{check_len, QuantError, QuantType};
use super::Kernels;

/// A borrowed `[n_experts, rows, cols]` quantized tensor: expert `e` is a `[rows, cols]` matrix.
#[derive(Clone, Copy, Debug)]
pub struct QuantExperts<'a> {
    ty: QuantType,
    n_experts: usize,
    rows: usize,
    cols: usize,
    expert_bytes: usize,
    data: &'a [u8],
}

impl<'a> QuantExperts<'a> {
    /// Wraps `data`, which must be exactly `n_experts × rows × cols` values of format `ty`.
    pub fn new(
        ty: QuantType,
        n_experts: usize,
        rows: usize,
        cols: usize,
        data: &'a [u8],
    ) -> Result<Self, QuantError> {
        let expert_bytes = ty.matrix_bytes(rows, cols)?;
        let total = expert_bytes
            .checked_mul(n_experts)
            .ok_or(QuantError::TooLarge { rows, cols })?;
        check_len("quantized experts (bytes)", total, data.len())?;
        Ok(QuantExperts {
            ty,
            n_experts,
            rows,
            cols,
            expert_bytes,
            data,
        })
    }

    /// Expert `e`'s matrix (`None` when out of range).
    pub fn expert(&self, e: usize) -> Option<QuantMatrix<'a>> {
        if e >= self.n_experts {
            return None;
        }
        let bytes = &self.data[e * self.expert_bytes..(e + 1) * self.expert_bytes];
        QuantMatrix::new(self.ty, self.rows, self.cols, bytes).ok()
    }

    /// Weight format.
    pub fn quant_type(&self) -> QuantType {
        self.ty
    }

    /// Number of experts.
    pub fn n_experts(&self) -> usize {
        self.n_experts
    }

    /// Rows per expert.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns per expert.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// Per-token expert choices: `ids[t * k + j]` with weight `weights[t * k + j]` (the router's top-k,
/// already renormalised if the model does that).
#[derive(Clone, Copy, Debug)]
pub struct ExpertRouting<'a> {
    tokens: usize,
    k: usize,
    ids: &'a [u32],
    weights: &'a [f32],
}

impl<'a> ExpertRouting<'a> {
    /// Checks lengths (`tokens × k` each); expert ids are checked against the experts at use.
    pub fn new(
        tokens: usize,
        k: usize,
        ids: &'a [u32],
        weights: &'a [f32],
    ) -> Result<Self, QuantError> {
        let n = tokens.checked_mul(k).ok_or(QuantError::TooLarge {
            rows: tokens,
            cols: k,
        })?;
        check_len("expert ids (tokens × k)", n, ids.len())?;
        check_len("expert weights (tokens × k)", n, weights.len())?;
        Ok(ExpertRouting {
            tokens,
            k,
            ids,
            weights,
        })
    }
}

/// Buffers an MoE call needs, kept between calls so decoding does not allocate.
#[derive(Debug)]
pub struct MoeScratch {
    /// First sorted assignment of each expert (`n_experts + 1` offsets).
    offsets: Vec<usize>,
    /// Token of each assignment, sorted by expert.
    token_of: Vec<usize>,
    /// Sorted position of assignment `t * k + j`.
    sorted_pos: Vec<usize>,
    /// `0, 1, 2, …`: the activation rows of the down projection.
    ident: Vec<usize>,
    /// Gate, then SwiGLU output, per sorted assignment (`assignments × ffn`).
    h: Vec<f32>,
    /// Up per sorted assignment.
    u: Vec<f32>,
    /// Down per sorted assignment (`assignments × hidden`).
    y: Vec<f32>,
    x_gate: Activations,
    x_up: Activations,
    h_down: Activations,
    /// bf16 tile segments of the inputs of experts on the AMX path.
    xb: Vec<u32>,
    /// bf16 tile segments of their SwiGLU outputs.
    hb: Vec<u32>,
}

impl Default for MoeScratch {
    fn default() -> Self {
        MoeScratch {
            offsets: Vec::new(),
            token_of: Vec::new(),
            sorted_pos: Vec::new(),
            ident: Vec::new(),
            h: Vec::new(),
            u: Vec::new(),
            y: Vec::new(),
            x_gate: Activations::new(QuantType::Q8_0),
            x_up: Activations::new(QuantType::Q8_0),
            h_down: Activations::new(QuantType::Q8_0),
            xb: Vec::new(),
            hb: Vec::new(),
        }
    }
}

impl MoeScratch {
    /// Empty buffers.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Replaces `a` by an empty buffer for `ty` if it was made for another type.
fn ensure_type(a: &mut Activations, ty: QuantType) {
    if a.weight_type() != ty {
        *a = Activations::new(ty);
    }
}

/// `x · sigmoid(x)`.
#[inline]
fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// One unit of parallel work: rows `r0..r1` of expert `e`, on the AMX tiles (one 32-row panel) or
/// with the integer dot products.
#[derive(Clone, Copy)]
struct Task {
    e: usize,
    r0: usize,
    r1: usize,
    amx: bool,
}

/// Tasks covering all rows of every expert that has tokens, sized for `threads`; experts with
/// `amx_seg[e]` set get one task per AMX panel.
fn tasks(offsets: &[usize], amx_seg: &[Option<usize>], rows: usize, threads: usize) -> Vec<Task> {
    let active = offsets.windows(2).filter(|w| w[1] > w[0]).count();
    let chunk = chunk_rows(rows * active.max(1), threads).min(rows.max(1));
    let mut v = Vec::new();
    for e in 0..offsets.len() - 1 {
        if offsets[e + 1] == offsets[e] {
            continue;
        }
        let amx = amx_seg[e].is_some();
        #[cfg(target_arch = "x86_64")]
        let step = if amx { super::amx::PANEL_ROWS } else { chunk };
        #[cfg(not(target_arch = "x86_64"))]
        let step = chunk;
        let mut r0 = 0;
        while r0 < rows {
            let r1 = (r0 + step).min(rows);
            v.push(Task { e, r0, r1, amx });
            r0 = r1;
        }
    }
    v
}

/// Copies rows `index[offsets[e]..offsets[e + 1]]` of `x` (`cols` wide) into `out` as bf16 tiles for
/// each AMX expert's segment, one parallel task per expert.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn gather_segments(
    k: &Kernels,
    x: &[f32],
    cols: usize,
    offsets: &[usize],
    index: &[usize],
    amx_seg: &[Option<usize>],
    out: &mut Vec<u32>,
    padded_total: usize,
) {
    // Tile-order bf16 pairs: `cols / 2` u32 per token.
    let half = cols / 2;
    out.resize(padded_total * half, 0);
    let mut chunks: Vec<(usize, std::sync::Mutex<&mut [u32]>)> = Vec::new();
    let mut rest: &mut [u32] = out;
    let mut at = 0;
    for (e, seg) in amx_seg.iter().enumerate() {
        if let Some(seg) = *seg {
            let n = (offsets[e + 1] - offsets[e]).div_ceil(super::amx::TB) * super::amx::TB;
            let (_, tail) = rest.split_at_mut((seg - at) * half);
            let (mine, tail) = tail.split_at_mut(n * half);
            chunks.push((e, std::sync::Mutex::new(mine)));
            rest = tail;
            at = seg + n;
        }
    }
    k.pool.run(chunks.len(), |i| {
        let (e, ref m) = chunks[i];
        let mut dst = m.lock().unwrap_or_else(|p| p.into_inner());
        super::amx::gather_bf16_tiles(x, cols, &index[offsets[e]..offsets[e + 1]], &mut dst);
    });
}

impl Kernels {
    /// The SwiGLU mixture-of-experts FFN for `tokens` rows of `x` (`tokens × hidden`) into `out`
    /// (`tokens × hidden`, overwritten). `gate` and `up` are `[n_experts, ffn, hidden]`, `down` is
    /// `[n_experts, hidden, ffn]`.
    #[allow(clippy::too_many_arguments)]
    pub fn moe_ffn(
        &self,
        gate: &QuantExperts<'_>,
        up: &QuantExperts<'_>,
        down: &QuantExperts<'_>,
        x: &[f32],
        routing: &ExpertRouting<'_>,
        out: &mut [f32],
        scratch: &mut MoeScratch,
    ) -> Result<(), QuantError> {
        let (n_exp, ffn, hidden) = (gate.n_experts, gate.rows, gate.cols);
        if (up.n_experts, up.rows, up.cols) != (n_exp, ffn, hidden)
            || (down.n_experts, down.rows, down.cols) != (n_exp, hidden, ffn)
        {
            return Err(QuantError::Invalid(format!(
                "expert shapes disagree: gate {}×[{}, {}], up {}×[{}, {}], down {}×[{}, {}]",
                gate.n_experts,
                gate.rows,
                gate.cols,
                up.n_experts,
                up.rows,
                up.cols,
                down.n_experts,
                down.rows,
                down.cols
            )));
        }
        let (tokens, k) = (routing.tokens, routing.k);
        check_len("moe input (tokens × hidden)", tokens * hidden, x.len())?;
        check_len("moe output (tokens × hidden)", tokens * hidden, out.len())?;
        if let Some(&bad) = routing.ids.iter().find(|&&e| e as usize >= n_exp) {
            return Err(QuantError::Invalid(format!(
                "expert id {bad} out of range (experts: {n_exp})"
            )));
        }
        let n_assign = tokens * k;
        let s = scratch;

        // (1) Counting sort of assignments by expert.
        s.offsets.clear();
        s.offsets.resize(n_exp + 1, 0);
        for &e in routing.ids {
            s.offsets[e as usize + 1] += 1;
        }
        for e in 0..n_exp {
            s.offsets[e + 1] += s.offsets[e];
        }
        s.token_of.resize(n_assign, 0);
        if s.ident.len() < n_assign {
            s.ident = (0..n_assign).collect();
        }
        s.sorted_pos.resize(n_assign, 0);
        {
            let mut fill = s.offsets[..n_exp].to_vec();
            for (a, &e) in routing.ids.iter().enumerate() {
                let p = fill[e as usize];
                fill[e as usize] += 1;
                s.token_of[p] = a / k.max(1);
                s.sorted_pos[a] = p;
            }
        }

        // Experts with enough tokens run on the AMX tiles: their tokens' rows are gathered into
        // bf16 tile segments (`amx_seg[e]` = first padded token of the expert's segment).
        let mut amx_seg: Vec<Option<usize>> = vec![None; n_exp];
        let mut padded_total = 0;
        #[cfg(target_arch = "x86_64")]
        if self.isa == super::Isa::Avx512Amx {
            for (e, seg) in amx_seg.iter_mut().enumerate() {
                let n = s.offsets[e + 1] - s.offsets[e];
                if n >= super::amx::MOE_MIN_TOKENS {
                    *seg = Some(padded_total);
                    padded_total += n.div_ceil(super::amx::TB) * super::amx::TB;
                }
            }
        }
        let any_int8 = (0..n_exp).any(|e| amx_seg[e].is_none() && s.offsets[e + 1] > s.offsets[e]);
        // (2) Quantize the input once per weight type (for the experts on the integer path).
        let x_up_same = up.ty == gate.ty;
        if any_int8 {
            ensure_type(&mut s.x_gate, gate.ty);
            self.requantize_int8(&mut s.x_gate, x, tokens, hidden)?;
            if !x_up_same {
                ensure_type(&mut s.x_up, up.ty);
                self.requantize_int8(&mut s.x_up, x, tokens, hidden)?;
            }
        }

        #[cfg(target_arch = "x86_64")]
        if padded_total > 0 {
            gather_segments(
                self,
                x,
                hidden,
                &s.offsets,
                &s.token_of,
                &amx_seg,
                &mut s.xb,
                padded_total,
            );
        }

        // (3) Gate and up for each expert's tokens, SwiGLU in place.
        s.h.resize(n_assign * ffn, 0.0);
        s.u.resize(n_assign * ffn, 0.0);
        let set = self.isa.kernels();
        let threads = self.pool.n_threads();
        let t_up = tasks(&s.offsets, &amx_seg, ffn, threads);
        {
            let (hp, up_p) = (OutPtr(s.h.as_mut_ptr()), OutPtr(s.u.as_mut_ptr()));
            let (offsets, token_of, amx_seg, xb) = (&s.offsets, &s.token_of, &amx_seg, &s.xb);
            let x_gate = &s.x_gate;
            let x_up = if x_up_same { &s.x_gate } else { &s.x_up };
            self.pool.run(t_up.len(), |i| {
                let Task { e, r0, r1, amx } = t_up[i];
                let (a0, a1) = (offsets[e], offsets[e + 1]);
                let toks = &token_of[a0..a1];
                let (Some(g), Some(u)) = (gate.expert(e), up.expert(e)) else {
                    return;
                };
                // SAFETY: this task writes rows a0..a1 (expert e's assignments) × columns r0..r1 of
                // `h` and `u` (`n_assign × ffn`): disjoint from every other task, as tasks of one
                // expert split the columns and experts own disjoint assignment ranges. Token indices
                // are < tokens; shapes were checked; the ISA is supported. AMX tasks read the expert's
                // gathered segment (its tokens, padded to 32) and write rows r0..r0 + 32 clipped to
                // ffn, which is r0..r1.
                unsafe {
                    #[cfg(target_arch = "x86_64")]
                    if amx {
                        let seg = &xb[amx_seg[e].unwrap_or(0) * hidden / 2..];
                        super::amx::panels(&g, seg, a1 - a0, r0, 1, hp, a0, ffn);
                        super::amx::panels(&u, seg, a1 - a0, r0, 1, up_p, a0, ffn);
                    }
                    if !amx {
                        compute_rows(
                            set,
                            RowGroups::Allowed,
                            &g,
                            x_gate,
                            toks,
                            |i| a0 + i,
                            r0,
                            r1,
                            hp,
                            ffn,
                        );
                        compute_rows(
                            set,
                            RowGroups::Allowed,
                            &u,
                            x_up,
                            toks,
                            |i| a0 + i,
                            r0,
                            r1,
                            up_p,
                            ffn,
                        );
                    }
                    for a in a0..a1 {
                        for r in r0..r1 {
                            let hv = hp.ptr().add(a * ffn + r);
                            *hv = silu(*hv) * *up_p.ptr().add(a * ffn + r);
                        }
                    }
                }
            });
        }

        // (4) Quantize SwiGLU outputs, one activation row per assignment (bf16 tiles for AMX experts).
        if any_int8 {
            ensure_type(&mut s.h_down, down.ty);
            self.requantize_int8(&mut s.h_down, &s.h, n_assign, ffn)?;
        }
        #[cfg(target_arch = "x86_64")]
        if padded_total > 0 {
            gather_segments(
                self,
                &s.h,
                ffn,
                &s.offsets,
                &s.ident,
                &amx_seg,
                &mut s.hb,
                padded_total,
            );
        }

        // (5) Down for each expert's assignments.
        s.y.resize(n_assign * hidden, 0.0);
        let t_down = tasks(&s.offsets, &amx_seg, hidden, threads);
        {
            let yp = OutPtr(s.y.as_mut_ptr());
            let (offsets, h_down, ident, amx_seg, hb) =
                (&s.offsets, &s.h_down, &s.ident, &amx_seg, &s.hb);
            self.pool.run(t_down.len(), |i| {
                let Task { e, r0, r1, amx } = t_down[i];
                let (a0, a1) = (offsets[e], offsets[e + 1]);
                let Some(d) = down.expert(e) else { return };
                #[cfg(target_arch = "x86_64")]
                if amx {
                    // SAFETY: as below; the expert's segment of `hb` holds its a1 - a0 rows.
                    unsafe {
                        super::amx::panels(
                            &d,
                            &hb[amx_seg[e].unwrap_or(0) * ffn / 2..],
                            a1 - a0,
                            r0,
                            1,
                            yp,
                            a0,
                            hidden,
                        )
                    };
                    return;
                }
                let _ = (amx, amx_seg, hb);
                // SAFETY: writes rows a0..a1 × columns r0..r1 of `y` (`n_assign × hidden`), disjoint
                // across tasks as in step 3; assignment indices are < n_assign = h_down's tokens.
                unsafe {
                    compute_rows(
                        set,
                        RowGroups::Allowed,
                        &d,
                        h_down,
                        &ident[a0..a1],
                        |i| a0 + i,
                        r0,
                        r1,
                        yp,
                        hidden,
                    )
                };
            });
        }

        // (6) Weighted sum of each token's experts.
        let (y, pos, w) = (&s.y, &s.sorted_pos, routing.weights);
        let combine = |t: usize, o: &mut [f32]| {
            o.fill(0.0);
            for j in 0..k {
                let a = t * k + j;
                let row = &y[pos[a] * hidden..(pos[a] + 1) * hidden];
                let wt = w[a];
                for (ov, &yv) in o.iter_mut().zip(row) {
                    *ov += wt * yv;
                }
            }
        };
        if tokens < 2 * threads {
            for (t, o) in out.chunks_exact_mut(hidden).enumerate() {
                combine(t, o);
            }
        } else {
            let per = tokens.div_ceil(threads * 4);
            let outp = OutPtr(out.as_mut_ptr());
            self.pool.run(tokens.div_ceil(per), |c| {
                for t in c * per..((c + 1) * per).min(tokens) {
                    // SAFETY: token rows are disjoint across tasks and inside `out` (length checked).
                    let o = unsafe {
                        std::slice::from_raw_parts_mut(outp.ptr().add(t * hidden), hidden)
                    };
                    combine(t, o);
                }
            });
        }
        Ok(())
    }
}
