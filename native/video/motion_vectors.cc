#include "motion_vectors.h"

#include "frame_request.h"

extern "C" {
#include <libavutil/motion_vector.h>
}

namespace arseg {

bool codecExportsMotionVectors(AVCodecID id) {
  switch (id) {
    case AV_CODEC_ID_H264:
    case AV_CODEC_ID_MPEG4:
    case AV_CODEC_ID_MPEG1VIDEO:
    case AV_CODEC_ID_MPEG2VIDEO:
    case AV_CODEC_ID_H263:
    case AV_CODEC_ID_H263P:
      return true;
    default:
      return false;
  }
}

void exportMotionVectors(const AVFrame* frame, std::vector<int32_t>& out) {
  out.clear();
  const AVFrameSideData* sd = av_frame_get_side_data(frame, AV_FRAME_DATA_MOTION_VECTORS);
  if (!sd) return;
  const auto* mvs = reinterpret_cast<const AVMotionVector*>(sd->data);
  const size_t count = sd->size / sizeof(AVMotionVector);
  out.resize(count * kVectorColumns);
  int32_t* row = out.data();
  for (size_t i = 0; i < count; ++i, row += kVectorColumns) {
    const AVMotionVector& mv = mvs[i];
    row[0] = mv.source;
    row[1] = mv.w;
    row[2] = mv.h;
    row[3] = mv.src_x;
    row[4] = mv.src_y;
    row[5] = mv.dst_x;
    row[6] = mv.dst_y;
    row[7] = mv.motion_x;
    row[8] = mv.motion_y;
    row[9] = mv.motion_scale;
  }
}

}  // namespace arseg
