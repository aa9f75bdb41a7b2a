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
      res.writeHead(206, {
        'Content-Range': `bytes ${start}-${end}/${bytes.length}`,
        'Content-Length': end - start + 1,
        'Accept-Ranges': 'bytes',
      });
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
  const system = spawnSync(process.execPath, [script, '--libs'], {
    encoding: 'utf8',
    env: { ...process.env, ARSEG_LIBAV_PREFIX: 'system' },
  });
  t.is(system.status, 0);
  t.regex(system.stdout, /-lavcodec/);
  // A prefix without a libav in it: the same message, naming the prefix
  const missing = spawnSync(process.execPath, [script, '--libs'], {
    encoding: 'utf8',
    env: { ...process.env, ARSEG_LIBAV_PREFIX: '/nonexistent' },
  });
  t.is(missing.status, 1);
  t.regex(missing.stderr, /\/nonexistent/);
});

test('source builds link the patched static libav of scripts/build-libav.sh when it is built', (t) => {
  const script = path.join(__dirname, '..', 'scripts', 'libav-flags.js');
  const built = path.join(__dirname, '..', '.prebuild-cache', 'libav');
  const r = spawnSync(process.execPath, [script, '--libs'], {
    encoding: 'utf8',
    env: { ...process.env, ARSEG_LIBAV_PREFIX: '' },
  });
  t.is(r.status, 0);
  if (!fs.existsSync(path.join(built, 'lib', 'pkgconfig', 'libavcodec.pc'))) {
    t.log('no .prebuild-cache/libav here (scripts/setup.sh builds it): the system libav is linked');
    t.regex(r.stdout, /-lavcodec/);
    return;
  }
  // the archives by full path, their symbols kept inside the addon
  t.regex(r.stdout, /libav-[^/\n]+\/lib\/libavcodec\.a/);
  t.regex(r.stdout, /--exclude-libs,ALL/);
  const cflags = spawnSync(process.execPath, [script, '--cflags'], {
    encoding: 'utf8',
    env: { ...process.env, ARSEG_LIBAV_PREFIX: '' },
  });
  t.deepEqual(
    cflags.stdout.split(/\s+/).filter((f) => f.startsWith('-I')),
    [`-I${path.join(fs.realpathSync(built), 'include')}`],
  );
  t.true(
    fs
      .readFileSync(path.join(built, 'include', 'libavutil', 'motion_vector.h'), 'utf8')
      .includes('AV_MOTION_VECTOR_EXACT_REFS'),
  );
});

// A build directory configured while the system's libav was the one found (before
// scripts/build-libav.sh ran, or with ARSEG_LIBAV_PREFIX=system) must move to the patched
// libav once .prebuild-cache/libav exists: its build depends on .prebuild-cache, so a plain
// rebuild configures again, and configuring again replaces every cached pkg-config answer.
test('a stale CMake build directory moves to the patched libav of .prebuild-cache', (t) => {
  const root = path.join(__dirname, '..');
  const built = path.join(root, '.prebuild-cache', 'libav');
  if (!fs.existsSync(path.join(built, 'lib', 'pkgconfig', 'libavcodec.pc'))) {
    t.log('no .prebuild-cache/libav here (scripts/setup.sh builds it): nothing to move to');
    t.pass();
    return;
  }
  const prefix = fs.realpathSync(built);
  const ninja = spawnSync('ninja', ['--version']).status === 0;
  const out = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'arseg-cmake-'));
  try {
    const configure = (env) =>
      spawnSync(
        'cmake',
        [
          '-S',
          root,
          '-B',
          out,
          '-G',
          ninja ? 'Ninja' : 'Unix Makefiles',
          '-DARSEG_CUDA=OFF',
          '-DARSEG_SELFTEST=ON',
          '-DCMAKE_BUILD_TYPE=Release',
        ],
        { encoding: 'utf8', env: { ...process.env, ...env } },
      );
    const cache = () => fs.readFileSync(path.join(out, 'CMakeCache.txt'), 'utf8');
    const compileFlags = () =>
      fs.readFileSync(path.join(out, ninja ? 'build.ninja' : 'CMakeFiles/arseg_core.dir/flags.make'), 'utf8');
    const linkLines = () =>
      fs.readFileSync(path.join(out, ninja ? 'build.ninja' : 'CMakeFiles/arseg_selftest.dir/link.txt'), 'utf8');

    const system = configure({ ARSEG_LIBAV_PREFIX: 'system' });
    t.is(system.status, 0, system.stderr);
    t.notRegex(system.stdout, /static libav from/);
    t.false(cache().includes(prefix), 'the first configuration found the system libav');
    t.regex(cache(), /^ARSEG_LIBAV_EXACT_REFS:INTERNAL=$/m, 'the system libav lacks the patches');
    // What a rebuild checks before building: .prebuild-cache is among the files whose change
    // configures again.
    const rerunDeps = ninja
      ? spawnSync('ninja', ['-C', out, '-t', 'query', 'build.ninja'], { encoding: 'utf8' }).stdout
      : fs.readFileSync(path.join(out, 'CMakeFiles', 'Makefile.cmake'), 'utf8');
    t.true(rerunDeps.includes(path.join(root, '.prebuild-cache')), 'the build depends on .prebuild-cache');

    // The configuration that rebuild runs (no ARSEG_LIBAV_PREFIX this time), in the same dir.
    const again = configure({ ARSEG_LIBAV_PREFIX: '' });
    t.is(again.status, 0, again.stderr);
    t.true(again.stdout.includes(`static libav from ${prefix}`));
    t.regex(cache(), /^ARSEG_LIBAV_EXACT_REFS:INTERNAL=1$/m);
    t.true(linkLines().includes(path.join(prefix, 'lib', 'libavcodec.a')), 'the addon links the patched archive');
    t.true(compileFlags().includes(`-I${path.join(prefix, 'include')}`), 'and compiles against its headers');
    t.false(/(^|\s)-lavcodec(\s|$)/m.test(linkLines()), 'and not the system libavcodec');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
