// Resamples a dense motion field onto another grid covering the same frame, with the
// displacements rescaled to the new grid's pixels: what CReFF needs at the feature size
// (docs/method.md: the field is resized to the feature size with its values scaled by the same
// factor). Three ways, named in the bundle's manifest (motion.resize):
//  - CellCentres (this project's): each output cell sampled bilinearly at its centre from the
//    field's cell centres, clamped at the border; x scaled by outW / frameW, y by outH / frameH.
//  - AlignCorners (the official evaluation, evaluation.py): the per-pixel field (every pixel
//    takes its cell's value) resized bilinearly with align_corners=True, both components scaled
//    by outH / frameH (the official code scales by the height ratio alone).
//  - Nearest (the official training, train_pair.py): the same with F.interpolate's nearest
//    rule, source pixel floor(x * frameW / outW) in float.
#pragma once

namespace arseg {

enum class MotionResize { CellCentres, AlignCorners, Nearest };

// field: 2 x gh x gw cells of `stride` pixels over a frameW x frameH frame; out: 2 x outH x outW.
void resizeMotionField(const float* field, int gw, int gh, int stride, int frameW, int frameH, int outW, int outH,
                       float* out, MotionResize mode = MotionResize::CellCentres);

}  // namespace arseg
