#include "mb_matmul_f32_opt.h"
#include "mb_common.h"
#include "mb_gemm_f32_opt.h"

void mb_matmul_f32_opt(const float *a, const float *b, const float *c, float *y,
                       int32_t batch_rank, const int32_t *batch_dims,
                       const int32_t *a_bs, const int32_t *b_bs, const int32_t *c_bs,
                       int32_t m, int32_t k, int32_t n, int32_t c_rs, int32_t c_cs,
                       float alpha, float beta, float lo, float hi, float *scratch)
{
    int32_t idx[MB_MAX_RANK] = {0};
    const float zero[16] = {0.0f}, bounds[2] = {lo, hi};
    float tile[16];
    float *a_panel = scratch, *b_tail = scratch + 4 * (int64_t)k;
    const int32_t n4 = n - n % 4;
    const int plain = alpha == 1.0f && !c; /* the clamp alone goes into the tile */
    const float *lohi = plain ? mb_lohi_f32_opt(bounds) : NULL;
    if (batch_rank > MB_MAX_RANK) {
        return;
    }
    const int64_t batches = mb_numel(batch_dims, batch_rank);
    for (int64_t bt = 0; bt < batches; ++bt) {
        const float *pa = a + mb_offset(idx, a_bs, batch_rank);
        const float *pb = b + mb_offset(idx, b_bs, batch_rank);
        const int64_t oc = c ? mb_offset(idx, c_bs, batch_rank) : 0;
        float *py = y + bt * m * n;
        if (n4 < n) { /* the last columns of b, zero-padded to 4 */
            for (int32_t p = 0; p < k; ++p) {
                for (int32_t j = 0; j < 4; ++j) {
                    b_tail[4 * p + j] = n4 + j < n ? pb[(int64_t)p * n + n4 + j] : 0.0f;
                }
            }
        }
        for (int32_t i0 = 0; i0 < m; i0 += 4) {
            const int32_t mi = m - i0 < 4 ? m - i0 : 4;
            mb_pack4_f32_opt(a_panel, pa + (int64_t)i0 * k, k, mi, k);
            for (int32_t j0 = 0; j0 < n; j0 += 4) {
                const int32_t nj = n - j0 < 4 ? n - j0 : 4;
                const float *bp = j0 < n4 ? pb + j0 : b_tail;
                const int32_t bs = j0 < n4 ? n : 4;
                float *yt = py + (int64_t)i0 * n + j0;
                if (plain && mi == 4 && nj == 4) {
                    if (mb_gemm4x4_f32_opt(a_panel, bp, bs, k, zero, 0, yt, n, lohi)) {
                        mb_clamp_rows_f32_opt(yt, n, 4, 4, lohi);
                    }
                    continue;
                }
                if (mb_gemm4x4_f32_opt(a_panel, bp, bs, k, zero, 0, tile, 4, lohi)) {
                    mb_clamp_rows_f32_opt(tile, 4, 4, 4, lohi);
                }
                if (plain) {
                    mb_tile_copy_f32_opt(tile, yt, n, 1, mi, nj);
                    continue;
                }
                for (int32_t i = 0; i < mi; ++i) {
                    for (int32_t j = 0; j < nj; ++j) {
                        /* the reference kernel's rounding steps: alpha and beta only when not 1 */
                        float v = alpha == 1.0f ? tile[4 * i + j] : alpha * tile[4 * i + j];
                        if (c) {
                            const float cv = c[oc + (int64_t)(i0 + i) * c_rs + (int64_t)(j0 + j) * c_cs];
                            v += beta == 1.0f ? cv : beta * cv;
                        }
                        yt[(int64_t)i * n + j] = mb_clampf(v, lo, hi);
                    }
                }
            }
        }
        mb_next_index(idx, batch_dims, batch_rank);
    }
}
