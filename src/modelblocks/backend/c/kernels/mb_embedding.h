#ifndef MB_EMBEDDING_H
#define MB_EMBEDDING_H
#include <stdint.h>

/* Table lookup: y[t][:] = w[idx[t]][:] for t in [0, count); w is [num][dim], y is [count][dim].
 * An index in [-num, 0) counts from the end (NumPy's and ONNX Gather's rule). Any other index
 * outside [0, num) (PyTorch raises an error there) writes a row of zeros instead of reading
 * outside the table. Returns the number of such out-of-range indices (0 when all are valid), so
 * a caller that cares can check it. */
int32_t mb_embedding_f32(const float *w, const int32_t *idx, float *y, int32_t count, int32_t num, int32_t dim);

#endif
