'use strict';
// ar-seg segment and ar-seg flops, and the compute counting behind them.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { ArSeg } = require('../dist');
const { bundleFlops, creffMacs, graphMacs } = require('../dist/flops');
const { decodeLabelPng } = require('../dist/png');
const { FIXTURES, fixture, tmpDir } = require('./helpers/fixtures');

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const manifest = JSON.parse(fs.readFileSync(path.join(BUNDLE, 'arseg.json'), 'utf8'));

function run(...args) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('segment writes a palette PNG per frame equal to the API labels, overlays and a summary', async (t) => {
  const out = path.join(tmpDir('arseg-seg-'), 'out');
  const r = run(
    'segment',
    fixture('tiny.h264'),
    '--model',
    BUNDLE,
    '--out',
    out,
    '--overlay',
    '--json',
    '--keyframes',
    '6',
  );
  t.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  t.true(summary.ok);
  t.is(summary.frames, 24);
  t.is(summary.keyframes, 4);
  t.is(summary.mode, 'ar');
  t.true(summary.fps > 0);
  for (const k of ['decode', 'hrEncoder', 'lrEncoder', 'creff', 'decoder', 'labels', 'total'])
    t.true(summary.meanTimings[k] >= 0, k);
  t.true(summary.gmacPerFrame.hr > summary.gmacPerFrame.ar && summary.gmacPerFrame.ar > summary.gmacPerFrame.lr);
  t.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).frames, 24);
  const seg = await ArSeg.load(BUNDLE);
  let i = 0;
  for await (const res of seg.segment(fixture('tiny.h264'), { keyframes: 6 })) {
    const png = decodeLabelPng(fs.readFileSync(path.join(out, 'labels', `${String(i).padStart(6, '0')}.png`)));
    t.deepEqual([png.width, png.height], [64, 48]);
    t.true(Buffer.from(png.labels).equals(Buffer.from(res.labels)), `frame ${i}`);
    t.true(fs.statSync(path.join(out, 'overlays', `${String(i).padStart(6, '0')}.png`)).size > 0);
    i++;
  }
  await seg.close();
  t.is(i, 24);
});

test('segment on a codec without motion vectors: estimated motion, said in the summary', (t) => {
  const out = path.join(tmpDir('arseg-seg-vp9-'), 'out');
  const r = run('segment', fixture('translate-vp9.webm'), '--model', BUNDLE, '--out', out, '--json', '--no-flops');
  t.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  t.is(summary.frames, 24);
  t.is(summary.mode, 'ar');
  t.is(summary.motionSource, 'estimated');
  const forced = JSON.parse(
    run(
      'segment',
      fixture('tiny.h264'),
      '--model',
      BUNDLE,
      '--out',
      out,
      '--json',
      '--no-flops',
      '--motion-source',
      'estimate',
    ).stdout,
  );
  t.is(forced.motionSource, 'estimated');
  const bitstream = JSON.parse(
    run('segment', fixture('tiny.h264'), '--model', BUNDLE, '--out', out, '--json', '--no-flops').stdout,
  );
  t.is(bitstream.motionSource, 'bitstream');
  const hr = JSON.parse(
    run('segment', fixture('tiny.h264'), '--model', BUNDLE, '--out', out, '--json', '--no-flops', '--mode', 'hr')
      .stdout,
  );
  t.is(hr.motionSource, null);
  t.is(
    run('segment', fixture('translate-vp9.webm'), '--model', BUNDLE, '--out', out, '--motion-source', 'bitstream').code,
    5,
  );
  t.is(
    run('segment', fixture('translate-vp9.webm'), '--model', BUNDLE, '--out', out, '--motion-source', 'nope').code,
    2,
  );
});

test('segment exit codes: broken bundle 6, missing input 3, bad options 2, damaged stream 4 with a partial summary', (t) => {
  const out = path.join(tmpDir('arseg-seg-'), 'out');
  t.is(run('segment', fixture('tiny.h264'), '--model', tmpDir('arseg-nobundle-'), '--out', out).code, 6);
  t.is(run('segment', '/nonexistent.mp4', '--model', BUNDLE, '--out', out).code, 3);
  t.is(run('segment', fixture('tiny.h264'), '--model', BUNDLE, '--out', out, '--mode', 'xr').code, 2);
  t.is(run('segment', fixture('tiny.h264'), '--model', BUNDLE, '--out', out, '--scale', '3').code, 2);
  t.is(run('segment', fixture('tiny.h264'), '--model', BUNDLE).code, 2); // --out is required (--model defaults to models/default)
  const bytes = fs.readFileSync(fixture('translate-p.mp4'));
  const cut = path.join(tmpDir('arseg-seg-'), 'cut.mp4');
  fs.writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
  const damaged = run('segment', cut, '--model', BUNDLE, '--out', out, '--json', '--no-flops');
  t.is(damaged.code, 4);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  t.is(summary.error.code, 'ERR_TRUNCATED');
  t.true(summary.frames > 0);
  t.is(fs.readdirSync(path.join(out, 'labels')).length >= summary.frames, true);
});

test('graph MACs are counted from shapes: the decoder is one 1x1 convolution', async (t) => {
  const C = manifest.feature.channels;
  const K = manifest.classes.length;
  t.is(await graphMacs(path.join(BUNDLE, 'decoder.onnx'), [1, C, 30, 40]), K * C * 30 * 40);
});

test('bundle flops: LR is a quarter of HR at half scale, AR is the interval mean', async (t) => {
  const f = await bundleFlops(BUNDLE, manifest, { width: 320, height: 240, interval: 12 });
  t.deepEqual([f.width, f.height, f.lrWidth, f.lrHeight], [320, 240, 160, 120]);
  // fully convolutional, except the pyramid's pooled 1x1 convolutions, whose cost is size-independent
  t.true(Math.abs(f.parts.lrEncoder / f.parts.hrEncoder - 0.25) < 0.001, `${f.parts.lrEncoder / f.parts.hrEncoder}`);
  t.true(Math.abs(f.parts.creff - creffMacs(manifest.feature.channels, 240, 320, manifest.creff.window) / 1e9) < 1e-12);
  t.true(Math.abs(f.perFrame.ar - (f.perFrame.hr + 11 * f.perFrame.arOther) / 12) < 1e-12);
  t.true(Math.abs(f.saving - (1 - f.perFrame.ar / f.perFrame.hr)) < 1e-12);
  // docs/method.md: CReFF at C=64, 720x960, K=7 is 5.5 GMAC
  t.is(Math.round(creffMacs(64, 720, 960, 7) / 1e8) / 10, 5.5);
});

test('flops CLI prints the report; --json for scripts', (t) => {
  const r = run('flops', '--model', BUNDLE, '--size', '320x240', '--interval', '12');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /saving of AR over HR\s+\d+\.\d%/);
  const j = JSON.parse(run('flops', '--model', BUNDLE, '--size', '320x240', '--json').stdout);
  t.true(j.ok && j.saving > 0 && j.saving < 1);
  t.is(run('flops', '--model', BUNDLE, '--size', '320by240').code, 2);
});
