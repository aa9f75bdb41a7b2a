// Converts decoded pictures to what networks and callers consume: packed RGB at the frame's
// size and float32 NCHW tensors at requested sizes. swscale does the colour conversion and the
// resize straight into a reusable buffer; normalisation then writes the planar float tensor in
// the same pass over that buffer, so each output is produced once, natively.
#pragma once

#include <cstdint>
#include <vector>

#include "frame_request.h"
#include "libav_ptr.h"

namespace arseg {

class FrameConverter {
 public:
  // Packed RGB24, height x width x 3, at the frame's own size.
  void toRgb(const AVFrame* frame, std::vector<uint8_t>& out);
  // 1 x 3 x spec.height x spec.width float32, normalised.
  void toTensor(const AVFrame* frame, const TensorSpec& spec, std::vector<float>& out);
  // The picture's 8-bit luma at its own size (what the motion estimator reads): the decoder's
  // own plane when it is one (8-bit planar or semi-planar YUV, grey), else a conversion to
  // GRAY8. Valid until the next call or until the frame is released.
  const uint8_t* luma(const AVFrame* frame, ptrdiff_t& linesize);

 private:
  void scale(const AVFrame* frame, int width, int height, uint8_t* dst, int dstStride);

  SwsContext* sws_ = nullptr;  // cached across frames by sws_getCachedContext
  SwsContextPtr owner_;
  std::vector<uint8_t> scratch_;
  SwsContext* graySws_ = nullptr;  // for luma(): a context of its own, so neither thrashes
  SwsContextPtr grayOwner_;
  std::vector<uint8_t> gray_;
};

}  // namespace arseg
