'use strict';
// The AR-Seg pipeline against PyTorch goldens (python/tools/make_pipeline_goldens.py), its
// modes and keyframe policies, and bundles that are wrong in every way we could think of.
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { ArSeg, Bundle } = require('../dist');
const { PIPELINE_DEFAULTS } = require('../dist/bundle');
const { onnxTypes } = require('../dist/pointwise-head');
const { FIXTURES, fixture, tmpDir, readNpy } = require('./helpers/fixtures');

const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const GOLDEN = path.join(FIXTURES, 'pipeline');
const golden = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'frames.json'), 'utf8'));

async function collect(iterable) {
  const out = [];
  for await (const r of iterable) out.push(r);
  return out;
}

let seg;
test.before(async () => {
  seg = await ArSeg.load(BUNDLE);
});
test.after.always(async () => {
  await seg?.close();
});

/** Plain reference: bilinear (align_corners=True) upsampling of logits, then arg-max. */
function referenceLabels(logits, [, K, h, w], H, W) {
  const out = new Uint8Array(H * W);
  const sy = H > 1 ? (h - 1) / (H - 1) : 0;
  const sx = W > 1 ? (w - 1) / (W - 1) : 0;
  const margins = new Float64Array(H * W);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const fy = y * sy,
        fx = x * sx;
      const y0 = Math.floor(fy),
        x0 = Math.floor(fx);
      const y1 = Math.min(y0 + 1, h - 1),
        x1 = Math.min(x0 + 1, w - 1);
      const ay = fy - y0,
        ax = fx - x0;
      let best = -Infinity,
        second = -Infinity,
        arg = 0;
      for (let c = 0; c < K; c++) {
        const p = (yy, xx) => logits[c * h * w + yy * w + xx];
        const v = (1 - ay) * ((1 - ax) * p(y0, x0) + ax * p(y0, x1)) + ay * ((1 - ax) * p(y1, x0) + ax * p(y1, x1));
        if (v > best) {
          second = best;
          best = v;
          arg = c;
        } else if (v > second) second = v;
      }
      out[y * W + x] = arg;
      margins[y * W + x] = best - second;
    }
  return { labels: out, margins };
}

for (const mode of ['hr', 'lr', 'ar']) {
  test(`${mode}: logits match PyTorch within 1e-3 and labels are their upsampled arg-max`, async (t) => {
    const results = await collect(seg.segment(fixture('tiny.h264'), { mode, logits: true }));
    t.is(results.length, 24);
    for (const g of golden.frames) {
      const r = results[g.index];
      const expected = readNpy(path.join(GOLDEN, `${mode}-${g.index}.npy`));
      t.deepEqual(r.logits.dims, expected.shape);
      let diff = 0;
      for (let i = 0; i < expected.data.length; i++)
        diff = Math.max(diff, Math.abs(r.logits.data[i] - expected.data[i]));
      t.true(diff < 1e-3, `frame ${g.index}: max |difference| ${diff.toExponential(2)}`);
      const ref = referenceLabels(r.logits.data, r.logits.dims, r.height, r.width);
      let disagree = 0;
      for (let i = 0; i < ref.labels.length; i++)
        if (ref.labels[i] !== r.labels[i] && ref.margins[i] > 1e-4) disagree++;
      t.is(disagree, 0, `frame ${g.index}: labels disagree with the reference arg-max`);
    }
  });
}

test("the native decoder head is the default on the CPU, and decoder: 'onnx' gives the same labels", async (t) => {
  t.truthy(seg.bundle.head, String(seg.bundle.headReason));
  for (const mode of ['hr', 'lr', 'ar']) {
    const native = await collect(seg.segment(fixture('tiny.h264'), { mode, logits: true }));
    const onnx = await collect(seg.segment(fixture('tiny.h264'), { mode, logits: true, decoder: 'onnx' }));
    t.is(native.length, onnx.length);
    let diff = 0;
    for (let i = 0; i < native.length; i++) {
      t.deepEqual(native[i].logits.dims, onnx[i].logits.dims);
      const a = native[i].logits.data;
      const b = onnx[i].logits.data;
      for (let j = 0; j < a.length; j++) diff = Math.max(diff, Math.abs(a[j] - b[j]));
      t.deepEqual(native[i].labels, onnx[i].labels, `${mode} frame ${i}`);
    }
    t.true(diff < 1e-4, `${mode}: logits differ by ${diff.toExponential(2)}`);
    // returned logits are each frame's own (the reused buffer is only for logits not returned)
    t.not(native[0].logits.data.buffer, native[1].logits.data.buffer);
    // fused frames run the head inside CReFF (their decoder time is part of the CReFF stage)
    t.true(
      native.every((r) => (r.branch === 'ar' ? r.timings.decoder === 0 && r.timings.creff > 0 : r.timings.decoder > 0)),
    );
    t.true(onnx.every((r) => r.timings.decoder > 0));
  }
});

