// Labels from decoder logits: bilinear upsampling of the logits to the frame size followed by the
// arg-max over classes, in one pass and without materialising the upsampled logits
// (classes x H x W floats). The resize is given by its per-axis tap tables (labels_taps.h): one
// resize with the network's own coordinate map (PSPNet18's decoder upsamples with
// align_corners=True, BiSeNet18's x8 head with align_corners=False), or two in a row as the
// official pipeline makes labels. The device path runs the same tables through the same
// arithmetic (labels_kernel.cuh), so both give the same labels. Logits already at the output
// size (PSPNet18's) skip the interpolation: a vectorised arg-max over the class planes.
#pragma once

#include <cstdint>

#include "labels_taps.h"

namespace arseg {

// logits: classes x taps.resize.height x taps.resize.width; labels: outHeight x outWidth class
// indices (ties: the lowest index). classes 1 to 255. The value of each class is labels_taps.h's.
void logitsToLabels(const float* logits, int classes, const LabelsTaps& taps, uint8_t* labels, int threads);

// One resize: logits h x w -> outH x outW with `upsampling` (tables from labelsTaps, kept).
void logitsToLabels(const float* logits, int classes, int h, int w, int outH, int outW, LogitsUpsampling upsampling,
                    uint8_t* labels, int threads);

// Two resizes in a row, as the official pipeline makes labels: logits -> `via` (the network's
// own resize: BiSeNet18's x8 head, align_corners=False; the PSPNets' resize to their input size,
// align_corners=True) -> outH x outW with `upsampling` (the evaluation's resize to the label
// size), then the arg-max. Per axis the two resizes compose into at most four taps
// (common/bilinear_axis.h), and the intermediate logits are never materialised. (The official
// CamVid PSPNet's log-softmax after its own resize needs nothing here: it subtracts the same
// value from every class of a pixel, so the resized log-probabilities have the arg-max of the
// resized logits.)
void logitsToLabelsVia(const float* logits, int classes, int h, int w, const LogitsResize& via, int outH, int outW,
                       LogitsUpsampling upsampling, uint8_t* labels, int threads);

}  // namespace arseg
