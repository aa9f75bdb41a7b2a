"""The transcription of the official mergeMotion (python/tools/merge_motion_golden.py): checked
on hand-made flows against values worked out by hand, and its committed golden for
test/fixtures/hevc-zoom.mp4 regenerated from the committed inputs (test/motion-official.test.js
checks the native 'official' composition against that golden)."""
import glob
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from merge_motion_golden import flows_from_vectors, merge_motion  # noqa: E402

GOLDEN = os.path.join(ROOT, "test", "fixtures", "official")


def flow(h, w, mx, my, ref):
    f = np.zeros([h, w, 3], dtype=np.int16)
    f[..., 0], f[..., 1], f[..., 2] = mx, my, ref
    return f


def test_steps_round_half_to_even_clip_and_chain():
    h, w = 4, 6
    # frame 1: +2 quarter pixels (0.5 px: rounds to 0) in x, -6 (-1.5 px: rounds to -2) in y
    # frame 2: +6 (1.5 px: rounds to 2) in x from frame 1; frame 3: intra (ref 5 >= 3) -> frame 2
    # frame 4: ref_idx 2 -> frame 1, -4 (-1 px) in x
    flows = {1: flow(h, w, 2, -6, 0), 2: flow(h, w, 6, 0, 0), 3: flow(h, w, 99, 99, 5), 4: flow(h, w, -4, 0, 2)}
    dp = merge_motion(flows, h, w)
    assert dp.shape == (h, w, 5, 2)
    assert (dp[:, :, 0] == -1).all()  # the keyframe stays as the original leaves it
    # frame 1 at (y=3, x=1): x 1 + 0 = 1, y 3 - 2 = 1 -> displacement (0, -2) px = (0, -8) quarter
    assert tuple(dp[3, 1, 1]) == (0, -8)
    # row 0: y - 2 clipped to 0
    assert tuple(dp[0, 1, 1]) == (0, 0)
    # frame 2 at (3, 1): lands on frame 1 at (3, 3), which holds keyframe position (x 3, y 1)
    assert tuple(dp[3, 1, 2]) == ((3 - 1) * 4, (1 - 3) * 4)
    # the last columns land clipped at x = 5
    assert tuple(dp[3, 5, 2]) == (0, -8)
    # frame 3 is intra: zero motion from frame 2 at the same pixel
    assert (dp[:, :, 3] == dp[:, :, 2]).all()
    # frame 4 follows frame 1 (f - ref_idx - 1 = 1) from x - 1
    assert tuple(dp[3, 2, 4]) == ((1 - 2) * 4, (1 - 3) * 4)
    assert tuple(dp[3, 0, 4]) == (0, -8)  # x - 1 clipped to 0, then frame 1 at (3, 0)


def test_vectors_rasterise_per_pixel_like_the_native_code():
    # a 4x4 block centred at (2, 2): pixels 0..3; an 8x8 at (8, 4) over the first one's right
    # half; a list-1 vector and a placeholder are ignored
    vectors = np.array(
        [
            [-1, 4, 4, 0, 0, 2, 2, 5, -3, 4],
            [-1, 8, 8, 0, 0, 8, 4, 2, 2, 2],
            [1, 16, 16, 0, 0, 8, 8, 40, 40, 4],
            [-1, 16, 16, 0, 0, 8, 8, 40, 40, 4],
        ],
        dtype=np.int32,
    )
    refs = np.array([1, 3, -1, np.iinfo(np.int32).min], dtype=np.int32)
    f = flows_from_vectors(vectors, refs, 8, 12)
    assert tuple(f[0, 0]) == (5, -3, 0)
    assert tuple(f[3, 3]) == (5, -3, 0)
    assert tuple(f[0, 4]) == (4, 4, 2)  # half pixels in quarter units, ref_idx = 3 - 1
    assert tuple(f[7, 11]) == (4, 4, 2)
    assert tuple(f[4, 0]) == (0, 0, -1)  # no block: intra


def test_golden_regenerates_from_its_inputs():
    frames = sorted(int(p.split("-")[-1][:-4]) for p in glob.glob(os.path.join(GOLDEN, "golden-*.npy")))
    assert frames == list(range(1, 12))
    h, w = np.load(os.path.join(GOLDEN, "golden-1.npy")).shape[:2]
    flows = {
        i: flows_from_vectors(
            np.load(os.path.join(GOLDEN, f"vectors-{i}.npy")), np.load(os.path.join(GOLDEN, f"refs-{i}.npy")), h, w
        )
        for i in frames
    }
    dp = merge_motion(flows, h, w)
    for i in frames:
        golden = np.load(os.path.join(GOLDEN, f"golden-{i}.npy"))
        assert golden.dtype == np.int16
        np.testing.assert_array_equal(dp[:, :, i, :], golden)
    # the clip moves: the fields are not trivially zero, and rounding to even is exercised
    assert np.abs(dp[:, :, 11]).max() >= 40
