// Data movement: permute, copyRange, gather and scatterAdd.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"
#include "pool.h"

namespace sw {
namespace {

/** Input strides of a collapsed permutation: out dim i walks input stride st[i]. */
struct Perm {
  std::vector<int64_t> shape, st;  // output shape and matching input strides
};

Perm collapse_perm(const int64_t* shape, const int64_t* perm, int rank) {
  std::vector<int64_t> in_st(static_cast<size_t>(rank));
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    in_st[i] = s;
    s *= shape[i];
  }
  Perm p;
  for (int i = 0; i < rank; i++) {
    int64_t n = shape[perm[i]], st = in_st[perm[i]];
    if (n == 1) continue;
    if (!p.shape.empty() && p.st.back() == st * n) {  // still contiguous in the input: merge
      p.shape.back() *= n;
      p.st.back() = st;
    } else {
      p.shape.push_back(n);
      p.st.push_back(st);
    }
  }
  return p;
}

template <class T>
void permute_t(const T* x, const Perm& p, T* out) {
  int r = int(p.shape.size());
  int64_t total = 1;
  for (int64_t n : p.shape) total *= n;
  if (r <= 1) {  // the identity
    parallel_for(total, 1, [&](int64_t b, int64_t e) { std::memcpy(out + b, x + b, size_t(e - b) * sizeof(T)); });
    return;
  }
  // Output dim `j` is the one that walks the input contiguously (stride 1); the last output dim is `r - 1`.
  int j = 0;
  for (int i = 0; i < r; i++)
    if (p.st[i] == 1) j = i;
  const int64_t TB = 32;  // transpose tile
  int64_t nl = p.shape[r - 1], nj = p.shape[j];
  // Tasks: every index of the output dims other than j and r-1, times tiles of dim j.
  int64_t rest = j == r - 1 ? total / nl : total / nl / nj, tj = (nj + TB - 1) / TB;
  std::vector<int64_t> ost(static_cast<size_t>(r));  // output strides
  int64_t s = 1;
  for (int i = r - 1; i >= 0; i--) {
    ost[i] = s;
    s *= p.shape[i];
  }
  parallel_for(rest * tj, std::min(nj, TB) * nl, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      int64_t rem = t / tj, j0 = (t % tj) * TB, j1 = std::min(nj, j0 + TB);
      int64_t in_off = 0, out_off = 0;
      for (int i = r - 2; i >= 0; i--) {
        if (i == j) continue;
        int64_t idx = rem % p.shape[i];
        rem /= p.shape[i];
        in_off += idx * p.st[i];
        out_off += idx * ost[i];
      }
      const int64_t sl = p.st[r - 1];
      if (j == r - 1) {  // j is the last dim: a contiguous copy
        std::memcpy(out + out_off + j0, x + in_off + j0, size_t(j1 - j0) * sizeof(T));
        continue;
      }
      for (int64_t l0 = 0; l0 < nl; l0 += TB) {
        int64_t l1 = std::min(nl, l0 + TB);
        for (int64_t jj = j0; jj < j1; jj++) {
          const T* src = x + in_off + jj;
          T* dst = out + out_off + jj * ost[j];
          for (int64_t l = l0; l < l1; l++) dst[l] = src[l * sl];
        }
      }
    }
  });
}

}  // namespace

void permute(const void* x, int elem_bytes, const int64_t* shape, const int64_t* perm, int rank, void* out) {
  Perm p = collapse_perm(shape, perm, rank);
  switch (elem_bytes) {
    case 2: return permute_t(static_cast<const uint16_t*>(x), p, static_cast<uint16_t*>(out));
    case 8: return permute_t(static_cast<const uint64_t*>(x), p, static_cast<uint64_t*>(out));
    default: return permute_t(static_cast<const uint32_t*>(x), p, static_cast<uint32_t*>(out));
  }
}

void copy_range(const void* src, int64_t src_dim, int64_t src_start, void* dst, int64_t dst_dim, int64_t dst_start,
                int64_t outer, int64_t len, int64_t inner, int eb, bool accumulate_f32) {
  int64_t row = len * inner;  // contiguous elements per outer index
  parallel_for(outer, row, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; o++) {
      int64_t s0 = (o * src_dim + src_start) * inner, d0 = (o * dst_dim + dst_start) * inner;
      if (accumulate_f32) {
        const float* s = static_cast<const float*>(src) + s0;
        float* d = static_cast<float*>(dst) + d0;
        for (int64_t i = 0; i < row; i++) d[i] += s[i];
      } else {
        std::memcpy(static_cast<char*>(dst) + d0 * eb, static_cast<const char*>(src) + s0 * eb, size_t(row * eb));
      }
    }
  });
}

namespace {
std::string check_ids(const char* op, const int32_t* ids, int64_t n, int64_t v) {
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= v) {
      return std::string(op) + ": id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
             " is outside [0, " + std::to_string(v) + ")";
    }
  }
  return "";
}
}  // namespace

std::string gather(const float* table, const int32_t* ids, float* out, int64_t n, int64_t v, int64_t c) {
  std::string err = check_ids("gather", ids, n, v);
  if (!err.empty()) return err;
  parallel_for(n, c, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) std::memcpy(out + i * c, table + int64_t(ids[i]) * c, size_t(c) * 4);
  });
  return "";
}

std::string scatter_add(const float* g, const int32_t* ids, float* out, int64_t n, int64_t v, int64_t c) {
  std::string err = check_ids("scatterAdd", ids, n, v);
  if (!err.empty()) return err;
  // Threads own column ranges, so repeated ids never race and rows add in index order.
  const int64_t CB = 64;
  int64_t nb = (c + CB - 1) / CB;
  parallel_for(nb, n * std::min(c, CB), [&](int64_t b, int64_t e) {
    int64_t j0 = b * CB, j1 = std::min(c, e * CB);
    for (int64_t i = 0; i < n; i++) {
      const float* src = g + i * c;
      float* dst = out + int64_t(ids[i]) * c;
      for (int64_t j = j0; j < j1; j++) dst[j] += src[j];
    }
  });
  return "";
}

}  // namespace sw
