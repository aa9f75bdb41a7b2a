'use strict';
// The ar-seg CLI: mv-extractor's dump layout, dense fields, JSON summary, exit codes.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { openVideo } = require('../dist');
const { fixture, meta, tmpDir, collect, readNpy } = require('./helpers/fixtures');

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'index.js');

function run(...args) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('mvs --dump --dense writes frame types, vectors and fields that match the API', async (t) => {
  const out = path.join(tmpDir('arseg-cli-'), 'dump');
  const r = run('mvs', fixture('translate-b.mp4'), '--dump', out, '--dense', '8', '--json');
  t.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  t.true(summary.ok);
  t.is(summary.frames, 36);
  t.deepEqual(summary.dense, { stride: 8, width: 24, height: 16 });
  t.is(
    fs.readFileSync(path.join(out, 'frame_types.txt'), 'utf8'),
    meta['translate-b.mp4'].pictTypes.split('').join('\n') + '\n',
  );
  const frames = await collect(
    openVideo(fixture('translate-b.mp4'), { vectors: true, motion: 'accumulated', stride: 8 }),
  );
  let total = 0;
  for (const f of frames) {
    const mvs = readNpy(path.join(out, 'motion_vectors', `mvs-${f.index}.npy`));
    t.is(mvs.descr, '<i4');
    t.deepEqual(mvs.shape, [f.vectors.length / 10, 10]);
    t.deepEqual(Array.from(mvs.data), Array.from(f.vectors));
    t.is(mvs.dataOffset % 64, 0, 'npy data is 64-byte aligned');
    total += mvs.shape[0];
    const field = readNpy(path.join(out, 'motion_fields', `field-${f.index}.npy`));
    t.is(field.descr, '<f4');
    t.deepEqual(field.shape, [2, 16, 24]);
    t.deepEqual(Array.from(field.data), Array.from(f.motion.data));
  }
  t.is(summary.vectors, total);
  // an I-frame gives a 0 x 10 array
  t.deepEqual(readNpy(path.join(out, 'motion_vectors', 'mvs-0.npy')).shape, [0, 10]);
});

test('mvs without --dense writes no fields; plain output is one line', (t) => {
  const out = path.join(tmpDir('arseg-cli-'), 'dump');
  const r = run('mvs', fixture('translate-p.mp4'), '--dump', out);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^36 frames \(3 I, 33 P\), \d+ vectors/);
  t.false(fs.existsSync(path.join(out, 'motion_fields')));
  t.true(fs.existsSync(path.join(out, 'motion_vectors', 'mvs-35.npy')));
});

test('mvs on a damaged file keeps what came before and exits 4', (t) => {
  const dir = tmpDir('arseg-cli-');
  const cut = path.join(dir, 'cut.mp4');
  const bytes = fs.readFileSync(fixture('translate-p.mp4'));
  fs.writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
  const r = run('mvs', cut, '--dump', path.join(dir, 'dump'), '--json');
  t.is(r.code, 4);
  const out = JSON.parse(r.stdout);
  t.false(out.ok);
  t.is(out.error.code, 'ERR_TRUNCATED');
  const types = fs
    .readFileSync(path.join(dir, 'dump', 'frame_types.txt'), 'utf8')
    .trim()
    .split('\n');
  t.is(types.length, out.error.framesDecoded);
});

test('exit codes: usage 2, unreadable input 3, unsupported 5', (t) => {
  t.is(run('mvs', fixture('translate-p.mp4'), '--dense', '0').code, 2);
  t.is(run('mvs', fixture('translate-p.mp4'), '--keyframes', 'often').code, 2);
  t.is(run('nosuchcommand').code, 2);
  t.is(run('mvs').code, 2);
  const missing = run('mvs', '/nonexistent/video.mp4');
  t.is(missing.code, 3);
  t.regex(missing.stderr, /ERR_NOT_FOUND/);
  t.is(run('mvs', fixture('audio-only.m4a')).code, 3);
  const vp9 = run('mvs', fixture('translate-vp9.webm'), '--motion-source', 'bitstream', '--json');
  t.is(vp9.code, 5);
  t.is(JSON.parse(vp9.stdout).error.code, 'ERR_NO_MOTION_VECTORS');
  t.is(run('mvs', fixture('translate-vp9.webm'), '--motion-source', 'vectors').code, 2);
  const estimated = run('mvs', fixture('translate-vp9.webm'), '--json');
  t.is(estimated.code, 0);
  t.is(JSON.parse(estimated.stdout).motionSource, 'estimated');
  // HEVC: vectors from the patched libav, else estimated motion; never refused by default
  const hevc = run('mvs', fixture('hevc.mp4'), '--json');
  t.is(hevc.code, 0);
  t.is(
    JSON.parse(hevc.stdout).motionSource,
    require('../dist').libavVersions().exactReferences ? 'bitstream' : 'estimated',
  );
  t.is(run('--help').code, 0);
});

test('usage errors with --json: an error object on stdout, exit 2; without --json nothing on stdout', (t) => {
  const clip = fixture('tiny.h264');
  const cases = [
    [['mvs', clip, 'extra.mp4'], /too many arguments for 'mvs'/],
    [['segment', clip, 'second.mp4', '--out', tmpDir('arseg-cli-')], /too many arguments for 'segment'/],
    [['flops', 'stray', '--model', 'x', '--size', '8x8'], /too many arguments for 'flops'/],
    [['demo', 'stray'], /too many arguments for 'demo'/],
    [['mvs', clip, '--bogus'], /unknown option '--bogus'/],
    [['segment', clip, '--model', 'x', '--out', 'y', '--overlays'], /unknown option '--overlays'/],
    [['segment', clip], /required option '--out <dir>' not specified/],
    [['mvs'], /missing required argument 'video'/],
    [['mvs', clip, '--dense', '0'], /--dense must be an integer/],
    [['mvs', clip, '--dense', '8', '--motion-fill', 'fallback'], /--motion-fill must be estimate or none/],
    [['nosuchcommand'], /unknown command 'nosuchcommand'/],
  ];
  for (const [args, message] of cases) {
    const r = run(...args, '--json');
    t.is(r.code, 2, args.join(' '));
    const out = JSON.parse(r.stdout);
    t.false(out.ok);
    t.is(out.error.code, 'ERR_INVALID_ARG', args.join(' '));
    t.regex(out.error.message, message);
    const plain = run(...args);
    t.is(plain.code, 2, args.join(' '));
    t.is(plain.stdout, '', args.join(' '));
    t.regex(plain.stderr, message);
  }
  // help is no error
  t.is(run('segment', '--help', '--json').code, 0);
});

test("mvs --dense --motion-fill: the fields are the API's with that motionFill, and the two differ", async (t) => {
  const name = 'object-intra.mp4';
  const fields = {};
  for (const fill of ['estimate', 'none']) {
    const out = path.join(tmpDir('arseg-cli-'), 'dump');
    const r = run('mvs', fixture(name), '--dump', out, '--dense', '4', '--motion-fill', fill, '--json');
    t.is(r.code, 0, r.stderr);
    const frames = await collect(openVideo(fixture(name), { motion: 'accumulated', stride: 4, motionFill: fill }));
    fields[fill] = frames.map((f) => {
      const field = readNpy(path.join(out, 'motion_fields', `field-${f.index}.npy`));
      t.deepEqual(Array.from(field.data), Array.from(f.motion.data), `${fill}, frame ${f.index}`);
      return Array.from(field.data);
    });
  }
  // the P-frame four pictures from the keyframe codes the moving square intra (motion-exact.test.js)
  t.notDeepEqual(fields.estimate[4], fields.none[4]);
});
