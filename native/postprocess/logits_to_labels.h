// Labels from decoder logits: bilinear upsampling of the logits to the frame size
// (align_corners=True, as the reference decoder does) followed by the arg-max over classes, in
// one pass and without materialising the upsampled logits (classes x H x W floats).
#pragma once

#include <cstdint>

namespace arseg {

// logits: classes x h x w; labels: outH x outW class indices (ties: the lowest index).
// classes <= 255.
void logitsToLabels(const float* logits, int classes, int h, int w, int outH, int outW,
                    uint8_t* labels, int threads);

}  // namespace arseg
