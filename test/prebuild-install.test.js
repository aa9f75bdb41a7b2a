'use strict';
// The prebuilt install, end to end (issue: "Prebuilt install on Linux x64"): `npm pack` this
// repository, install the tarball into a new project (dependencies from the npm registry) with
// every compiler and build tool on PATH replaced by a shim that records its call and fails, and
// check that the prebuild is the addon that loads, that it links no shared libav, and that it
// segments a fixture clip exactly like the from-source build in build/Release.
// Needs the npm registry (or a warm npm cache): without it the test fails with npm's error.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { fixture, tmpDir } = require('./helpers/fixtures');

const ROOT = path.join(__dirname, '..');
const PREBUILD_REL = 'prebuilds/linux-x64/node.napi.glibc.node';
const SOURCE_BUILD = path.join(ROOT, 'build', 'Release', 'ar_seg_native.node');
const PROBE = path.join(__dirname, 'helpers', 'prebuild-probe.js');
const CLIP = fixture('translate-b.mp4');
const BUNDLE = fixture(path.join('bundles', 'tiny-psp18'));
// ARSEG_PREBUILD_NO_SOURCE=1: a machine with no source build to compare with (no compiler or
// libav headers: scripts/gpu-check.sh on a fresh GPU machine); the comparison is then left out
// and said so, everything else (the install, the prebuild loaded, ldd, the GPU half) still runs.
const NO_SOURCE = process.env.ARSEG_PREBUILD_NO_SOURCE === '1';
const SHIMMED_TOOLS = ['cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'make', 'gmake', 'cmake', 'ninja', 'nvcc', 'ld'];

/** The environment without what `npm test` exports (npm_*), so the nested npm starts clean. */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'INIT_CWD' || k === 'PREBUILDS_ONLY' || k === 'AR_SEG_NATIVE_PREBUILD') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function run(cmd, args, options) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  if (r.error || r.status !== 0) {
    const tail = (s) =>
      String(s || '')
        .trim()
        .split('\n')
        .slice(-40)
        .join('\n');
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.error ? r.error.message : `exit ${r.status}`}) in ${options.cwd}\n` +
        `stderr:\n${tail(r.stderr)}\nstdout:\n${tail(r.stdout)}`,
    );
  }
  return r;
}

/** The .node files a report lists that belong to the package at dir (not its dependencies). */
function ownAddons(loaded, dir) {
  return loaded.filter(
    (f) => f.startsWith(dir + path.sep) && !f.slice(dir.length).includes(`${path.sep}node_modules${path.sep}`),
  );
}

const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;

test('the packed tarball installs the linux-x64 prebuild without a compiler and segments exactly like the source build', (t) => {
  t.timeout(360_000, 'npm pack + npm install + two segmentations');
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    t.fail(`the committed prebuild is linux-x64; this is ${process.platform}-${process.arch}`);
    return;
  }
  for (const [file, why] of [
    [path.join(ROOT, 'dist', 'index.js'), 'dist/ is missing: run `npm run build` (npm pack ships dist/)'],
    [path.join(ROOT, PREBUILD_REL), `${PREBUILD_REL} is missing: run \`npm run build:prebuild\``],
    ...(NO_SOURCE ? [] : [[SOURCE_BUILD, 'the from-source build is missing: run `npm run build`']]),
  ]) {
    if (!fs.existsSync(file)) {
      t.fail(why);
      return;
    }
  }

  const work = tmpDir('arseg-prebuild-install-');
  try {
    // 1. The tarball users get.
    const packed = run('npm', ['pack', '--json', '--pack-destination', work, '--loglevel=error'], {
      cwd: ROOT,
      env: cleanEnv(),
    });
    const info = JSON.parse(packed.stdout)[0];
    t.log(
      `npm pack: ${info.filename}, ${mib(info.size)} packed (${info.size} bytes), ${mib(info.unpackedSize)} unpacked, ${info.entryCount} files`,
    );
    const paths = info.files.map((f) => f.path);
    t.true(paths.includes(PREBUILD_REL), 'the tarball lacks the prebuild');
    t.true(paths.includes('prebuilds/linux-x64/BUILD.json'), 'the tarball lacks the build record');
    t.true(
      paths.includes('dist/index.js') && paths.includes('binding.gyp') && paths.includes('scripts/libav-flags.js'),
    );
    t.false(
      paths.some((p) => p.startsWith('build/') || p.startsWith('build-prebuild/') || p.startsWith('.prebuild-cache/')),
    );

    // 2. A new project installs it, with no compiler usable.
    const project = path.join(work, 'project');
    const shims = path.join(work, 'no-compiler');
    const calls = path.join(work, 'compiler-calls.log');
    fs.mkdirSync(project);
    fs.mkdirSync(shims);
    for (const tool of SHIMMED_TOOLS) {
      fs.writeFileSync(
        path.join(shims, tool),
        `#!/bin/sh\necho "$0 $*" >> '${calls}'\necho "${tool}: no compiler in this test" >&2\nexit 1\n`,
        { mode: 0o755 },
      );
    }
    fs.writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify(
        {
          name: 'arseg-prebuild-proof',
          version: '1.0.0',
          private: true,
          // ar-seg-native's install step (node-gyp-build) runs: it must settle on the prebuild.
          allowScripts: { 'onnxruntime-node': false, 'ar-seg-native': true },
        },
        null,
        2,
      ),
    );
    // As in this repository: onnxruntime-node installs without downloading its CUDA binaries.
    fs.writeFileSync(path.join(project, '.npmrc'), 'onnxruntime-node-install=skip\n');
    const env = cleanEnv({
      PATH: `${shims}:${process.env.PATH}`,
      CC: path.join(shims, 'cc'),
      CXX: path.join(shims, 'c++'),
    });
    const started = Date.now();
    run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', path.join(work, info.filename)],
      { cwd: project, env },
    );
    t.log(`npm install of the tarball: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.false(
      fs.existsSync(calls),
      `a compiler or build tool was run during the install:\n${fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8') : ''}`,
    );
    const installed = fs.realpathSync(path.join(project, 'node_modules', 'ar-seg-native'));
    t.false(
      fs.existsSync(path.join(installed, 'build')),
      'the install built the addon from source (node_modules/ar-seg-native/build exists)',
    );
    const prebuild = path.join(installed, PREBUILD_REL);
    const record = JSON.parse(fs.readFileSync(path.join(installed, 'prebuilds', 'linux-x64', 'BUILD.json'), 'utf8'));
    t.log(
      `prebuild: ${mib(fs.statSync(prebuild).size)} (${fs.statSync(prebuild).size} bytes), glibc >= ${record.glibc}, ` +
        `ffmpeg ${record.ffmpeg.version}, CUDA ${record.cuda ? [...record.cuda.machineCode, ...record.cuda.ptx].join(' ') : 'none'}`,
    );

    // 3. It links no shared libav.
    const ldd = run('ldd', [prebuild], { cwd: project }).stdout;
    t.log(`ldd ${PREBUILD_REL}:\n${ldd.trim()}`);
    t.notRegex(ldd, /lib(avcodec|avformat|avutil|swscale|swresample|avfilter|avdevice|postproc)\b/);
    t.notRegex(ldd, /not found/);

    // 4. The packed install segments a clip; the prebuild is the addon it loaded.
    const packedLabels = path.join(work, 'labels-packed.bin');
    const packedRun = run(process.execPath, [PROBE, installed, CLIP, BUNDLE, packedLabels], { cwd: project, env });
    const packedReport = JSON.parse(packedRun.stdout.trim().split('\n').pop());
    t.deepEqual(ownAddons(packedReport.loaded, installed), [prebuild], 'the packed install did not load its prebuild');
    t.true(
      packedReport.maps.includes(prebuild),
      `the prebuild is not mapped into the process: ${packedReport.maps.join(', ')}`,
    );
    t.false(
      packedReport.maps.some((m) => m.startsWith(`${ROOT}${path.sep}`)),
      'the packed install mapped a file of the repository checkout',
    );
    t.notRegex(String(packedReport.libav.configuration), /--enable-(gpl|nonfree)/, 'the prebuild libav must be LGPL');
    t.regex(String(packedReport.libav.configuration), /--disable-everything/);

    // 5. The from-source build segments the same clip. 6. Exactly equal.
    if (NO_SOURCE) {
      t.log('ARSEG_PREBUILD_NO_SOURCE=1: no source build here to compare the labels with');
      t.is(packedReport.frames.length, 36);
    } else {
      const sourceLabels = path.join(work, 'labels-source.bin');
      const sourceRun = run(process.execPath, [PROBE, ROOT, CLIP, BUNDLE, sourceLabels], {
        cwd: ROOT,
        env: cleanEnv(),
      });
      const sourceReport = JSON.parse(sourceRun.stdout.trim().split('\n').pop());
      t.deepEqual(
        ownAddons(sourceReport.loaded, ROOT),
        [fs.realpathSync(SOURCE_BUILD)],
        'the repository did not load its source build',
      );
      t.is(packedReport.frames.length, 36);
      t.deepEqual(packedReport.frames, sourceReport.frames);
      const a = fs.readFileSync(packedLabels);
      const b = fs.readFileSync(sourceLabels);
      t.is(a.length, 36 * 192 * 128);
      t.true(a.equals(b), `labels differ: packed ${packedReport.labelsSha256}, source ${sourceReport.labelsSha256}`);
      t.log(
        `labels of ${packedReport.frames.length} frames byte-identical (sha256 ${packedReport.labelsSha256.slice(0, 16)}); ` +
          `prebuild libavcodec ${packedReport.libav.avcodec}, source build libavcodec ${sourceReport.libav.avcodec}`,
      );
    }

    // 7. On a GPU machine: the packed install's CUDA CReFF kernel against its CPU kernel.
    if (packedReport.cuda.available) {
      t.true(packedReport.cuda.maxAbsDiff < 1e-4, `CUDA and CPU CReFF differ by ${packedReport.cuda.maxAbsDiff}`);
      t.log(
        `packed install, CReFF on the GPU (C, H, W, K = ${packedReport.cuda.shape}): max |cuda - cpu| = ${packedReport.cuda.maxAbsDiff}`,
      );
      const dp = packedReport.cuda.devicePath;
      t.true(dp.sameAsOwnLogits, "the GPU's labels are the CPU kernel's labels of the GPU's logits");
      t.true(
        dp.labelsDiffer <= dp.pixels * 1e-3,
        `the device path's labels differ from the CPU path's at ${dp.labelsDiffer} of ${dp.pixels} pixels`,
      );
      t.log(
        `packed install, device path on the GPU: ${dp.labelsDiffer} of ${dp.pixels} labels differ from the CPU path`,
      );
    } else {
      t.log(`no usable GPU here (${packedReport.cuda.reason}): the CUDA-against-CPU check runs where one is`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
