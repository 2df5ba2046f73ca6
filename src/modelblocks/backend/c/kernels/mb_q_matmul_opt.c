/* Optimised int8 batched matmul, y = requant((a - a_zp) @ (b - b_zp)), bit for bit the reference
 * (mb_q_matmul.c). Per batch, b's columns are copied once into `buf` as int16 rows (b^T, the zero
 * point subtracted), and each pair of a's rows as int16 too; then two rows x two columns at a time,
 * K two by two with SMLAD (both operands are already int16 pairs: no extension), the requantization
 * fused into the stores. K is padded to even with zeros. */
#include "mb_q_matmul_opt.h"
#include "mb_common.h"
#include "mb_q_gemm.h"

static void mb_q_matmul_pack_row(const int8_t *src, int32_t stride, int32_t k, int32_t k2, int32_t zp, int16_t *dst)
{
    int32_t p = 0;
    for (; p < k; ++p) {
        dst[p] = (int16_t)(src[(int64_t)p * stride] - zp);
    }
    for (; p < k2; ++p) {
        dst[p] = 0;
    }
}

void mb_q_matmul_s8_dsp(const int8_t *a, const int8_t *b, int8_t *y, int32_t batch_rank, const int32_t *batch_dims,
                        const int32_t *a_bs, const int32_t *b_bs, int32_t m, int32_t k, int32_t n, int32_t a_zp,
                        int32_t b_zp, int32_t mult, int32_t shift, int32_t out_zp, int32_t act_min, int32_t act_max,
                        int16_t *buf)
{
    int32_t idx[MB_MAX_RANK] = {0};
    if (batch_rank > MB_MAX_RANK) {
        return;
    }
    const int32_t k2 = (k + 1) & ~1;
    int16_t *bt = buf;                       /* n rows of k2 */
    int16_t *ar = buf + (int64_t)n * k2;     /* two rows of k2 */
    const int64_t batches = mb_numel(batch_dims, batch_rank);
    for (int64_t bt_i = 0; bt_i < batches; ++bt_i) {
        const int8_t *pa = a + mb_offset(idx, a_bs, batch_rank);
        const int8_t *pb = b + mb_offset(idx, b_bs, batch_rank);
        int8_t *py = y + bt_i * m * n;
        for (int32_t j = 0; j < n; ++j) {
            mb_q_matmul_pack_row(pb + j, n, k, k2, b_zp, bt + (int64_t)j * k2);
        }
        for (int32_t i = 0; i < m; i += 2) {
            const int32_t rows = m - i >= 2 ? 2 : 1;
            mb_q_matmul_pack_row(pa + (int64_t)i * k, 1, k, k2, a_zp, ar);
            if (rows == 2) {
                mb_q_matmul_pack_row(pa + (int64_t)(i + 1) * k, 1, k, k2, a_zp, ar + k2);
            } else {
                mb_q_matmul_pack_row(pa + (int64_t)i * k, 1, k, k2, a_zp, ar + k2); /* a duplicate, not stored */
            }
            int8_t *y0 = py + (int64_t)i * n, *y1 = y0 + n;
            for (int32_t j = 0; j < n; j += 2) {
                const int16_t *b0 = bt + (int64_t)j * k2;
                const int16_t *b1 = j + 1 < n ? b0 + k2 : b0;
                int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
                for (int32_t p = 0; p < k2; p += 2) {
                    const int32_t x0 = mb_load_s16x2(ar + p), x1 = mb_load_s16x2(ar + k2 + p);
                    const int32_t c0 = mb_load_s16x2(b0 + p), c1 = mb_load_s16x2(b1 + p);
                    a00 = mb_smlad(x0, c0, a00);
                    a01 = mb_smlad(x0, c1, a01);
                    a10 = mb_smlad(x1, c0, a10);
                    a11 = mb_smlad(x1, c1, a11);
                }
                y0[j] = mb_q_output_fast(a00, mult, shift, out_zp, act_min, act_max);
                if (j + 1 < n) {
                    y0[j + 1] = mb_q_output_fast(a01, mult, shift, out_zp, act_min, act_max);
                }
                if (rows == 2) {
                    y1[j] = mb_q_output_fast(a10, mult, shift, out_zp, act_min, act_max);
                    if (j + 1 < n) {
                        y1[j + 1] = mb_q_output_fast(a11, mult, shift, out_zp, act_min, act_max);
                    }
                }
            }
        }
        mb_next_index(idx, batch_dims, batch_rank);
    }
}