test('modes choose their branch per frame; keyframes follow the policy', async (t) => {
  const ar = await collect(seg.segment(fixture('tiny.h264')));
  t.deepEqual(
    ar.map((r) => r.branch),
    ar.map((r) => (r.index % 12 === 0 ? 'hr' : 'ar')),
  );
  t.deepEqual(
    ar.filter((r) => r.isKeyframe).map((r) => r.index),
    [0, 12],
  );
  for (const r of ar) {
    t.is(r.labels.length, 64 * 48);
    t.true(r.labels.every((v) => v < 12));
    t.true(r.timings.total >= r.timings.decoder);
  }
  const keyed = await collect(seg.segment(fixture('tiny.h264'), { keyframes: 5 }));
  t.deepEqual(
    keyed.filter((r) => r.isKeyframe).map((r) => r.index),
    [0, 5, 10, 15, 20],
  );
  t.deepEqual(
    keyed.filter((r) => r.branch === 'hr').map((r) => r.index),
    [0, 5, 10, 15, 20],
  );
  const gop = await collect(seg.segment(fixture('tiny.h264'), { keyframes: 'gop' }));
  t.deepEqual(
    gop.filter((r) => r.isKeyframe).map((r) => r.index),
    [0, 12],
  );
  const hr = await collect(seg.segment(fixture('tiny.h264'), { mode: 'hr' }));
  t.true(hr.every((r) => r.branch === 'hr' && r.timings.lrEncoder === 0 && r.timings.creff === 0));
  const lr = await collect(seg.segment(fixture('tiny.h264'), { mode: 'lr' }));
  t.true(lr.every((r) => r.branch === 'lr' && r.timings.hrEncoder === 0));
});

test("a keyframe interval longer than the stream's GOP", async (t) => {
  const results = await collect(seg.segment(fixture('tiny.h264'), { keyframes: 30 }));
  t.is(results.length, 24);
  t.deepEqual(
    results.filter((r) => r.isKeyframe).map((r) => r.index),
    [0],
  );
  t.true(results.slice(1).every((r) => r.branch === 'ar' && r.keyframeIndex === 0));
});

test('a video that ends mid-GOP, and one cut mid-GOP', async (t) => {
  // tiny.h264 cut cleanly at the start of its 19th picture: 18 frames, the last GOP holds 6.
  const bytes = fs.readFileSync(fixture('tiny.h264'));
  let pictures = 0;
  let cut = bytes.length;
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 0 && bytes[i + 1] === 0 && bytes[i + 2] === 1) {
      const type = bytes[i + 3] & 0x1f;
      if (type === 1 || type === 5) {
        if (++pictures === 19) {
          cut = i > 0 && bytes[i - 1] === 0 ? i - 1 : i;
          break;
        }
      }
    }
  }
  const file = path.join(tmpDir('arseg-pipe-'), 'short.h264');
  fs.writeFileSync(file, bytes.subarray(0, cut));
  const results = await collect(seg.segment(file));
  t.is(results.length, 18);
  t.is(results[17].branch, 'ar');
  // an mp4 cut in the middle: the frames before the cut, then ERR_TRUNCATED
  const mp4 = fs.readFileSync(fixture('translate-p.mp4'));
  const cutMp4 = path.join(tmpDir('arseg-pipe-'), 'cut.mp4');
  fs.writeFileSync(cutMp4, mp4.subarray(0, mp4.length >> 1));
  const got = [];
  const err = await t.throwsAsync(async () => {
    for await (const r of seg.segment(cutMp4)) got.push(r);
  });
  t.is(err.code, 'ERR_TRUNCATED');
  t.is(err.framesDecoded, got.length);
  t.true(got.length > 0);
});

test('motion is required only by the ar mode', async (t) => {
  await t.throwsAsync(collect(seg.segment(fixture('translate-vp9.webm'), { motionSource: 'bitstream' })), {
    code: 'ERR_NO_MOTION_VECTORS',
  });
  const hr = await collect(seg.segment(fixture('translate-vp9.webm'), { mode: 'hr', motionSource: 'bitstream' }));
  t.is(hr.length, 24);
});

