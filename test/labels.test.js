'use strict';
// Labels from logits (native/postprocess): bilinear resize of the logits to the frame followed by
// the arg-max, in both coordinate maps a bundle can declare, against a plain JS reference of
// PyTorch's F.interpolate(mode='bilinear') rules; and logits already at the frame size, where
// the resize is the identity and the labels are the plain arg-max, exactly.
const test = require('ava');
const { addon } = require('../dist/native');
const { randoms } = require('./helpers/random');
const { labelsReference } = require('./helpers/labels-reference');

function reference(logits, classes, h, w, outH, outW, mode) {
  return labelsReference(logits, classes, h, w, outH, outW, mode);
}

const cases = [
  ['x8, as BiSeNet18', 4, 6, 8, 48, 64],
  ['not a multiple', 5, 7, 9, 30, 41],
  ['same size', 3, 10, 12, 10, 12],
  ['one row of logits', 2, 1, 5, 7, 20],
];

for (const mode of ['align-corners', 'half-pixel']) {
  for (const [name, classes, h, w, outH, outW] of cases) {
    test(`${mode}, ${name}: labels are the arg-max of the resized logits`, async (t) => {
      const logits = randoms(classes * h * w, 11 + h * w, 3);
      const got = await addon().labelsFromLogits(logits, classes, h, w, outH, outW, mode);
      const ref = reference(logits, classes, h, w, outH, outW, mode);
      let wrong = 0;
      for (let i = 0; i < got.length; i++) if (got[i] !== ref.labels[i] && ref.margins[i] > 1e-5) wrong++;
      t.is(wrong, 0);
    });
  }
}

test('the two coordinate maps give different labels for an x8 resize (the mode is not ignored)', async (t) => {
  const logits = randoms(4 * 6 * 8, 5, 3);
  const a = await addon().labelsFromLogits(logits, 4, 6, 8, 48, 64, 'align-corners');
  const b = await addon().labelsFromLogits(logits, 4, 6, 8, 48, 64, 'half-pixel');
  const differ = a.reduce((n, v, i) => n + (v !== b[i] ? 1 : 0), 0);
  t.true(differ > 0);
  t.deepEqual(await addon().labelsFromLogits(logits, 4, 6, 8, 48, 64), a, 'the default is align-corners');
});

test('an unknown coordinate map is refused with ERR_INVALID_ARG', (t) => {
  const logits = randoms(2 * 2 * 2, 1);
  t.throws(() => addon().labelsFromLogits(logits, 2, 2, 2, 4, 4, 'nearest'), { code: 'ERR_INVALID_ARG' });
});

// Logits at the frame size take the plain arg-max path: it must give exactly the reference's
// labels (its interpolation is the identity there), ties included: the first maximum wins.
// Shapes: less than one vector, ragged ends (widths not multiples of 16), one class, 255
// classes, several parallel tasks (more than 8192 pixels).
const SAME_SIZE = [
  [12, 7, 5],
  [1, 4, 9],
  [2, 1, 1],
  [255, 3, 21],
  [12, 90, 101],
  [7, 48, 64],
];

for (const mode of ['align-corners', 'half-pixel']) {
  for (const [classes, h, w] of SAME_SIZE) {
    test(`${mode}, logits at the frame size (${classes} classes, ${h}x${w}): exactly the reference arg-max`, async (t) => {
      for (const [kind, logits] of [
        ['random', randoms(classes * h * w, 17 + classes + h, 3)],
        // values on a coarse grid, so that many pixels have tied classes
        ['ties', randoms(classes * h * w, 29 + w).map((v) => Math.round(v * 2))],
      ]) {
        const got = await addon().labelsFromLogits(logits, classes, h, w, h, w, mode);
        const ref = reference(logits, classes, h, w, h, w, mode);
        t.deepEqual(got, ref.labels, kind);
      }
    });
  }
}

