'use strict';
// A live TCP stream cut part-way (the sender stops mid-packet, or is killed) must not end like a
// normal end: where the container lets us tell, the frames before the cut come out and then
// ERR_TRUNCATED. Where it cannot (a cut exactly between packets of MPEG-TS, Matroska, MPEG-PS,
// or any cut of a raw elementary stream), docs/reading-video.md says so and the last test here
// pins that behaviour.
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const test = require('ava');
const { openVideo } = require('../dist');
const { FIXTURES, fixture, tmpDir } = require('./helpers/fixtures');

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');

/** A TCP server on 127.0.0.1 that sends `bytes` to each connection and closes it (FIN). */
async function sender(t, bytes) {
  const server = net.createServer((s) => s.end(bytes));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  return `tcp://127.0.0.1:${server.address().port}`;
}

async function readAll(source) {
  const frames = [];
  try {
    for await (const f of openVideo(source)) frames.push(f);
    return { frames, error: null };
  } catch (error) {
    return { frames, error };
  }
}

test('MPEG-TS sent whole: every frame, a normal end', async (t) => {
  const { frames, error } = await readAll(await sender(t, fs.readFileSync(fixture('translate-p.ts'))));
  t.is(error, null);
  t.is(frames.length, 36);
});

test('MPEG-TS cut inside a 188-byte packet: the frames before, then ERR_TRUNCATED', async (t) => {
  const bytes = fs.readFileSync(fixture('translate-p.ts'));
  for (const packets of [60, 100, 150]) {
    const cut = packets * 188 + 90;
    const { frames, error } = await readAll(await sender(t, bytes.subarray(0, cut)));
    t.truthy(error, `cut at ${cut}`);
    t.is(error.code, 'ERR_TRUNCATED');
    t.regex(error.message, /ends 90 bytes into a 188-byte transport packet/);
    t.is(error.framesDecoded, frames.length);
    t.true(frames.length > 0 && frames.length < 36, `${frames.length} frames`);
  }
});

test('fragmented MP4 (a live sender) cut inside a sample: ERR_TRUNCATED', async (t) => {
  const bytes = fs.readFileSync(fixture('translate-p-fragmented.mp4'));
  for (const frac of [0.5, 0.73]) {
    const { frames, error } = await readAll(await sender(t, bytes.subarray(0, Math.floor(bytes.length * frac))));
    t.truthy(error, `cut at ${frac}`);
    t.is(error.code, 'ERR_TRUNCATED');
    t.regex(error.message, /last packet is cut short/);
    t.is(error.framesDecoded, frames.length);
    t.true(frames.length > 0);
  }
  const whole = await readAll(await sender(t, bytes));
  t.is(whole.error, null);
  t.is(whole.frames.length, 36);
});

test('MP4 with its index first, cut: ERR_TRUNCATED (the index declares the frames)', async (t) => {
  const bytes = fs.readFileSync(fixture('translate-p.mp4'));
  const { frames, error } = await readAll(await sender(t, bytes.subarray(0, bytes.length >> 1)));
  t.is(error?.code, 'ERR_TRUNCATED');
  t.is(error.framesDecoded, frames.length);
});

test('the sender is killed part-way (SIGKILL): ERR_TRUNCATED, and `ar-seg segment` exits 4 with the frames and the error in summary.json', async (t) => {
  // A child process serves the TS, stops after 70.5 packets' worth and kills itself: the kernel
  // closes its socket.
  const script = `
    const net = require('node:net');
    const bytes = require('node:fs').readFileSync(${JSON.stringify(fixture('translate-p.ts'))}).subarray(0, 70 * 188 + 94);
    const server = net.createServer((s) => s.write(bytes, () => setTimeout(() => process.kill(process.pid, 'SIGKILL'), 50)));
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const startSender = async () => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal)));
    t.teardown(() => child.kill('SIGKILL'));
    return { url: `tcp://127.0.0.1:${port}`, exited };
  };
  const first = await startSender();
  const { frames, error } = await readAll(first.url);
  t.is(await first.exited, 'SIGKILL');
  t.is(error?.code, 'ERR_TRUNCATED');
  t.true(frames.length > 0);

  const second = await startSender();
  const out = path.join(tmpDir('arseg-trunc-'), 'out');
  const r = await new Promise((resolve) => {
    const c = spawn(
      process.execPath,
      [CLI, 'segment', second.url, '--model', BUNDLE, '--out', out, '--json', '--no-flops'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.on('exit', (code) => resolve({ code, stdout }));
  });
  t.is(r.code, 4, r.stdout);
  t.is(JSON.parse(r.stdout).error.code, 'ERR_TRUNCATED');
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  t.is(summary.error.code, 'ERR_TRUNCATED');
  t.true(summary.frames > 0);
  t.is(fs.readdirSync(path.join(out, 'labels')).length, summary.frames);
});

test('documented limits: a cut exactly between MPEG-TS packets, or in a raw H.264 stream, reads as an end', async (t) => {
  // docs/reading-video.md, "Streams cut part-way": no container evidence, so no error
  const ts = fs.readFileSync(fixture('translate-p.ts'));
  const aligned = await readAll(await sender(t, ts.subarray(0, 100 * 188)));
  t.is(aligned.error, null);
  t.true(aligned.frames.length > 0 && aligned.frames.length < 36);
  const h264 = fs.readFileSync(fixture('translate-p.h264'));
  const raw = await readAll(await sender(t, h264.subarray(0, h264.length >> 1)));
  t.is(raw.error, null);
  t.true(raw.frames.length > 0 && raw.frames.length < 36);
  t.regex(fs.readFileSync(path.join(__dirname, '..', 'docs', 'reading-video.md'), 'utf8'), /Streams cut part-way/);
});

test('a cut TS file (not only a socket) is reported the same way', async (t) => {
  const file = path.join(tmpDir('arseg-trunc-'), 'cut.ts');
  fs.writeFileSync(file, fs.readFileSync(fixture('translate-p.ts')).subarray(0, 120 * 188 + 7));
  const { frames, error } = await readAll(file);
  t.is(error?.code, 'ERR_TRUNCATED');
  t.is(error.framesDecoded, frames.length);
  t.is(spawnSync(process.execPath, [CLI, 'mvs', file, '--json']).status, 4);
});
