'use strict';
// The pixel limit (option limitInputPixels): a header stating a huge picture is refused before a
// picture is allocated, a size change part-way ends the stream after the frames before it, and
// allocation failures are ERR_OUT_OF_MEMORY. The hostile input is a real MPEG-1 I-frame whose
// header says 4094x4094 (test/fixtures/make-fixtures.js; 245 KB, gzipped to 0.6 KB).
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { spawn, spawnSync } = require('node:child_process');
const test = require('ava');
const { ArSeg, ArSegError, DEFAULT_PIXEL_LIMIT, createPacketReader, openVideo, toArSegError } = require('../dist');
const { fixture, tmpDir } = require('./helpers/fixtures');

const SMALL = fixture('mpeg1-64x48.m1v');
const BUNDLE = fixture(path.join('bundles', 'tiny-psp18'));
const CLI = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const dir = tmpDir('arseg-limits-');
const BIG = path.join(dir, 'big-4094x4094.m1v');
fs.writeFileSync(BIG, zlib.gunzipSync(fs.readFileSync(fixture('mpeg1-4094x4094.m1v.gz'))));
// 64x48 pictures, then a sequence header that says 4094x4094: the size changes part-way
const GROWS = path.join(dir, 'grows.m1v');
fs.writeFileSync(GROWS, Buffer.concat([fs.readFileSync(SMALL), fs.readFileSync(BIG)]));

async function readAll(source, options) {
  const frames = [];
  const reader = openVideo(source, options);
  try {
    for await (const f of reader) frames.push(f);
    return { frames, error: null };
  } catch (error) {
    return { frames, error };
  }
}

test('the default limit is 8192 x 8192 and admits the 4094x4094 picture', async (t) => {
  t.is(DEFAULT_PIXEL_LIMIT, 8192 * 8192);
  const reader = openVideo(BIG);
  const info = await reader.open();
  t.deepEqual([info.width, info.height], [4094, 4094]);
  reader.close();
  const { frames, error } = await readAll(BIG);
  t.is(error, null);
  t.deepEqual(
    frames.map((f) => [f.width, f.height]),
    [[4094, 4094]],
  );
});

test('a header over the limit: ERR_INPUT_TOO_LARGE from open(), with the sizes in the message', async (t) => {
  const reader = openVideo(BIG, { limitInputPixels: 1920 * 1080, rgb: true });
  const err = await t.throwsAsync(reader.open());
  t.true(err instanceof ArSegError);
  t.is(err.code, 'ERR_INPUT_TOO_LARGE');
  t.regex(err.message, /4094x4094 \(16760836 pixels\), more than the limit of 2073600 \(option limitInputPixels\)/);
  // reading fails the same way
  const { frames, error } = await readAll(BIG, { limitInputPixels: 1920 * 1080 });
  t.is(frames.length, 0);
  t.is(error.code, 'ERR_INPUT_TOO_LARGE');
});

