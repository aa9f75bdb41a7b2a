'use strict';
// Inputs other than local files, and the build's libav discovery.
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { openVideo, libavVersions } = require('../dist');
const { fixture, collect } = require('./helpers/fixtures');

test('an http URL decodes like the file', async (t) => {
  const bytes = fs.readFileSync(fixture('translate-b.mp4'));
  const server = http.createServer((req, res) => {
    // libavformat's http protocol seeks with Range requests (the mp4 index).
    const range = /bytes=(\d+)-(\d*)/.exec(req.headers.range || '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Number(range[2]) : bytes.length - 1;
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${bytes.length}`, 'Content-Length': end - start + 1, 'Accept-Ranges': 'bytes' });
      res.end(bytes.subarray(start, end + 1));
    } else {
      res.writeHead(200, { 'Content-Length': bytes.length, 'Accept-Ranges': 'bytes' });
      res.end(bytes);
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${server.address().port}/clip.mp4`;
    const remote = await collect(openVideo(url, { vectors: true, formatOptions: { timeout: 5000000 } }));
    const local = await collect(openVideo(fixture('translate-b.mp4'), { vectors: true }));
    t.is(remote.length, local.length);
    remote.forEach((f, i) => t.deepEqual(Array.from(f.vectors), Array.from(local[i].vectors)));
  } finally {
    server.close();
  }
  const closed = openVideo('http://127.0.0.1:1/clip.mp4');
  const err = await t.throwsAsync(closed.open());
  t.is(err.code, 'ERR_OPEN');
});

test('a file: URL is handed to libavformat', async (t) => {
  const frames = await collect(openVideo(`file:${fixture('mpeg4.mp4')}`));
  t.is(frames.length, 24);
});

test('the addon reports the libav it was built against', (t) => {
  const v = libavVersions();
  t.regex(String(v.avcodec), /^\d+\.\d+\.\d+$/);
  t.regex(String(v.configuration), /--/);
  t.notRegex(String(v.configuration), /--enable-nonfree/);
});

test('a build without libav says which packages to install', (t) => {
  const script = path.join(__dirname, '..', 'scripts', 'libav-flags.js');
  // ARSEG_LIBAV_PREFIX=system: the system's libav through pkg-config, which finds none here
  const r = spawnSync(process.execPath, [script, '--cflags'], {
    encoding: 'utf8',
    env: { ...process.env, ARSEG_LIBAV_PREFIX: 'system', PKG_CONFIG_LIBDIR: '/nonexistent', PKG_CONFIG_PATH: '' },
  });
  t.is(r.status, 1);
  t.regex(r.stderr, /libavformat-dev libavcodec-dev libavutil-dev libswscale-dev/);
  const system = spawnSync(process.execPath, [script, '--libs'], { encoding: 'utf8', env: { ...process.env, ARSEG_LIBAV_PREFIX: 'system' } });
  t.is(system.status, 0);
  t.regex(system.stdout, /-lavcodec/);
  // A prefix without a libav in it: the same message, naming the prefix
  const missing = spawnSync(process.execPath, [script, '--libs'], { encoding: 'utf8', env: { ...process.env, ARSEG_LIBAV_PREFIX: '/nonexistent' } });
  t.is(missing.status, 1);
  t.regex(missing.stderr, /\/nonexistent/);
});

test('source builds link the patched static libav of scripts/build-libav.sh when it is built', (t) => {
  const script = path.join(__dirname, '..', 'scripts', 'libav-flags.js');
  const built = path.join(__dirname, '..', '.prebuild-cache', 'libav');
  const r = spawnSync(process.execPath, [script, '--libs'], { encoding: 'utf8', env: { ...process.env, ARSEG_LIBAV_PREFIX: '' } });
  t.is(r.status, 0);
  if (!fs.existsSync(path.join(built, 'lib', 'pkgconfig', 'libavcodec.pc'))) {
    t.log('no .prebuild-cache/libav here (scripts/setup.sh builds it): the system libav is linked');
    t.regex(r.stdout, /-lavcodec/);
    return;
  }
  // the archives by full path, their symbols kept inside the addon
  t.regex(r.stdout, /libav-[^/\n]+\/lib\/libavcodec\.a/);
  t.regex(r.stdout, /--exclude-libs,ALL/);
  t.true(fs.readFileSync(path.join(built, 'include', 'libavutil', 'motion_vector.h'), 'utf8').includes('AV_MOTION_VECTOR_EXACT_REFS'));
});
