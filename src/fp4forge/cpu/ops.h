// The transformer's float32 operations besides the weight products (matmul.h): RMSNorm, rotary
// embeddings, causal attention over a KV cache, gated activations, NVFP4 activation quantization
// (W4A4). Each has a scalar reference here that tests compare the SIMD path with.
#pragma once

#include <cstdint>

namespace fp4forge {
class ThreadPool;
}

namespace fp4forge::cpu {

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · weight, for r < rows ([rows, cols] row-major;
// out may be x). As transformers' LlamaRMSNorm in float32.
void RmsNorm(const float* x, int64_t rows, int64_t cols, const float* weight, float eps, float* out);
void RmsNormRef(const float* x, int64_t rows, int64_t cols, const float* weight, float eps, float* out);

// Rotates the first 2·half dims of each of `num_heads` heads of `x` ([num_heads, head_dim]) as
// transformers' rotate_half does: (x[i], x[i+half]) by the angle whose cos/sin are cos[i], sin[i].
void ApplyRope(float* x, int64_t num_heads, int64_t head_dim, int64_t half, const float* cos, const float* sin);

struct AttentionShape {
  int64_t num_tokens = 0;   // query rows
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // query head h reads kv head h / (num_heads / num_kv_heads)
  int64_t head_dim = 0;
  int64_t first_position = 0;  // position of query row 0; row i sits at first_position + i
  int64_t sliding_window = 0;  // 0: attend to every earlier position; else to the last `window` ones
};

// Causal attention: out[i, h, :] = Σ_j softmax_j(q[i, h, :]·k[j, g, :] / sqrt(head_dim)) v[j, g, :]
// over the positions j the query may see. q: [num_tokens, q_stride] with head h at h·head_dim;
// k, v: the cache, [positions, num_kv_heads, head_dim], holding at least every position up to the
// last query's; out: [num_tokens, num_heads · head_dim]. Rows and heads split over the pool.
void Attention(const AttentionShape& shape, const float* q, int64_t q_stride, const float* k, const float* v,
               float* out, ThreadPool& pool);
// The reference: the same in double, one query at a time.
void AttentionRef(const AttentionShape& shape, const float* q, int64_t q_stride, const float* k, const float* v,
                  float* out);

// gate[i] = act(gate[i]) · up[i] for i < n: SiLU (x·sigmoid(x)) or GELU's tanh approximation.
void SiluMul(float* gate, const float* up, int64_t n);
void GeluTanhMul(float* gate, const float* up, int64_t n);

// W4A4: each row of x ([rows, cols], cols % 16 == 0) quantized to NVFP4 as a Blackwell runtime does
// (FORMATS.md §3.6: the row in BF16, per 16-block scale e4m3(gs · amax / 6), elements by
// E2M1 round-to-nearest-even of x · 1/(scale/gs)) and written back dequantized, so that a float
// product with the weights equals the runtime's FP4 × FP4 product up to summation order.
void QuantizeActivationsNvfp4(const float* x, int64_t rows, int64_t cols, float global_scale, float* out);

}  // namespace fp4forge::cpu
