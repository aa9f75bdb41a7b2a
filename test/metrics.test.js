'use strict';
// lib/metrics.ts against confusion matrices, IoU and mIoU worked out by hand.
const test = require('ava');
const { ConfusionMatrix, DistanceMetrics, iouFromConfusion, meanOf, IGNORE_LABEL } = require('../dist');

const close = (t, actual, expected, what) =>
  t.true(Math.abs(actual - expected) < 1e-12, `${what}: ${actual} != ${expected}`);

test('confusion matrix: rows are labels, columns predictions; 255 and the ignore index are not counted', (t) => {
  t.is(IGNORE_LABEL, 255);
  const labels = [0, 0, 1, 1, 255, 2, 0, 1];
  const preds = [0, 1, 1, 1, 0, 0, 2, 0];
  const cm = new ConfusionMatrix(3, { ignore: [2] }).add(labels, preds);
  t.deepEqual(Array.from(cm.counts), [1, 1, 1, 1, 2, 0, 0, 0, 0]);
  t.is(cm.total, 6);
  // class 0: TP 1, row 3, column 2 -> 1 / 4; class 1: TP 2, row 3, column 3 -> 2 / 4; class 2 ignored
  t.deepEqual(cm.iou(), [0.25, 0.5, null]);
  close(t, cm.meanIoU(), 0.375, 'mIoU');

  // without the ignore index, the pixel labelled 2 counts (predicted 0): a miss for class 2
  const all = new ConfusionMatrix(3).add(labels, preds);
  t.deepEqual(Array.from(all.counts), [1, 1, 1, 1, 2, 0, 1, 0, 0]);
  t.deepEqual(all.iou(), [0.2, 0.5, 0]);
  close(t, all.meanIoU(), 0.7 / 3, 'mIoU');
});

test('IoU: null for a class absent from labels and predictions, 0 for one only predicted', (t) => {
  // 4 classes: 3 never appears, 2 is predicted but never a label
  const cm = new ConfusionMatrix(4).add([0, 0, 1, 1, 1], [0, 2, 1, 1, 0]);
  // class 0: TP 1, row 2, column 2 -> 1/3; class 1: TP 2, row 3, column 2 -> 2/3; class 2: 0/1
  const iou = cm.iou();
  close(t, iou[0], 1 / 3, 'class 0');
  close(t, iou[1], 2 / 3, 'class 1');
  t.is(iou[2], 0);
  t.is(iou[3], null);
  close(t, cm.meanIoU(), 1 / 3, 'mIoU over the three present classes');
  t.is(new ConfusionMatrix(2).meanIoU(), null);
  t.is(meanOf([null, null]), null);
  close(t, meanOf([0.5, null, 1]), 0.75, 'meanOf');
});

test('iouFromConfusion on a hand-written matrix, with an excluded class', (t) => {
  // label x prediction
  const counts = [5, 1, 0, 2, 3, 1, 0, 0, 4];
  const iou = iouFromConfusion(counts, 3);
  close(t, iou[0], 5 / (6 + 7 - 5), 'class 0');
  close(t, iou[1], 3 / (6 + 4 - 3), 'class 1');
  close(t, iou[2], 4 / (4 + 5 - 4), 'class 2');
  t.deepEqual(
    iouFromConfusion(counts, 3, [1]).map((v) => v === null),
    [false, true, false],
  );
  t.throws(() => iouFromConfusion([1, 2, 3], 2), { code: 'ERR_SHAPE' });
});

test('bad input: a label neither a class nor ignored, a prediction out of range, lengths that differ', (t) => {
  const cm = new ConfusionMatrix(3, { ignore: [2] });
  t.throws(() => cm.add([0, 7], [0, 0]), { code: 'ERR_INVALID_ARG', message: /label 7 at pixel 1/ });
  t.throws(() => cm.add([0, 1], [0, 3]), { code: 'ERR_INVALID_ARG', message: /prediction 3/ });
  t.throws(() => cm.add([0, 1], [0]), { code: 'ERR_SHAPE' });
  t.is(cm.total, 0, 'nothing counted from a rejected frame');
  t.throws(() => new ConfusionMatrix(0), { code: 'ERR_INVALID_ARG' });
  t.throws(() => new ConfusionMatrix(3).merge(new ConfusionMatrix(4)), { code: 'ERR_SHAPE' });
});

test('per distance: matrices accumulate over frames (not a mean of per-frame mIoU); the mean is over d with frames', (t) => {
  const m = new DistanceMetrics(2, 3);
  m.add(0, [0, 0, 0, 1], [0, 0, 0, 0]); // d=0, frame A
  m.add(0, [1, 1, 1, 1], [1, 1, 1, 1]); // d=0, frame B
  m.add(1, [0, 1], [1, 1]); // d=1
  t.deepEqual(Array.from(m.matrices[0].counts), [3, 0, 1, 4]);
  const r = m.report();
  // d=0: class 0 3/(3+4-3) = 0.75, class 1 4/(5+4-4) = 0.8 -> 0.775 (per-frame means would give 0.6875)
  // d=1: class 0 0/1 = 0, class 1 1/(1+2-1) = 0.5 -> 0.25; d=2: no frames
  close(t, r.perDistance[0], 0.775, 'mIoU_0');
  close(t, r.perDistance[1], 0.25, 'mIoU_1');
  t.is(r.perDistance[2], null);
  close(t, r.mean, (0.775 + 0.25) / 2, 'mean over d');
  close(t, r.perClass[0], 0.375, 'class 0 over d');
  close(t, r.perClass[1], 0.65, 'class 1 over d');
  t.deepEqual(r.perClassPerDistance[2], [null, null]);
  t.deepEqual(r.frames, [2, 1, 0]);
  t.is(r.framesTotal, 3);
  t.is(r.pixels, 10);
  t.throws(() => m.add(3, [0], [0]), { code: 'ERR_INVALID_ARG' });

  // merging two halves of a set gives the whole set's figures
  const a = new DistanceMetrics(2, 3).add(0, [0, 0, 0, 1], [0, 0, 0, 0]);
  const b = new DistanceMetrics(2, 3).add(0, [1, 1, 1, 1], [1, 1, 1, 1]).add(1, [0, 1], [1, 1]);
  t.deepEqual(a.merge(b).report(), r);
});

test('per distance with an ignore class: it has no column in the per-class figures', (t) => {
  // CamVid style: 12 classes, 11 = void
  const m = new DistanceMetrics(12, 2, { ignore: [11] });
  t.deepEqual(m.ignore, [11, 255]);
  t.deepEqual(m.evaluatedClasses(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  // void labels are skipped; a void prediction on a road pixel is a miss for road
  m.add(0, [3, 3, 11, 255], [3, 11, 3, 3]);
  const r = m.report();
  t.is(r.perClass.length, 11);
  close(t, r.perClassPerDistance[0][3], 0.5, 'road: TP 1, row 2, column 1');
  close(t, r.perDistance[0], 0.5, 'only road is present');
  t.is(r.perDistance[1], null);
  close(t, r.mean, 0.5, 'mean');
});
