"""The official AR-Seg motion composition, transcribed, and the golden it gives for a test clip.

`merge_motion` transcribes `mergeMotion` of the official pre-processing
(THU-LYJ-Lab/AR-Seg, pre-process/generate_compressed_dataset_camvid.py) with the same numpy
operations, generalised only in the frame size (the original hard-codes 720 x 960) and in
taking the per-pixel flows as arrays instead of reading libde265's dumps. Per pixel of frame
f1 (1..K, the keyframe is frame 0) a flow holds (mv_x, mv_y, ref_idx): a quarter-pixel vector
and the reference frame f1 - ref_idx - 1; ref_idx < 0 or >= max_ref_num is intra (zero motion
from the previous frame). Each step is rounded to whole pixels (np.round: halves to even),
clipped to the frame and chained to the keyframe. The result is, per frame and pixel, the
displacement to the keyframe in quarter pixels (whole pixels times 4).

`flows_from_vectors` builds those flows from block vectors as ar-seg-native rasterises them at
stride 1 (native/motion/block_field.cc: a pixel takes the last list-0 block containing it, with
ref_idx = the vector's display-order distance - 1).

    python3 python/tools/merge_motion_golden.py DUMP_DIR WIDTH HEIGHT OUT_DIR

DUMP_DIR is what `ar-seg mvs CLIP --dump DUMP_DIR` wrote for a clip whose first GOP has only
P-frames; OUT_DIR receives vectors-<i>.npy and refs-<i>.npy (its inputs, frames 1..K) and
golden-<i>.npy (int16 H x W x 2, quarter pixels) for the frames of the first GOP.
test/motion-official.test.js checks the native 'official' composition against them.
"""
import os
import sys

import numpy as np


def merge_motion(flows, h, w, max_ref_num=3):
    """flows: {f1: int16 (h, w, 3)} for f1 = 1..frame_end. Returns dp[:, :, :, :2] as the
    original does: int32 (h, w, frame_end + 1, 2); frame 0 stays -1 (the keyframe)."""
    frame_start, frame_end = 0, max(flows)
    dp = np.ones([h, w, frame_end + 1, 3], dtype=np.int32) * -1

    for f1 in range(frame_start + 1, frame_end + 1):
        flow = flows[f1].copy()

        intra_mask = np.logical_or(flow[..., 2] < 0, flow[..., 2] >= max_ref_num)
        for i in range(3):
            flow[..., i][intra_mask] = 0

        k1_mat, j1_mat = np.meshgrid(range(w), range(h))
        j2_mat = j1_mat + np.round(flow[..., 1] / 4).astype(int)
        k2_mat = k1_mat + np.round(flow[..., 0] / 4).astype(int)
        f2_mat = np.maximum(0, f1 - flow[..., 2] - 1)

        j2_mat = np.clip(j2_mat, 0, h - 1)
        k2_mat = np.clip(k2_mat, 0, w - 1)

        dp[j1_mat[..., np.newaxis], k1_mat[..., np.newaxis], np.ones([h, w, 1], dtype=np.int32) * f1] = np.where(
            np.tile((flow[..., 2] == 90)[..., np.newaxis, np.newaxis], (1, 1, 1, 3)),
            dp[j1_mat[..., np.newaxis], k1_mat[..., np.newaxis], np.ones([h, w, 1], dtype=np.int32) * f1],
            np.where(
                np.tile(
                    (dp[j2_mat[..., np.newaxis], k2_mat[..., np.newaxis], f2_mat[..., np.newaxis]][..., 2] != -1)[
                        ..., np.newaxis
                    ],
                    (1, 1, 1, 3),
                ),
                dp[j2_mat[..., np.newaxis], k2_mat[..., np.newaxis], f2_mat[..., np.newaxis]],
                np.stack([k2_mat, j2_mat, f2_mat], axis=-1)[..., np.newaxis, :],
            ),
        )
    k1_mat, j1_mat = np.meshgrid(range(w), range(h))

    dp[:, :, 1:, 0] = (dp[:, :, 1:, 0] - np.tile(k1_mat[..., np.newaxis], (1, 1, frame_end))) * 4
    dp[:, :, 1:, 1] = (dp[:, :, 1:, 1] - np.tile(j1_mat[..., np.newaxis], (1, 1, frame_end))) * 4

    return dp[:, :, :, :2]


def flows_from_vectors(vectors, refs, h, w):
    """vectors: int32 (N, 10) in the mv-extractor layout; refs: int32 (N,) display-order
    distances (+ = past; 0 unknown, INT32_MIN placeholder: skipped). Returns int16 (h, w, 3)."""
    flow = np.zeros([h, w, 3], dtype=np.int16)
    flow[..., 2] = -1  # intra unless a block covers the pixel
    for row, ref in zip(vectors, refs):
        source, bw, bh, _, _, dst_x, dst_y, mx, my, scale = (int(v) for v in row)
        if source > 0 or ref <= 0 or bw <= 0 or bh <= 0 or scale <= 0:
            continue
        # pixels x with 2 * dst_x - bw <= 2 * x < 2 * dst_x + bw
        x0 = max(0, -((bw - 2 * dst_x) // 2))
        x1 = min(w, -((-(2 * dst_x + bw)) // 2))
        y0 = max(0, -((bh - 2 * dst_y) // 2))
        y1 = min(h, -((-(2 * dst_y + bh)) // 2))
        if x0 >= x1 or y0 >= y1:
            continue
        assert (4 * mx) % scale == 0 and (4 * my) % scale == 0, 'vectors finer than a quarter pixel'
        flow[y0:y1, x0:x1, 0] = 4 * mx // scale
        flow[y0:y1, x0:x1, 1] = 4 * my // scale
        flow[y0:y1, x0:x1, 2] = ref - 1
    return flow


def main(dump_dir, w, h, out_dir):
    types = open(os.path.join(dump_dir, 'frame_types.txt')).read().split()
    gop_end = next((i for i in range(1, len(types)) if types[i] == 'I'), len(types)) - 1
    assert all(t == 'P' for t in types[1 : gop_end + 1]), 'the first GOP must hold P-frames only'

    def mvs(i):
        return np.load(os.path.join(dump_dir, 'motion_vectors', f'mvs-{i}.npy'))

    def refs(i):
        return np.load(os.path.join(dump_dir, 'motion_vectors', f'refs-{i}.npy'))

    os.makedirs(out_dir, exist_ok=True)
    flows = {}
    for i in range(1, gop_end + 1):
        np.save(os.path.join(out_dir, f'vectors-{i}.npy'), mvs(i).astype(np.int32))
        np.save(os.path.join(out_dir, f'refs-{i}.npy'), refs(i).astype(np.int32))
        flows[i] = flows_from_vectors(mvs(i), refs(i), h, w)
    dp = merge_motion(flows, h, w)
    for i in range(1, gop_end + 1):
        np.save(os.path.join(out_dir, f'golden-{i}.npy'), dp[:, :, i, :].astype(np.int16))
    print(f'{gop_end} frames of {w}x{h} written to {out_dir}')


if __name__ == '__main__':
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
