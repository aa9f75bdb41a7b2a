'use strict';
// ar-seg eval (the paper's protocol over label PNGs), ar-seg demo, and segment without --model.
// Labelled clips are made here, deterministically, from the fixtures and the tiny test bundle:
// the labels are a mode's own predictions, so that mode must score exactly 1.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { encode } = require('fast-png');
const { ArSeg } = require('../dist');
const { FIXTURES, fixture, tmpDir } = require('./helpers/fixtures');

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'index.js');
const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const manifest = JSON.parse(fs.readFileSync(path.join(BUNDLE, 'arseg.json'), 'utf8'));
const K = manifest.classes.length; // 12, 11 = void (ignoreIndex)

function run(args, env = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const pad = (i) => String(i).padStart(6, '0');

function writeLabel(file, data, width, height) {
  fs.writeFileSync(file, encode({ width, height, data, depth: 8, channels: 1 }));
}

/** Segments `video` in `mode` with the tiny bundle; labels are what `edit` makes of the predictions. */
async function labelFrom(video, dir, mode, edit = (labels) => labels, motionSource = 'auto') {
  fs.mkdirSync(dir, { recursive: true });
  const seg = await ArSeg.load(BUNDLE);
  let n = 0;
  for await (const r of seg.segment(video, { mode, keyframes: 12, motionSource })) {
    writeLabel(path.join(dir, `${pad(r.index)}.png`), edit(Uint8Array.from(r.labels), r), r.width, r.height);
    n++;
  }
  await seg.close();
  return n;
}

/** A copy of tiny.h264 (64x48, 24 frames, GOP 12) with labels/ = its 'hr' predictions. */
let tinyClip;
function tiny() {
  tinyClip ??= (async () => {
    const dir = tmpDir('arseg-eval-tiny-');
    const video = path.join(dir, 'tiny.h264');
    fs.copyFileSync(fixture('tiny.h264'), video);
    await labelFrom(video, path.join(dir, 'labels'), 'hr');
    return { dir, video };
  })();
  return tinyClip;
}

/** A fresh clip directory with a copy of the tiny clip's video and labels, for breaking. */
async function tinyCopy() {
  const { dir } = await tiny();
  const copy = tmpDir('arseg-eval-broken-');
  fs.copyFileSync(path.join(dir, 'tiny.h264'), path.join(copy, 'tiny.h264'));
  fs.cpSync(path.join(dir, 'labels'), path.join(copy, 'labels'), { recursive: true });
  return { dir: copy, video: path.join(copy, 'tiny.h264'), labels: path.join(copy, 'labels') };
}

test('eval: the table has rows hr, lr, ar over d = 0..11 and a mean; hr scored on its own predictions is 1', async (t) => {
  const { video } = await tiny();
  const out = path.join(tmpDir('arseg-eval-md-'), 'table.md');
  const r = run(['eval', video, '--model', BUNDLE, '--json', '--out', out, '--no-progress']);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.true(j.ok);
  t.is(j.interval, 12);
  t.is(j.classes.length, 11, 'void (the ignore index) is not evaluated');
  t.deepEqual(j.ignore, [11, 255]);
  t.deepEqual(Object.keys(j.modes), ['hr', 'lr', 'ar']);
  t.deepEqual(
    j.clips.map((c) => c.frames),
    [24],
  );
  for (const mode of ['hr', 'lr', 'ar']) {
    const m = j.modes[mode];
    t.is(m.perDistance.length, 12);
    t.deepEqual(m.frames, new Array(12).fill(2), mode);
    t.is(m.framesTotal, 24);
    t.is(m.perClass.length, 11);
  }
  t.deepEqual(j.modes.hr.perDistance, new Array(12).fill(1));
  t.is(j.modes.hr.mean, 1);
  // AR runs the HR branch on its keyframes, the frames at d = 0, and the LR branch + CReFF elsewhere
  t.is(j.modes.ar.perDistance[0], 1);
  t.true(
    j.modes.ar.perDistance.slice(1).every((v) => v < 1),
    `${j.modes.ar.perDistance}`,
  );
  t.true(j.modes.lr.mean < 1);
  t.deepEqual(j.warnings, []);

  const md = fs.readFileSync(out, 'utf8');
  const rows = md.split('\n').filter((l) => l.startsWith('| '));
  const header = rows.find((l) => l.startsWith('| mode |'));
  t.is(header, `| mode | ${Array.from({ length: 12 }, (_, d) => `d=${d}`).join(' | ')} | mean |`);
  t.is(
    rows.find((l) => l.startsWith('| hr |')),
    `| hr | ${new Array(12).fill('100.0').join(' | ')} | **100.0** |`,
  );
  t.regex(md, /^\| lr \|/m);
  t.regex(md, /^\| ar \| 100\.0 \|/m);
  t.is(
    rows.find((l) => l.startsWith('| frames |')),
    `| frames | ${new Array(12).fill(2).join(' | ')} | 24 |`,
  );
  t.regex(md, /^\| class \| hr \| lr \| ar \|$/m);
  t.is(
    rows.filter((l) => /^\| [a-z]+ \| (–|\d+\.\d) \| /.test(l) && !/^\| (hr|lr|ar|frames|mode) /.test(l)).length,
    11,
  );

  // Markdown on stdout without --json; --modes picks rows
  const plain = run(['eval', video, '--model', BUNDLE, '--modes', 'ar,hr']);
  t.is(plain.code, 0, plain.stderr);
  t.regex(plain.stdout, /^\| hr \| 100\.0/m);
  t.regex(plain.stdout, /^\| ar \| 100\.0/m);
  t.notRegex(plain.stdout, /^\| lr \|/m);
});

test('eval: frames are matched to their own labels (labels = ar predictions score ar 1 at every d)', async (t) => {
  // AR's predictions change from frame to frame (CReFF follows the motion); any frame-label
  // misalignment or keyframe misplacement would lower the score.
  const dir = tmpDir('arseg-eval-ar-');
  const video = path.join(dir, 'clip.mp4');
  fs.copyFileSync(fixture('translate-p.mp4'), video);
  await labelFrom(video, path.join(dir, 'labels'), 'ar');
  const j = JSON.parse(run(['eval', video, '--model', BUNDLE, '--modes', 'ar', '--json']).stdout);
  t.deepEqual(j.modes.ar.perDistance, new Array(12).fill(1));
  t.deepEqual(j.modes.ar.frames, new Array(12).fill(3));
  // keyframes every 6 frames: frames 6 and 18 are now keyframes (HR), which the labels are not
  const six = JSON.parse(run(['eval', video, '--model', BUNDLE, '--modes', 'ar', '--interval', '6', '--json']).stdout);
  t.is(six.modes.ar.perDistance.length, 6);
  t.true(six.modes.ar.perDistance[0] < 1);
  t.is(six.warnings.length, 1, 'keyframes that are not I-frames are reported');
});

test('eval --keyframe-delay: asynchronous keyframes ready S frames late; 0 is the synchronous table', async (t) => {
  const dir = tmpDir('arseg-eval-async-');
  const video = path.join(dir, 'clip.mp4');
  fs.copyFileSync(fixture('translate-p.mp4'), video);
  await labelFrom(video, path.join(dir, 'labels'), 'ar');
  const zero = JSON.parse(
    run(['eval', video, '--model', BUNDLE, '--modes', 'ar', '--keyframe-delay', '0', '--json']).stdout,
  );
  t.is(zero.keyframeDelay, 0);
  t.deepEqual(zero.modes.ar.perDistance, new Array(12).fill(1), 'the synchronous labels exactly');
  const three = run(['eval', video, '--model', BUNDLE, '--modes', 'ar', '--keyframe-delay', '3']);
  t.is(three.code, 0, three.stderr);
  t.regex(three.stdout, /asynchronous keyframes, each ready 3 frames after its frame/);
  const j = JSON.parse(
    run(['eval', video, '--model', BUNDLE, '--modes', 'ar', '--keyframe-delay', '3', '--json']).stdout,
  );
  // d >= 3 use their own keyframe (score 1); d < 3 an older one, or none in the first GOP
  t.deepEqual(j.modes.ar.perDistance.slice(3), new Array(9).fill(1));
  for (const d of [0, 1, 2]) t.true(j.modes.ar.perDistance[d] < 1, `d=${d}`);
  t.is(run(['eval', video, '--model', BUNDLE, '--keyframe-delay', '-1']).code, 2);
  t.is(run(['eval', video, '--model', BUNDLE, '--keyframe-delay', 'x']).code, 2);
});

test('eval --motion-source: mode ar on estimated motion scores its own predictions 1', async (t) => {
  const dir = tmpDir('arseg-eval-est-');
  const video = path.join(dir, 'clip.webm');
  fs.copyFileSync(fixture('translate-vp9.webm'), video);
  await labelFrom(video, path.join(dir, 'labels'), 'ar');
  const j = JSON.parse(run(['eval', video, '--model', BUNDLE, '--modes', 'ar', '--json']).stdout);
  t.deepEqual(j.modes.ar.perDistance, new Array(12).fill(1), 'a codec without vectors is evaluated in mode ar');
  const h264 = tmpDir('arseg-eval-est-h264-');
  fs.copyFileSync(fixture('translate-p.mp4'), path.join(h264, 'clip.mp4'));
  await labelFrom(path.join(h264, 'clip.mp4'), path.join(h264, 'labels'), 'ar', undefined, 'estimate');
  const forced = JSON.parse(
    run([
      'eval',
      path.join(h264, 'clip.mp4'),
      '--model',
      BUNDLE,
      '--modes',
      'ar',
      '--motion-source',
      'estimate',
      '--json',
    ]).stdout,
  );
  t.deepEqual(forced.modes.ar.perDistance, new Array(12).fill(1));
  t.is(run(['eval', video, '--model', BUNDLE, '--motion-source', 'vectors']).code, 2);
  const refused = run(['eval', video, '--model', BUNDLE, '--modes', 'ar', '--motion-source', 'bitstream', '--json']);
  t.is(JSON.parse(refused.stdout).error.code, 'ERR_NO_MOTION_VECTORS');
});

test('eval of a dataset: its split expands to clips; matrices accumulate over the set per d; ignored pixels', async (t) => {
  const ds = tmpDir('arseg-eval-ds-');
  const clips = { a: 'translate-p.mp4', b: 'tiny.h264', c: 'tiny.h264' }; // 192x128 x 36 frames, 64x48 x 24
  fs.writeFileSync(
    path.join(ds, 'splits.json'),
    JSON.stringify({
      train: [],
      val: ['c'],
      test: ['a', 'b'],
      width: 192,
      height: 128,
      fps: 25,
      gop: 12,
      classes: manifest.classes.slice(0, 11).map((c) => c.name),
    }),
  );
  // labels: the hr predictions, with the top rows ignored (255), a void block (the bundle's
  // ignore index) and, on odd frames, a block of class 3 (road): hr then misses road there
  const expected = { hr: [], ar: [] }; // per d: [label x prediction counts], computed here independently
  for (const [name, src] of Object.entries(clips)) {
    const split = name === 'c' ? 'val' : 'test';
    const dir = path.join(ds, split, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(fixture(src), path.join(dir, 'video.mp4'));
    await labelFrom(path.join(dir, 'video.mp4'), path.join(dir, 'labels'), 'hr', (labels, r) => {
      for (let y = 0; y < r.height; y++)
        for (let x = 0; x < r.width; x++) {
          const i = y * r.width + x;
          if (y < 4) labels[i] = 255;
          else if (x < 10 && y < 20) labels[i] = 11;
          else if (r.index % 2 === 1 && x >= 20 && x < 40 && y >= 30 && y < 40) labels[i] = 3;
        }
      return labels;
    });
  }
  const seg = await ArSeg.load(BUNDLE);
  for (const mode of ['hr', 'ar'])
    for (const name of ['a', 'b']) {
      const dir = path.join(ds, 'test', name);
      for await (const r of seg.segment(path.join(dir, 'video.mp4'), { mode, keyframes: 12 })) {
        const d = r.index % 12;
        const gt = fs.readFileSync(path.join(dir, 'labels', `${pad(r.index)}.png`));
        const labels = require('fast-png').decode(gt).data;
        expected[mode][d] ??= new Float64Array(K * K);
        for (let i = 0; i < labels.length; i++)
          if (labels[i] !== 255 && labels[i] !== 11) expected[mode][d][labels[i] * K + r.labels[i]]++;
      }
    }
  await seg.close();
  const miou = (cm) => {
    const ious = [];
    for (let c = 0; c < 11; c++) {
      let row = 0;
      let col = 0;
      for (let k = 0; k < K; k++) {
        row += cm[c * K + k];
        col += cm[k * K + c];
      }
      const u = row + col - cm[c * K + c];
      if (u > 0) ious.push(cm[c * K + c] / u);
    }
    return ious.reduce((a, b) => a + b, 0) / ious.length;
  };

  const r = run(['eval', ds, '--model', BUNDLE, '--json', '--modes', 'hr,ar']);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.deepEqual(
    j.clips.map((c) => [c.name, c.frames]),
    [
      ['test/a', 36],
      ['test/b', 24],
    ],
  );
  t.deepEqual(j.modes.hr.frames, new Array(12).fill(5));
  t.deepEqual(j.warnings, [], 'same classes, same GOP');
  for (const mode of ['hr', 'ar'])
    for (let d = 0; d < 12; d++)
      t.true(Math.abs(j.modes[mode].perDistance[d] - miou(expected[mode][d])) < 1e-12, `${mode} d=${d}`);
  // hr misses road on odd frames only: odd d score below 1, even d exactly 1
  t.deepEqual(
    j.modes.hr.perDistance.map((v, d) => (d % 2 === 0 ? v === 1 : v < 1)),
    new Array(12).fill(true),
  );
  t.is(j.modes.hr.perClass[3], 0, 'road: labelled, never predicted');
  // pixels counted: every pixel but the ignored ones
  t.is(j.modes.hr.pixels, 36 * (192 * 128 - 192 * 4 - 10 * 16) + 24 * (64 * 48 - 64 * 4 - 10 * 16));

  const val = JSON.parse(run(['eval', ds, '--model', BUNDLE, '--json', '--modes', 'hr', '--split', 'val']).stdout);
  t.deepEqual(
    val.clips.map((c) => c.name),
    ['val/c'],
  );
  t.is(run(['eval', ds, '--model', BUNDLE, '--split', 'nope']).code, 2);
});

test('eval: missing labels name the directory or the file (exit 7)', async (t) => {
  const c = await tinyCopy();
  fs.rmSync(path.join(c.labels, '000005.png'));
  let r = run(['eval', c.video, '--model', BUNDLE]);
  t.is(r.code, 7);
  t.regex(r.stderr, /ERR_LABELS: .*missing label file .*labels\/000005\.png/);

  fs.rmSync(c.labels, { recursive: true });
  r = run(['eval', c.video, '--model', BUNDLE, '--json']);
  t.is(r.code, 7);
  const j = JSON.parse(r.stdout);
  t.false(j.ok);
  t.is(j.error.code, 'ERR_LABELS');
  t.true(j.error.message.includes(c.labels), j.error.message);

  // --labels points elsewhere
  const { dir } = await tiny();
  t.is(run(['eval', c.video, '--model', BUNDLE, '--labels', path.join(dir, 'labels'), '--modes', 'hr']).code, 0);
});

test('eval: a label PNG of the wrong size, or with a value neither a class nor 255 (exit 7, naming the file)', async (t) => {
  const c = await tinyCopy();
  writeLabel(path.join(c.labels, '000003.png'), new Uint8Array(32 * 24), 32, 24);
  let r = run(['eval', c.video, '--model', BUNDLE, '--modes', 'hr']);
  t.is(r.code, 7);
  t.regex(r.stderr, /000003\.png: the label PNG is 32x24, the frame is 64x48/);

  const c2 = await tinyCopy();
  const bad = new Uint8Array(64 * 48);
  bad[64 * 2 + 5] = 200;
  writeLabel(path.join(c2.labels, '000004.png'), bad, 64, 48);
  r = run(['eval', c2.video, '--model', BUNDLE, '--modes', 'lr']);
  t.is(r.code, 7);
  t.regex(r.stderr, /000004\.png: value 200 at \(x 5, y 2\) is neither a class \(0\.\.11\) nor 255/);

  // the ignore index (11) and 255 are accepted
  const c3 = await tinyCopy();
  writeLabel(path.join(c3.labels, '000004.png'), new Uint8Array(64 * 48).fill(11), 64, 48);
  writeLabel(path.join(c3.labels, '000005.png'), new Uint8Array(64 * 48).fill(255), 64, 48);
  const ok = run(['eval', c3.video, '--model', BUNDLE, '--modes', 'hr', '--json']);
  t.is(ok.code, 0, ok.stderr);
  t.deepEqual(JSON.parse(ok.stdout).modes.hr.perDistance, new Array(12).fill(1));
});

test('eval: more frames than labels, or fewer (exit 7, naming the clip)', async (t) => {
  const c = await tinyCopy();
  for (const i of [22, 23]) fs.rmSync(path.join(c.labels, `${pad(i)}.png`));
  let r = run(['eval', c.video, '--model', BUNDLE, '--modes', 'hr']);
  t.is(r.code, 7);
  t.regex(r.stderr, /clip .*tiny\.h264: the video has more frames than labels \(22 in /);

  // an mp4 declares its frame count: refused before any inference
  const m = tmpDir('arseg-eval-mp4-');
  fs.copyFileSync(fixture('translate-p.mp4'), path.join(m, 'video.mp4'));
  fs.mkdirSync(path.join(m, 'labels'));
  for (let i = 0; i < 30; i++) writeLabel(path.join(m, 'labels', `${pad(i)}.png`), new Uint8Array(192 * 128), 192, 128);
  r = run(['eval', m, '--model', BUNDLE]);
  t.is(r.code, 7);
  t.regex(r.stderr, /clip .*: the video has more frames than labels \(36 frames in .*video\.mp4, 30 labels/);

  const c2 = await tinyCopy();
  for (const i of [24, 25]) writeLabel(path.join(c2.labels, `${pad(i)}.png`), new Uint8Array(64 * 48), 64, 48);
  r = run(['eval', c2.video, '--model', BUNDLE, '--modes', 'hr']);
  t.is(r.code, 7);
  t.regex(r.stderr, /clip .*tiny\.h264: 24 frames decoded from .* but 26 labels in /);
});

test('eval usage and input errors: exit 2 and 3', async (t) => {
  const { video } = await tiny();
  t.is(run(['eval', video, '--model', BUNDLE, '--modes', 'hr,xr']).code, 2);
  t.is(run(['eval', video, '--model', BUNDLE, '--interval', '0']).code, 2);
  t.is(run(['eval', video, video, '--model', BUNDLE, '--labels', '/tmp']).code, 2);
  t.is(run(['eval', '--model', BUNDLE]).code, 2);
  t.is(run(['eval', '/nonexistent/clip.mp4', '--model', BUNDLE]).code, 3);
  t.is(run(['eval', tmpDir('arseg-eval-empty-'), '--model', BUNDLE]).code, 3);
  t.is(run(['eval', video, '--model', tmpDir('arseg-nobundle-')]).code, 6);
});

/** A demo-like clip directory: video.mp4 (translate-p.mp4) and, if asked, labels/ = hr predictions. */
async function demoClip(withLabels) {
  const dir = tmpDir('arseg-demo-clip-');
  fs.copyFileSync(fixture('translate-p.mp4'), path.join(dir, 'video.mp4'));
  if (withLabels) await labelFrom(path.join(dir, 'video.mp4'), path.join(dir, 'labels'), 'hr');
  return dir;
}

test('demo (model and clip overridden): segment output and the mIoU of the clip in mode ar', async (t) => {
  const clip = await demoClip(true);
  const out = path.join(tmpDir('arseg-demo-'), 'out');
  const r = run(['demo', '--out', out, '--json'], { ARSEG_DEFAULT_MODEL: BUNDLE, ARSEG_DEMO_CLIP: clip });
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  t.true(s.ok);
  t.is(s.frames, 36);
  t.is(s.keyframes, 3);
  t.is(s.mode, 'ar');
  t.is(fs.readdirSync(path.join(out, 'labels')).length, 36);
  t.is(fs.readdirSync(path.join(out, 'overlays')).length, 36);
  t.is(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).frames, 36);
  t.is(s.miou.interval, 12);
  t.is(s.miou.frames, 36);
  t.is(s.miou.perDistance[0], 1, 'keyframes are HR, as the labels');
  t.true(s.miou.mean < 1 && s.miou.mean > 0);

  // the same with --model/--clip, human-readable, and a clip without labels: no mIoU line
  const text = run(['demo', '--out', out, '--model', BUNDLE, '--clip', clip]);
  t.is(text.code, 0, text.stderr);
  t.regex(
    text.stdout,
    /36 frames 192x128 .* written to .*\n.*mIoU against the clip's labels \(ar, mean over d = 0\.\.11\): \d+\.\d%/s,
  );
  const bare = run(['demo', '--out', out, '--model', BUNDLE, '--clip', await demoClip(false)]);
  t.is(bare.code, 0, bare.stderr);
  t.notRegex(bare.stdout, /mIoU/);

  // broken clip labels: the outputs are written, then exit 7
  const broken = await demoClip(true);
  fs.rmSync(path.join(broken, 'labels', '000030.png'));
  const b = run(['demo', '--out', out, '--model', BUNDLE, '--clip', broken]);
  t.is(b.code, 7);
  t.regex(b.stderr, /missing label file .*000030\.png/);
});

test('demo and segment without a default model: a clear error, exit 6; segment without --model uses it', async (t) => {
  const none = tmpDir('arseg-nodefault-');
  const out = path.join(tmpDir('arseg-demo-'), 'out');
  const r = run(['demo', '--out', out], { ARSEG_DEFAULT_MODEL: none });
  t.is(r.code, 6);
  t.regex(r.stderr, /ERR_BUNDLE: no default model: .*arseg\.json does not exist/);
  const s = run(['segment', fixture('tiny.h264'), '--out', out], { ARSEG_DEFAULT_MODEL: none });
  t.is(s.code, 6);
  t.regex(s.stderr, /no default model/);
  const e = run(['eval', fixture('tiny.h264')], { ARSEG_DEFAULT_MODEL: none });
  t.is(e.code, 6);

  const ok = run(['segment', fixture('tiny.h264'), '--out', out, '--json', '--no-flops'], {
    ARSEG_DEFAULT_MODEL: BUNDLE,
  });
  t.is(ok.code, 0, ok.stderr);
  t.is(JSON.parse(ok.stdout).model, 'tiny-psp18');
  t.is(run(['demo', '--out', out, '--clip', tmpDir('arseg-noclip-')], { ARSEG_DEFAULT_MODEL: BUNDLE }).code, 3);
});

const demoShipped = fs.existsSync(path.join(ROOT, 'models', 'demo', 'video.mp4'));
const defaultShipped = fs.existsSync(path.join(ROOT, 'models', 'default', 'arseg.json'));
const unset = { ARSEG_DEFAULT_MODEL: '', ARSEG_DEMO_CLIP: '' };

(demoShipped ? test : test.skip)(
  'demo finds the shipped demo clip from any working directory (with the tiny bundle)',
  (t) => {
    const out = path.join(tmpDir('arseg-demo-clip-'), 'out');
    const r = spawnSync(process.execPath, [CLI, 'demo', '--model', BUNDLE, '--out', out, '--json'], {
      cwd: tmpDir(),
      encoding: 'utf8',
      env: { ...process.env, ...unset },
    });
    t.is(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    t.is(s.frames, 48);
    t.deepEqual([s.width, s.height], [320, 240]);
    t.is(s.keyframes, 4);
    t.is(fs.readdirSync(path.join(out, 'overlays')).length, 48);
    t.is(s.miou.frames, 48, 'the shipped labels are read and pass the checks');
    t.is(s.miou.perDistance.length, 12);
  },
);

(demoShipped && defaultShipped ? test : test.skip)('demo with the shipped default model and demo clip', (t) => {
  const out = path.join(tmpDir('arseg-demo-real-'), 'out');
  const r = spawnSync(process.execPath, [CLI, 'demo', '--out', out, '--json'], {
    cwd: tmpDir(),
    encoding: 'utf8',
    env: { ...process.env, ...unset },
  });
  t.is(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  t.is(s.frames, 48);
  t.is(fs.readdirSync(path.join(out, 'overlays')).length, 48);
  t.is(s.miou.frames, 48);
  t.true(s.miou.mean > 0.3, `a trained model: mIoU ${s.miou.mean}`);
  // segment without --model uses it as well (on the tiny clip: which model ran is the point, and
  // the demo clip through the default model once more cost seconds of the suite)
  const seg = run(['segment', fixture('tiny.h264'), '--out', path.join(out, 'tiny'), '--json', '--no-flops'], unset);
  t.is(seg.code, 0, seg.stderr);
  t.is(JSON.parse(seg.stdout).model, s.model);
});