test("logits at the frame size: a tie goes to the lower class, whatever the pixel's lane", async (t) => {
  const [classes, h, w] = [4, 3, 37];
  const logits = new Float32Array(classes * h * w);
  for (let p = 0; p < h * w; p++) {
    const first = p % classes;
    const second = (first + 1 + (p % 3)) % classes;
    logits[first * h * w + p] = 5;
    logits[second * h * w + p] = 5;
  }
  const got = await addon().labelsFromLogits(logits, classes, h, w, h, w);
  for (let p = 0; p < h * w; p++) {
    const first = p % classes;
    const second = (first + 1 + (p % 3)) % classes;
    t.is(got[p], Math.min(first, second));
  }
});

// Two resizes in a row (the official pipelines': the network's own resize, then the
// evaluation's to the label size). Reference: the intermediate logits materialised in float64,
// then resized again; the native code composes the two resizes per axis in one pass.
function viaReference(logits, classes, h, w, via, outH, outW, mode) {
  return labelsReference(logits, classes, h, w, outH, outW, mode, via);
}

// [name, classes, h, w, via, outH, outW]
const VIA_CASES = [
  [
    'BiSeNet18: x8 half-pixel, then to a frame not 8x the logits',
    5,
    15,
    23,
    { height: 120, width: 184, upsampling: 'half-pixel' },
    240,
    360,
  ],
  ['BiSeNet18: x8 half-pixel, then the identity', 4, 6, 8, { height: 48, width: 64, upsampling: 'half-pixel' }, 48, 64],
  ['PSPNet LR: to the LR input, then to the frame', 6, 64, 96, { height: 60, width: 90 }, 120, 180],
  [
    'PSPNet HR: logits at the input, input at the frame (the identity twice)',
    3,
    10,
    12,
    { height: 10, width: 12 },
    10,
    12,
  ],
  ['downsampling first, then up', 3, 20, 30, { height: 7, width: 11, upsampling: 'half-pixel' }, 25, 33],
];

for (const [name, classes, h, w, via, outH, outW] of VIA_CASES) {
  test(`two resizes, ${name}: the reference's labels`, async (t) => {
    const logits = randoms(classes * h * w, 7 + h * w + classes, 4);
    const got = await addon().labelsFromLogits(logits, classes, h, w, outH, outW, 'align-corners', via);
    const ref = viaReference(logits, classes, h, w, via, outH, outW, 'align-corners');
    let wrong = 0;
    for (let i = 0; i < got.length; i++) if (got[i] !== ref.labels[i] && ref.margins[i] > 1e-5) wrong++;
    t.is(wrong, 0);
  });
}

test('two resizes are not one (via is not ignored); the identity as the first is one resize', async (t) => {
  const [classes, h, w] = [6, 23, 31];
  const logits = randoms(classes * h * w, 3, 4);
  // 40 rows, not 2 x 23 - 1 = 45: that grid would sample the same linear pieces again
  const one = await addon().labelsFromLogits(logits, classes, h, w, 90, 120, 'align-corners');
  const two = await addon().labelsFromLogits(logits, classes, h, w, 90, 120, 'align-corners', {
    height: 40,
    width: 57,
  });
  t.true(one.reduce((n, v, i) => n + (v !== two[i] ? 1 : 0), 0) > 0);
  t.deepEqual(
    await addon().labelsFromLogits(logits, classes, h, w, 90, 120, 'half-pixel', { height: h, width: w }),
    await addon().labelsFromLogits(logits, classes, h, w, 90, 120, 'half-pixel'),
  );
});

test('bad via options are refused with ERR_INVALID_ARG', (t) => {
  const logits = randoms(2 * 2 * 2, 1);
  for (const via of [{ height: 0, width: 4 }, { height: 4 }, { height: 4, width: 4, upsampling: 'nearest' }, 7])
    t.throws(
      () => addon().labelsFromLogits(logits, 2, 2, 2, 4, 4, 'align-corners', via),
      { code: 'ERR_INVALID_ARG' },
      JSON.stringify(via),
    );
});
