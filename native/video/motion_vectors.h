// Reads libavcodec's AV_FRAME_DATA_MOTION_VECTORS side data into flat int32 rows.
#pragma once

#include <cstdint>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
}

namespace arseg {

// Codecs whose libavcodec decoders export block motion vectors (export_mvs).
bool codecExportsMotionVectors(AVCodecID id);

// Appends one row of 10 columns per AVMotionVector of `frame` to `out` (cleared first):
// source, w, h, src_x, src_y, dst_x, dst_y, motion_x, motion_y, motion_scale.
// A frame without side data (an I-frame, or a skipped frame) gives zero rows.
void exportMotionVectors(const AVFrame* frame, std::vector<int32_t>& out);

}  // namespace arseg
