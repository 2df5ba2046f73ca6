#ifndef MB_RNN_H
#define MB_RNN_H
#include <stdint.h>

/* One layer and one direction of a recurrent network, PyTorch semantics (nn.LSTM, nn.GRU, nn.RNN).
 *
 * Layout: x is [seq_len][batch][input_size], or [batch][seq_len][input_size] when batch_first != 0.
 * y has the same order of the first two dimensions, with rows of y_width floats
 * (y_width = num_directions * out_size); the caller offsets y by direction * out_size so this
 * direction writes its half of each row. reverse != 0 walks the sequence from the last step.
 *
 * Weights as in PyTorch, gates stacked along rows: w_ih [G*hidden][input_size],
 * w_hh [G*hidden][out_size], b_ih / b_hh [G*hidden] (either may be NULL: no bias).
 * h0 [batch][out_size] and c0 [batch][hidden] are the initial states (NULL: zeros);
 * h_n / c_n receive the final states (they double as the running state, so they must not
 * overlap h0 / c0). work is scratch of the size each kernel states below.
 */

/* LSTM, gates i, f, g, o (G = 4). w_hr [out_size][hidden] projects h (proj_size > 0), or is
 * NULL and then out_size == hidden. work: 4 * hidden floats. */
void mb_lstm_f32(const float *x, const float *h0, const float *c0,
                 const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh, const float *w_hr,
                 float *y, float *h_n, float *c_n, float *work,
                 int32_t seq_len, int32_t batch, int32_t input_size, int32_t hidden, int32_t out_size,
                 int32_t y_width, int32_t batch_first, int32_t reverse);

/* GRU, gates r, z, n (G = 3); n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
 * h' = (1 - z) * n + z * h. out_size == hidden. work: 6 * hidden floats. */
void mb_gru_f32(const float *x, const float *h0,
                const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                float *y, float *h_n, float *work,
                int32_t seq_len, int32_t batch, int32_t input_size, int32_t hidden,
                int32_t y_width, int32_t batch_first, int32_t reverse);

/* Elman RNN (G = 1): h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh (relu == 0) or
 * max(0, .) (relu != 0). out_size == hidden. work: hidden floats. */
void mb_rnn_f32(const float *x, const float *h0,
                const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                float *y, float *h_n, float *work,
                int32_t seq_len, int32_t batch, int32_t input_size, int32_t hidden,
                int32_t y_width, int32_t batch_first, int32_t reverse, int32_t relu);

#endif
