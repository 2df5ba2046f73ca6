#include "mb_embedding.h"
#include "mb_common.h"

int32_t mb_embedding_f32(const float *w, const int32_t *idx, float *y, int32_t count, int32_t num, int32_t dim)
{
    int32_t bad = 0;
    for (int32_t t = 0; t < count; ++t) {
        float *yt = y + (int64_t)t * dim;
        /* [-num, 0) counts from the end, as NumPy and ONNX Gather do */
        const int32_t i = (idx[t] < 0 && idx[t] >= -num) ? idx[t] + num : idx[t];
        if (i < 0 || i >= num) {
            ++bad;
            for (int32_t d = 0; d < dim; ++d) {
                yt[d] = 0.0f;
            }
            continue;
        }
        const float *wi = w + (int64_t)i * dim;
        for (int32_t d = 0; d < dim; ++d) {
            yt[d] = wi[d];
        }
    }
    return bad;
}
