#include "mb_rnn.h"
#include "mb_common.h"

/* acc[r] += sum_c w[r][c] * v[c] */
static void mb_rnn_matvec_acc(float *acc, const float *w, const float *v, int32_t rows, int32_t cols)
{
    for (int32_t r = 0; r < rows; ++r) {
        const float *wr = w + (int64_t)r * cols;
        float s = 0.0f;
        for (int32_t c = 0; c < cols; ++c) {
            s += wr[c] * v[c];
        }
        acc[r] += s;
    }
}

/* acc[r] = (b1 ? b1[r] : 0) + (b2 ? b2[r] : 0) */
static void mb_rnn_bias(float *acc, const float *b1, const float *b2, int32_t n)
{
    for (int32_t r = 0; r < n; ++r) {
        acc[r] = (b1 ? b1[r] : 0.0f) + (b2 ? b2[r] : 0.0f);
    }
}

static void mb_rnn_init_state(float *state, const float *init, int32_t n)
{
    if (init) {
        memcpy(state, init, (size_t)n * sizeof(float));
    } else {
        memset(state, 0, (size_t)n * sizeof(float));
    }
}

static float mb_rnn_sigmoid(float v)
{
    return 1.0f / (1.0f + expf(-v));
}

/* Element offsets of step t of batch element b in x (row width `width`) for either layout. */
static int64_t mb_rnn_offset(int32_t t, int32_t b, int32_t seq_len, int32_t batch, int32_t width,
                             int32_t batch_first)
{
    return batch_first ? ((int64_t)b * seq_len + t) * width : ((int64_t)t * batch + b) * width;
}

void mb_lstm_f32(const float *x, const float *h0, const float *c0,
                 const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh, const float *w_hr,
                 float *y, float *h_n, float *c_n, float *work,
                 int32_t seq_len, int32_t batch, int32_t input_size, int32_t hidden, int32_t out_size,
                 int32_t y_width, int32_t batch_first, int32_t reverse)
{
    /* Batch elements are independent, so each runs its whole sequence with the state held in
     * h_n / c_n: no separate state buffer is needed. */
    for (int32_t b = 0; b < batch; ++b) {
        float *h = h_n + (int64_t)b * out_size;
        float *c = c_n + (int64_t)b * hidden;
        mb_rnn_init_state(h, h0 ? h0 + (int64_t)b * out_size : NULL, out_size);
        mb_rnn_init_state(c, c0 ? c0 + (int64_t)b * hidden : NULL, hidden);
        for (int32_t s = 0; s < seq_len; ++s) {
            const int32_t t = reverse ? seq_len - 1 - s : s;
            const float *xt = x + mb_rnn_offset(t, b, seq_len, batch, input_size, batch_first);
            float *yt = y + mb_rnn_offset(t, b, seq_len, batch, y_width, batch_first);
            /* all gate pre-activations use the previous h, so finish them before touching h */
            mb_rnn_bias(work, b_ih, b_hh, 4 * hidden);
            mb_rnn_matvec_acc(work, w_ih, xt, 4 * hidden, input_size);
            mb_rnn_matvec_acc(work, w_hh, h, 4 * hidden, out_size);
            for (int32_t k = 0; k < hidden; ++k) {
                const float ig = mb_rnn_sigmoid(work[k]);
                const float fg = mb_rnn_sigmoid(work[hidden + k]);
                const float gg = tanhf(work[2 * hidden + k]);
                const float og = mb_rnn_sigmoid(work[3 * hidden + k]);
                c[k] = fg * c[k] + ig * gg;
                /* slot k of the i gate is consumed: reuse it for the unprojected h */
                work[k] = og * tanhf(c[k]);
            }
            if (w_hr) {
                for (int32_t p = 0; p < out_size; ++p) {
                    h[p] = 0.0f;
                }
                mb_rnn_matvec_acc(h, w_hr, work, out_size, hidden);
            } else {
                memcpy(h, work, (size_t)hidden * sizeof(float));
            }
            memcpy(yt, h, (size_t)out_size * sizeof(float));
        }
    }
}

void mb_gru_f32(const float *x, const float *h0,
                const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                float *y, float *h_n, float *work,
                int32_t seq_len, int32_t batch, int32_t input_size, int32_t hidden,
                int32_t y_width, int32_t batch_first, int32_t reverse)
{
    /* the n gate needs W_hn h + b_hn apart from the input part, so keep both halves */
    float *gi = work;
    float *gh = work + 3 * (int64_t)hidden;
    for (int32_t b = 0; b < batch; ++b) {
        float *h = h_n + (int64_t)b * hidden;
        mb_rnn_init_state(h, h0 ? h0 + (int64_t)b * hidden : NULL, hidden);
        for (int32_t s = 0; s < seq_len; ++s) {
            const int32_t t = reverse ? seq_len - 1 - s : s;
            const float *xt = x + mb_rnn_offset(t, b, seq_len, batch, input_size, batch_first);
            float *yt = y + mb_rnn_offset(t, b, seq_len, batch, y_width, batch_first);
            mb_rnn_bias(gi, b_ih, NULL, 3 * hidden);
            mb_rnn_bias(gh, b_hh, NULL, 3 * hidden);
            mb_rnn_matvec_acc(gi, w_ih, xt, 3 * hidden, input_size);
            mb_rnn_matvec_acc(gh, w_hh, h, 3 * hidden, hidden);
            for (int32_t k = 0; k < hidden; ++k) {
                const float r = mb_rnn_sigmoid(gi[k] + gh[k]);
                const float z = mb_rnn_sigmoid(gi[hidden + k] + gh[hidden + k]);
                const float n = tanhf(gi[2 * hidden + k] + r * gh[2 * hidden + k]);
                h[k] = (1.0f - z) * n + z * h[k];
            }
            memcpy(yt, h, (size_t)hidden * sizeof(float));
        }
    }
}

void mb_rnn_f32(const float *x, const float *h0,
                const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                float *y, float *h_n, float *work,
                int32_t seq_len, int32_t batch, int32_t input_size, int32_t hidden,
                int32_t y_width, int32_t batch_first, int32_t reverse, int32_t relu)
{
    for (int32_t b = 0; b < batch; ++b) {
        float *h = h_n + (int64_t)b * hidden;
        mb_rnn_init_state(h, h0 ? h0 + (int64_t)b * hidden : NULL, hidden);
        for (int32_t s = 0; s < seq_len; ++s) {
            const int32_t t = reverse ? seq_len - 1 - s : s;
            const float *xt = x + mb_rnn_offset(t, b, seq_len, batch, input_size, batch_first);
            float *yt = y + mb_rnn_offset(t, b, seq_len, batch, y_width, batch_first);
            mb_rnn_bias(work, b_ih, b_hh, hidden);
            mb_rnn_matvec_acc(work, w_ih, xt, hidden, input_size);
            mb_rnn_matvec_acc(work, w_hh, h, hidden, hidden);
            for (int32_t k = 0; k < hidden; ++k) {
                h[k] = relu ? (work[k] > 0.0f ? work[k] : 0.0f) : tanhf(work[k]);
            }
            memcpy(yt, h, (size_t)hidden * sizeof(float));
        }
    }
}