test('an unknown motionSource is refused when segment() is called, in every mode', (t) => {
  // Checked natively with the reader's other options, also where the mode reads no motion.
  for (const mode of ['ar', 'hr', 'lr'])
    for (const motionSource of ['vectors', 3, true]) {
      const err = t.throws(
        () => seg.segment(fixture('translate-p.mp4'), { mode, motionSource }),
        { code: 'ERR_INVALID_ARG' },
        `${mode} ${motionSource}`,
      );
      t.regex(err.message, /^option 'motionSource' must be 'auto', 'bitstream' or 'estimate'/);
    }
});

test("mode 'ar' end to end on HEVC (x265 defaults: B-pyramid, open GOP, 3 references)", async (t) => {
  // The patched libav's vectors; estimated motion on a libav without the patch.
  const results = await collect(seg.segment(fixture('x265-default.mp4')));
  t.is(results.length, 36);
  const source = require('../dist').libavVersions().exactReferences ? 'bitstream' : 'estimated';
  t.true(
    results.filter((r) => r.branch === 'ar').every((r) => r.motionSource === source),
    source,
  );
  const branches = results.map((r) => r.branch);
  t.is(branches.filter((b) => b === 'hr').length, 3, 'one HR keyframe per GOP of 12');
  t.is(branches.filter((b) => b === 'ar').length, 33);
  for (const r of results) {
    t.is(r.labels.length, 192 * 128);
    t.is(r.keyframeIndex, r.index - (r.index % 12));
  }
  // The same frames in mode hr: labels of the same size, a different branch.
  const hr = await collect(seg.segment(fixture('x265-default.mp4'), { mode: 'hr' }));
  t.is(hr.length, 36);
});

test('segment options are checked at once', (t) => {
  for (const bad of [
    { mode: 'fast' },
    { scale: 0 },
    { scale: 2 },
    { keyframes: 0 },
    { keyframes: 'adaptive-ish' },
    { motionStride: 0 },
    { creffMode: 'x' },
    { decoder: 'native' },
    null,
  ]) {
    t.throws(() => seg.segment(fixture('tiny.h264'), bad), { code: 'ERR_INVALID_ARG' }, JSON.stringify(bad));
  }
  t.throws(() => seg.segment(fixture('tiny.h264'), { ahead: 0 }), { code: 'ERR_INVALID_ARG' });
});

test("CUDA without ONNX Runtime's CUDA provider or a GPU: ERR_CUDA_UNAVAILABLE", async (t) => {
  const err = await t.throwsAsync(ArSeg.load(BUNDLE, { device: 'cuda' }));
  t.is(err.code, 'ERR_CUDA_UNAVAILABLE');
  await t.throwsAsync(ArSeg.load(BUNDLE, { device: 'tpu' }), { code: 'ERR_INVALID_ARG' });
});

// --- broken bundles -----------------------------------------------------------------------

function brokenBundle(edit) {
  const dir = path.join(tmpDir('arseg-bundle-'), 'b');
  fs.cpSync(BUNDLE, dir, { recursive: true });
  const manifestFile = path.join(dir, 'arseg.json');
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  const result = edit(manifest, dir);
  if (result !== 'keep-manifest') fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  return dir;
}

