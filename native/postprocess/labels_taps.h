// How a frame's logits are resized to its labels, as two tables of taps, one per axis: every
// resize a bundle can declare (one bilinear resize, align-corners or half-pixel; two in a row,
// the network's own and then the evaluation's) is just other tables, computed on the host from
// common/bilinear_axis.h once per size and kept (labelsTaps). Both labels kernels take them: the
// CPU's (logits_to_labels.h, separable per row) and the device's (labels_kernel.cuh, per pixel),
// so that the two cannot disagree on a coordinate map and give the same labels bit for bit.
//
// The value of class c at output pixel (y, x), with v = rows[y] and u = columns[x]:
//   T(i)  = 0 + v.weight[0] * L[c][v.index[0]][i] + ... (v.count terms, left to right)
//   value = u.weight[0] * T(u.index[0]) + ... (columnTaps terms, left to right)
// every product and sum rounded to float on its own; the label is the first class with the
// greatest value. With `identity` (equal sizes, every tap the pixel itself) the labels are the
// plain arg-max over the class planes, which is what the formula gives for finite logits.
#pragma once

#include <memory>
#include <vector>

#include "../common/bilinear_axis.h"

namespace arseg {

enum class LogitsUpsampling {
  AlignCorners,  // output x reads input x * (in - 1) / (out - 1)
  HalfPixel,     // output x reads input (x + 0.5) * in / out - 0.5, clamped at 0 (PyTorch's rule)
};

// A first resize the network does itself, before the one to the frame.
struct LogitsResize {
  int height = 0;
  int width = 0;
  LogitsUpsampling upsampling = LogitsUpsampling::AlignCorners;
};

// One frame's logits to its labels: h x w logits, outHeight x outWidth labels, through `via`
// first when twoStep.
struct LabelsResize {
  int height = 0, width = 0;
  int outHeight = 0, outWidth = 0;
  LogitsUpsampling upsampling = LogitsUpsampling::AlignCorners;  // the (last) resize to the labels
  bool twoStep = false;
  LogitsResize via;  // when twoStep
};

bool operator==(const LabelsResize& a, const LabelsResize& b);

struct LabelsTaps {
  LabelsResize resize;
  // Equal sizes and every tap the pixel itself: the plain arg-max.
  bool identity = false;
  // The taps every column uses: the most any column has (1 to 4); columns with fewer are padded
  // with weight 0 on their first index, so that the inner loop has a fixed length.
  int columnTaps = 1;
  std::vector<AxisTaps> rows;     // outHeight entries, 1 to 4 taps each, no zero weights
  std::vector<AxisTaps> columns;  // outWidth entries, columnTaps taps each
};

// The tables of a resize (ERR_SHAPE for sizes below 1).
LabelsTaps makeLabelsTaps(const LabelsResize& resize);

// The same, kept: the last few resizes asked for (a video has one per branch) are computed once
// and shared. Thread-safe.
std::shared_ptr<const LabelsTaps> labelsTaps(const LabelsResize& resize);

}  // namespace arseg
