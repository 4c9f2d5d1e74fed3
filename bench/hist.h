// Latency histogram shared by the load generators (header-only: each tool is one file).
#pragma once
#include <stdint.h>

// Log-linear histogram (HDR-like): 128 exact values, then 64 sub-buckets per
// power of two (<1.6% error); fixed array so recording never allocates.
#define H_BUCKETS (128 + 58 * 64)
typedef struct { uint64_t c[H_BUCKETS]; uint64_t n, max; } hist_t;

static inline int h_index(uint64_t v) {
  if (v < 128) return (int)v;
  int shift = (63 - __builtin_clzll(v)) - 6; // mantissa lands in [64,127]
  return 128 + (shift - 1) * 64 + (int)((v >> shift) - 64);
}
static inline uint64_t h_value(int i) { // bucket midpoint
  if (i < 128) return (uint64_t)i;
  int shift = (i - 128) / 64 + 1;
  uint64_t mant = (uint64_t)((i - 128) % 64 + 64);
  return (mant << shift) + ((1ull << shift) >> 1);
}
static inline void h_rec(hist_t *h, uint64_t v) {
  h->c[h_index(v)]++;
  h->n++;
  if (v > h->max) h->max = v;
}
static inline double h_pct(const hist_t *h, double p) {
  if (!h->n) return 0;
  uint64_t want = (uint64_t)(p * (double)h->n + 0.999999), acc = 0;
  if (want < 1) want = 1;
  for (int i = 0; i < H_BUCKETS; i++) {
    acc += h->c[i];
    if (acc >= want) {
      uint64_t v = h_value(i);
      return (double)(v > h->max ? h->max : v);
    }
  }
  return (double)h->max;
}