/** Peak resident memory (MiB) of a child process that reads `source` with `options`. */
function peakMemory(source, options) {
  const script = `
    const { openVideo } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
    (async () => {
      let code = null, frames = 0;
      try { for await (const f of openVideo(${JSON.stringify(source)}, ${JSON.stringify(options)})) frames++; }
      catch (e) { code = e.code; }
      console.log(JSON.stringify({ code, frames, maxRssMib: process.resourceUsage().maxRSS / 1024 }));
    })();`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

test('memory stays bounded: the refused header costs no more than a 64x48 clip', (t) => {
  const options = { rgb: true, tensors: [{ scale: 1 }] };
  const baseline = peakMemory(SMALL, options);
  const refused = peakMemory(BIG, { ...options, limitInputPixels: 1e6 });
  const decoded = peakMemory(BIG, { ...options, limitInputPixels: false });
  t.is(baseline.code, null);
  t.is(refused.code, 'ERR_INPUT_TOO_LARGE');
  t.is(refused.frames, 0);
  t.is(decoded.code, null);
  t.is(decoded.frames, 1);
  t.log(
    `peak RSS: 64x48 clip ${baseline.maxRssMib.toFixed(0)} MiB, refused ${refused.maxRssMib.toFixed(0)} MiB, decoded ${decoded.maxRssMib.toFixed(0)} MiB`,
  );
  // decoding the picture with its RGB and tensor costs > 200 MiB; refusing it costs nothing
  t.true(decoded.maxRssMib - baseline.maxRssMib > 150, 'the measurement sees a decoded 4094x4094 picture');
  t.true(
    refused.maxRssMib - baseline.maxRssMib < 30,
    `refused: ${refused.maxRssMib} MiB against ${baseline.maxRssMib}`,
  );
});

test('a size change part-way: the frames before it, then ERR_INPUT_TOO_LARGE with framesDecoded', async (t) => {
  const { frames, error } = await readAll(GROWS, { limitInputPixels: 1e6 });
  t.true(frames.length >= 1);
  t.true(frames.every((f) => f.width === 64 && f.height === 48));
  t.truthy(error);
  t.is(error.code, 'ERR_INPUT_TOO_LARGE');
  t.is(error.framesDecoded, frames.length);
  // without a limit the large picture is decoded
  const all = await readAll(GROWS, { limitInputPixels: 0 });
  t.is(all.error, null);
  t.deepEqual(
    all.frames.map((f) => f.width),
    [...frames.map(() => 64), 4094],
  );
});

test('the packet reader: frames before the large picture, then ERR_INPUT_TOO_LARGE on the next call', async (t) => {
  const bytes = fs.readFileSync(GROWS);
  const reader = createPacketReader({ codec: 'mpeg1video', limitInputPixels: 1e6 });
  const frames = [];
  let error = null;
  try {
    for (let at = 0; at < bytes.length; at += 777) frames.push(...(await reader.decode(bytes.subarray(at, at + 777))));
    frames.push(...(await reader.flush()));
  } catch (err) {
    error = err;
  }
  reader.close();
  t.true(frames.length >= 1);
  t.true(frames.every((f) => f.width === 64));
  t.is(error?.code, 'ERR_INPUT_TOO_LARGE');
});

test('limitInputPixels is checked at once', (t) => {
  for (const bad of [-1, 1.5, 'big', null, Number.MAX_VALUE])
    t.throws(() => openVideo(SMALL, { limitInputPixels: bad }), { code: 'ERR_INVALID_ARG' }, String(bad));
  t.throws(() => createPacketReader({ codec: 'h264', limitInputPixels: -5 }), { code: 'ERR_INVALID_ARG' });
  t.notThrows(() => openVideo(SMALL, { limitInputPixels: true }).close());
});

test('ArSeg.segment() and `ar-seg segment --limit-input-pixels` refuse the large header', async (t) => {
  const seg = await ArSeg.load(BUNDLE);
  const err = await t.throwsAsync(async () => {
    for await (const _ of seg.segment(BIG, { limitInputPixels: 1e6 }));
  });
  t.is(err.code, 'ERR_INPUT_TOO_LARGE');
  await seg.close();
  const out = path.join(dir, 'cli-out');
  const r = spawnSync(
    process.execPath,
    [CLI, 'segment', BIG, '--model', BUNDLE, '--out', out, '--limit-input-pixels', '1000000', '--json', '--no-flops'],
    { encoding: 'utf8' },
  );
  t.is(r.status, 3, r.stderr);
  t.is(JSON.parse(r.stdout).error.code, 'ERR_INPUT_TOO_LARGE');
});

test('allocation failures are ERR_OUT_OF_MEMORY: the 4094x4094 frame in ONNX Runtime with 200 MiB of address space to spare', async (t) => {
  // The child loads the model and segments a small clip, says how much address space it uses,
  // and waits; the parent caps it (prlimit) 200 MiB above that; then it segments the large frame
  // with no pixel limit. ONNX Runtime's first activation alone needs 256 MiB.
  const script = `
    const fs = require('node:fs');
    const { ArSeg } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
    (async () => {
      const seg = await ArSeg.load(${JSON.stringify(BUNDLE)});
      for await (const r of seg.segment(${JSON.stringify(SMALL)})) void r;
      const vm = Number(/VmSize:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
      process.stdout.write(JSON.stringify({ vmKib: vm }) + '\\n');
      await new Promise((r) => process.stdin.once('data', r));
      try { for await (const r of seg.segment(${JSON.stringify(BIG)}, { limitInputPixels: false })) void r; console.log(JSON.stringify({ code: null })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
      process.exit(0);
    })();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise((resolve) => child.on('exit', resolve));
  child.stdout.on('data', (d) => {
    const first = out === '';
    out += d;
    if (first) {
      const { vmKib } = JSON.parse(out.split('\n')[0]);
      const cap = spawnSync('prlimit', ['--pid', String(child.pid), `--as=${(vmKib + 200 * 1024) * 1024}`], {
        encoding: 'utf8',
      });
      if (cap.status !== 0) child.kill();
      t.is(cap.status, 0, `prlimit: ${cap.stderr || cap.error}`);
      child.stdin.write('go\n');
    }
  });
  t.is(await done, 0, err);
  const result = JSON.parse(out.trim().split('\n').pop());
  t.is(result.code, 'ERR_OUT_OF_MEMORY', result.message);
});

test('toArSegError: what JavaScript and ONNX Runtime throw when memory runs out', (t) => {
  t.is(toArSegError(new RangeError('Array buffer allocation failed')).code, 'ERR_OUT_OF_MEMORY');
  const ort = new Error(
    'Non-zero status code returned while running Conv node. Status Message: bfc_arena.cc:360 Failed to allocate memory for requested buffer of size 268435456',
  );
  t.is(toArSegError(ort).code, 'ERR_OUT_OF_MEMORY');
  t.is(toArSegError(Object.assign(new Error('spawn failed'), { code: 'ENOMEM' })).code, 'ERR_OUT_OF_MEMORY');
  // other failures stay what they were
  t.is(toArSegError(new RangeError('Invalid typed array length: -1')).code, 'ERR_NATIVE');
  t.is(toArSegError(Object.assign(new Error('x'), { code: 'ERR_TRUNCATED' })).code, 'ERR_TRUNCATED');
});
