// The official AR-Seg's LR input: the normalised HR tensor resized bilinearly with
// align_corners=True (evaluation.py: F.interpolate(imgs, [int(H*s), int(W*s)], mode='bilinear',
// align_corners=True)), float in, float out, by PyTorch's arithmetic (common/bilinear_axis.h),
// so that the LR network sees what it saw in the official evaluation.
#pragma once

namespace arseg {

// src: channels x srcH x srcW planes; out: channels x outH x outW.
void resizeAlignCorners(const float* src, int channels, int srcH, int srcW, int outH, int outW, float* out);

}  // namespace arseg
