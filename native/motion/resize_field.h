// Resamples a dense motion field onto another grid covering the same frame, with the
// displacements rescaled to the new grid's pixels: what CReFF needs at the feature size
// (docs/method.md: the field is resized to the feature size with its values scaled by the same
// factor). Bilinear, clamped at the border.
#pragma once

namespace arseg {

// field: 2 x gh x gw cells of `stride` pixels over a frameW x frameH frame; out: 2 x outH x outW.
void resizeMotionField(const float* field, int gw, int gh, int stride, int frameW, int frameH,
                       int outW, int outH, float* out);

}  // namespace arseg
