// Labels from decoder logits: bilinear upsampling of the logits to the frame size followed by the
// arg-max over classes, in one pass and without materialising the upsampled logits
// (classes x H x W floats). The upsampling's coordinate map is the network's own: PSPNet18's
// decoder upsamples with align_corners=True, BiSeNet18's x8 head with align_corners=False.
// Logits already at the output size (PSPNet18's) skip the interpolation: a vectorised arg-max
// over the class planes, with the same labels.
#pragma once

#include <cstdint>

namespace arseg {

enum class LogitsUpsampling {
  AlignCorners,  // output x reads input x * (in - 1) / (out - 1)
  HalfPixel,     // output x reads input (x + 0.5) * in / out - 0.5, clamped at 0 (PyTorch's rule)
};

// logits: classes x h x w; labels: outH x outW class indices (ties: the lowest index).
// classes <= 255.
void logitsToLabels(const float* logits, int classes, int h, int w, int outH, int outW,
                    LogitsUpsampling upsampling, uint8_t* labels, int threads);

// A first resize the network does itself, before the one to the frame.
struct LogitsResize {
  int height = 0;
  int width = 0;
  LogitsUpsampling upsampling = LogitsUpsampling::AlignCorners;
};

// Two resizes in a row, as the official pipeline makes labels: logits -> `via` (the network's
// own resize: BiSeNet18's x8 head, align_corners=False; the PSPNets' resize to their input size,
// align_corners=True) -> outH x outW with `upsampling` (the evaluation's resize to the label
// size), then the arg-max. One pass: per axis the two resizes compose into at most four taps
// (common/bilinear_axis.h), and the intermediate logits are never materialised. (The official
// CamVid PSPNet's log-softmax after its own resize needs nothing here: it subtracts the same
// value from every class of a pixel, so the resized log-probabilities have the arg-max of the
// resized logits.)
void logitsToLabelsVia(const float* logits, int classes, int h, int w, const LogitsResize& via, int outH,
                       int outW, LogitsUpsampling upsampling, uint8_t* labels, int threads);

}  // namespace arseg