const BROKEN = [
  [
    'no manifest',
    (m, dir) => {
      fs.unlinkSync(path.join(dir, 'arseg.json'));
      return 'keep-manifest';
    },
    /arseg\.json: missing/,
  ],
  [
    'manifest not JSON',
    (m, dir) => {
      fs.writeFileSync(path.join(dir, 'arseg.json'), '{ nope');
      return 'keep-manifest';
    },
    /not valid JSON/,
  ],
  [
    'wrong format version',
    (m) => {
      m.formatVersion = 2;
    },
    /formatVersion/,
  ],
  [
    'a field missing',
    (m) => {
      delete m.networks;
    },
    /networks/,
  ],
  [
    'a field of the wrong type',
    (m) => {
      m.lrScale = 'half';
    },
    /lrScale/,
  ],
  [
    'a colour out of range',
    (m) => {
      m.classes[0].color = [0, 0, 300];
    },
    /classes\/0\/color/,
  ],
  [
    'an even CReFF window',
    (m) => {
      m.creff.window = 6;
    },
    /window must be odd/,
  ],
  [
    'ignoreIndex beyond the classes',
    (m) => {
      m.ignoreIndex = 40;
    },
    /ignoreIndex/,
  ],
  [
    'a path outside the bundle',
    (m) => {
      m.networks.decoder = '../decoder.onnx';
    },
    /outside the bundle/,
  ],
  [
    'a missing encoder',
    (m, dir) => {
      fs.unlinkSync(path.join(dir, 'lr_encoder.onnx'));
    },
    /lr_encoder\.onnx: missing/,
  ],
  [
    'a corrupt graph',
    (m, dir) => {
      fs.writeFileSync(path.join(dir, 'decoder.onnx'), 'not onnx');
    },
    /decoder\.onnx: ONNX Runtime cannot load it/,
  ],
  [
    'a missing CReFF weight',
    (m, dir) => {
      fs.unlinkSync(path.join(dir, 'creff', 'k_bias.npy'));
    },
    /k_bias\.npy: missing/,
  ],
  [
    'a CReFF weight of the wrong shape',
    (m, dir) => {
      fs.copyFileSync(path.join(dir, 'creff', 'q_bias.npy'), path.join(dir, 'creff', 'v_weight.npy'));
    },
    /v_weight\.npy: creff\.v\.weight must be float32/,
  ],
  [
    'fewer classes than the decoder gives',
    (m) => {
      m.classes.pop();
      m.ignoreIndex = null;
    },
    /decoder\.onnx: outputs 12 classes, the manifest lists 11/,
  ],
  [
    'feature channels that disagree',
    (m) => {
      m.feature.channels = 7;
    },
    /creff\.q\.weight must be float32 \[7,1,3,3\]|outputs \[.*\] but feature\.channels is 7/,
  ],
  [
    'a wrong feature stride',
    (m) => {
      m.feature.stride = 8;
    },
    /feature\.stride 8/,
  ],
  [
    'swapped encoder and decoder',
    (m) => {
      m.networks.hrEncoder = 'decoder.onnx';
    },
    /hr|decoder\.onnx/,
  ],
  [
    'an unknown LR input',
    (m) => {
      m.input.lrInput = 'frame-bicubic';
    },
    /input\/lrInput/,
  ],
  [
    'an unknown motion resize',
    (m) => {
      m.motion = { resize: 'bicubic' };
    },
    /motion\/resize/,
  ],
  [
    'an unknown motion composition',
    (m) => {
      m.motion = { composition: 'median' };
    },
    /motion\/composition/,
  ],
  [
    'an unknown field in motion',
    (m) => {
      m.motion = { stride: 4 };
    },
    /motion/,
  ],
  [
    'an unknown logits upsampling',
    (m) => {
      m.logitsUpsampling = 'nearest';
    },
    /logitsUpsampling/,
  ],
  [
    'a missing LR decoder',
    (m) => {
      m.networks.lrDecoder = 'lr_decoder.onnx';
    },
    /lr_decoder\.onnx: missing \(networks\.lrDecoder/,
  ],
  [
    'an LR decoder of other classes',
    (m) => {
      m.networks.lrDecoder = 'hr_encoder.onnx';
    },
    /hr_encoder\.onnx: outputs \d+ classes|hr_encoder\.onnx: does not take/,
  ],
];

for (const [what, edit, message] of BROKEN) {
  test(`a bundle with ${what}: ERR_BUNDLE naming the file and field`, async (t) => {
    const err = await t.throwsAsync(Bundle.load(brokenBundle(edit)));
    t.is(err.code, 'ERR_BUNDLE', err.message);
    t.regex(err.message, message);
  });
}

test('a directory that is not a bundle, and a bad argument', async (t) => {
  await t.throwsAsync(ArSeg.load(tmpDir('arseg-empty-')), { code: 'ERR_BUNDLE' });
  await t.throwsAsync(ArSeg.load(''), { code: 'ERR_INVALID_ARG' });
});

test('adaptive keyframes in the pipeline: the scene cut is segmented at HR', async (t) => {
  const results = await collect(
    seg.segment(fixture('scene-cut.mp4'), { keyframes: { policy: 'adaptive', maxMotion: 1e6 } }),
  );
  t.deepEqual(
    results.filter((r) => r.branch === 'hr').map((r) => r.index),
    [0, 12, 18, 24],
  );
  const defaults = await collect(seg.segment(fixture('scene-cut.mp4'), { keyframes: 'adaptive' }));
  t.true(
    defaults
      .filter((r) => r.isKeyframe)
      .map((r) => r.index)
      .includes(18),
  );
  // hr/lr modes accept the policy too (it only marks keyframes there)
  const hr = await collect(seg.segment(fixture('scene-cut.mp4'), { mode: 'hr', keyframes: 'adaptive' }));
  t.is(hr.length, 36);
});

// --- the pipeline a bundle describes -----------------------------------------------------------

test("a manifest without the pipeline fields gets this project's choices (old bundles load unchanged)", async (t) => {
  t.deepEqual({ ...seg.bundle.pipeline }, { ...PIPELINE_DEFAULTS });
  t.deepEqual(
    { ...PIPELINE_DEFAULTS },
    {
      lrInput: 'frame-swscale',
      motionComposition: 'bilinear',
      motionResize: 'cell-centres',
      sampling: 'exact',
      logitsUpsampling: 'align-corners',
      lrDecoder: 'shared',
    },
  );
  t.is(seg.bundle.lrDecoder, null);
  t.is(seg.bundle.headFor('lr'), seg.bundle.head);
});

/** tiny-psp18 with an LR decoder: decoder.onnx with its weights and bias negated (logits negated). */
function bundleWithLrDecoder(edit = () => {}) {
  return brokenBundle((m, dir) => {
    const { ModelProto } = onnxTypes();
    const model = ModelProto.decode(fs.readFileSync(path.join(dir, 'decoder.onnx')));
    for (const init of model.graph.initializer) {
      const values = new Float32Array(
        init.raw_data.buffer.slice(init.raw_data.byteOffset, init.raw_data.byteOffset + init.raw_data.byteLength),
      );
      init.raw_data = Buffer.from(values.map((v) => -v).buffer);
    }
    fs.writeFileSync(path.join(dir, 'lr_decoder.onnx'), ModelProto.encode(model).finish());
    m.networks.lrDecoder = 'lr_decoder.onnx';
    edit(m);
  });
}

for (const decoder of ['auto', 'onnx']) {
  test(`an LR decoder serves LR and AR frames, the HR one HR frames (decoder '${decoder}')`, async (t) => {
    const other = await ArSeg.load(bundleWithLrDecoder());
    try {
      t.is(other.bundle.pipeline.lrDecoder, 'own');
      if (decoder === 'auto') t.truthy(other.bundle.lrHead, other.bundle.lrHeadReason ?? '');
      const clip = fixture('tiny.h264');
      for (const mode of ['hr', 'lr', 'ar']) {
        const mine = await collect(other.segment(clip, { mode, logits: true, decoder }));
        const base = await collect(seg.segment(clip, { mode, logits: true, decoder }));
        let worst = 0;
        for (let i = 0; i < base.length; i++) {
          // HR frames (mode hr, and the keyframes of mode ar): the same logits; LR and AR frames: negated
          const sign = mine[i].branch === 'hr' ? 1 : -1;
          for (let k = 0; k < base[i].logits.data.length; k++)
            worst = Math.max(worst, Math.abs(mine[i].logits.data[k] - sign * base[i].logits.data[k]));
        }
        t.true(worst < 1e-4, `${mode}: ${worst}`);
        t.true(
          mine.some((r) => r.branch === mode),
          mode,
        );
      }
    } finally {
      await other.close();
    }
  });
}

test('the official LR input: the LR tensor at floor(size x scale), no size multiple', async (t) => {
  const official = await ArSeg.load(
    bundleWithLrDecoder((m) => {
      m.input.lrInput = 'hr-tensor-align-corners';
    }),
  );
  try {
    t.is(official.bundle.pipeline.lrInput, 'hr-tensor-align-corners');
    // tiny.h264 is 64x48: at scale 0.3 the official LR input is floor(19.2) x floor(14.4) = 19x14,
    // which the PSPNet18 layout's encoder turns into a 24x16 feature (ceil at each stride-2 step,
    // then x8 up); from the frame, the size is rounded to the multiple 8 first: 16x16
    const [r] = await collect(official.segment(fixture('tiny.h264'), { mode: 'lr', logits: true, scale: 0.3 }));
    t.deepEqual(r.logits.dims.slice(2), [16, 24]);
    const [s] = await collect(seg.segment(fixture('tiny.h264'), { mode: 'lr', logits: true, scale: 0.3 }));
    t.deepEqual(s.logits.dims.slice(2), [16, 16]);
  } finally {
    await official.close();
  }
});
