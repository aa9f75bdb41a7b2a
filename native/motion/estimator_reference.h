// The plain reference implementation of the motion estimator (estimator.h states the method),
// written for clarity, not speed: images are plain arrays read through a clamp-to-edge accessor,
// every patch sum is a scalar loop in element order. The vectorised estimator is tested against
// it on every SIMD path (test/estimator.test.js); they differ only by float rounding (sums in
// another order, fused multiply-adds).
#pragma once

#include <cstddef>
#include <cstdint>

#include "estimator.h"

namespace arseg {

// The field from the picture `cur` to the picture `prev` (8-bit luma planes of one size), on
// cells of `stride` frame pixels; `prior` as for estimateField. An empty estimate (no cells
// matched, zero field) when the frame is too small to search.
void estimateFieldReference(const uint8_t* prev, ptrdiff_t prevLinesize, const uint8_t* cur, ptrdiff_t curLinesize,
                            int width, int height, const MotionGrid* prior, int stride, const EstimatorOptions& o,
                            FieldEstimate& out);

}  // namespace arseg
