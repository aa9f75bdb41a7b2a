#include "frame_converter.h"

#include "../common/coded_error.h"

extern "C" {
#include <libavutil/pixdesc.h>
}

namespace arseg {

namespace {

// Decoders may still emit the deprecated full-range "J" formats; swscale wants the plain
// format plus an explicit range.
AVPixelFormat plainFormat(AVPixelFormat fmt, bool& fullRange) {
  switch (fmt) {
    case AV_PIX_FMT_YUVJ420P: fullRange = true; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: fullRange = true; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: fullRange = true; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: fullRange = true; return AV_PIX_FMT_YUV440P;
    default: return fmt;
  }
}

}  // namespace

void FrameConverter::scale(const AVFrame* frame, int width, int height, uint8_t* dst, int dstStride) {
  bool fullRange = frame->color_range == AVCOL_RANGE_JPEG;
  const AVPixelFormat src = plainFormat(static_cast<AVPixelFormat>(frame->format), fullRange);
  const bool resizing = width != frame->width || height != frame->height;
  sws_ = sws_getCachedContext(sws_, frame->width, frame->height, src, width, height, AV_PIX_FMT_RGB24,
                              resizing ? SWS_BILINEAR : SWS_POINT | SWS_ACCURATE_RND, nullptr, nullptr, nullptr);
  owner_.release();
  owner_.reset(sws_);
  if (!sws_) {
    const char* name = av_get_pix_fmt_name(src);
    throw CodedError("ERR_UNSUPPORTED_FORMAT",
                     std::string("cannot convert pixel format ") + (name ? name : "unknown") + " to RGB");
  }
  // Honour the stream's colour matrix and range (BT.709 for HD, BT.601 otherwise).
  int matrix = SWS_CS_DEFAULT;
  switch (frame->colorspace) {
    case AVCOL_SPC_BT709: matrix = SWS_CS_ITU709; break;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: matrix = SWS_CS_BT2020; break;
    case AVCOL_SPC_SMPTE240M: matrix = SWS_CS_SMPTE240M; break;
    case AVCOL_SPC_FCC: matrix = SWS_CS_FCC; break;
    default: break;
  }
  sws_setColorspaceDetails(sws_, sws_getCoefficients(matrix), fullRange ? 1 : 0, sws_getCoefficients(SWS_CS_DEFAULT), 1,
                           0, 1 << 16, 1 << 16);
  uint8_t* dstPlanes[4] = {dst, nullptr, nullptr, nullptr};
  int dstStrides[4] = {dstStride, 0, 0, 0};
  sws_scale(sws_, frame->data, frame->linesize, 0, frame->height, dstPlanes, dstStrides);
}

const uint8_t* FrameConverter::luma(const AVFrame* frame, ptrdiff_t& linesize) {
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame->format));
  // Luma as the first component, alone in plane 0, one byte per sample: yuv4xxp, yuvj4xxp,
  // nv12/nv21, gray, yuva... (not RGB, palettes, packed YUV or deeper samples).
  const bool direct = desc && desc->nb_components >= 1 &&
                      !(desc->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM |
                                       AV_PIX_FMT_FLAG_HWACCEL)) &&
                      desc->comp[0].plane == 0 && desc->comp[0].depth == 8 && desc->comp[0].step == 1 &&
                      desc->comp[0].offset == 0 && desc->comp[0].shift == 0;
  if (direct && frame->data[0]) {
    linesize = frame->linesize[0];
    return frame->data[0];
  }
  bool fullRange = frame->color_range == AVCOL_RANGE_JPEG;
  const AVPixelFormat src = plainFormat(static_cast<AVPixelFormat>(frame->format), fullRange);
  graySws_ = sws_getCachedContext(graySws_, frame->width, frame->height, src, frame->width, frame->height,
                                  AV_PIX_FMT_GRAY8, SWS_POINT, nullptr, nullptr, nullptr);
  grayOwner_.release();
  grayOwner_.reset(graySws_);
  if (!graySws_) {
    const char* name = av_get_pix_fmt_name(src);
    throw CodedError("ERR_UNSUPPORTED_FORMAT",
                     std::string("cannot convert pixel format ") + (name ? name : "unknown") + " to grey");
  }
  gray_.resize(static_cast<size_t>(frame->width) * frame->height);
  uint8_t* dstPlanes[4] = {gray_.data(), nullptr, nullptr, nullptr};
  int dstStrides[4] = {frame->width, 0, 0, 0};
  sws_scale(graySws_, frame->data, frame->linesize, 0, frame->height, dstPlanes, dstStrides);
  linesize = frame->width;
  return gray_.data();
}

void FrameConverter::toRgb(const AVFrame* frame, std::vector<uint8_t>& out) {
  out.resize(static_cast<size_t>(frame->width) * frame->height * 3);
  scale(frame, frame->width, frame->height, out.data(), frame->width * 3);
}

void FrameConverter::toTensor(const AVFrame* frame, const TensorSpec& spec, std::vector<float>& out) {
  const size_t plane = static_cast<size_t>(spec.width) * spec.height;
  scratch_.resize(plane * 3);
  scale(frame, spec.width, spec.height, scratch_.data(), spec.width * 3);
  out.resize(plane * 3);
  float gain[3], bias[3];
  for (int c = 0; c < 3; ++c) {  // (v / 255 - mean) / std == v * gain + bias
    gain[c] = 1.f / (255.f * spec.std[c]);
    bias[c] = -spec.mean[c] / spec.std[c];
  }
  float* planes[3] = {out.data(), out.data() + plane, out.data() + 2 * plane};
  if (spec.bgr) std::swap(planes[0], planes[2]);
  const uint8_t* px = scratch_.data();
  for (size_t i = 0; i < plane; ++i, px += 3) {
    planes[0][i] = px[0] * gain[0] + bias[0];
    planes[1][i] = px[1] * gain[1] + bias[1];
    planes[2][i] = px[2] * gain[2] + bias[2];
  }
}

}  // namespace arseg
