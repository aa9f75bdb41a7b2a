'use strict';
// The committed linux-x64 prebuild must have been built from the native sources in the tree:
// prebuilds/linux-x64/BUILD.json records their hash (scripts/prebuild-record.js).
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { RECORD, readRecord, sourceHash, staleness } = require('../scripts/prebuild-record');

test('the linux-x64 prebuild was built from the current native sources', (t) => {
  const why = staleness();
  t.is(
    why,
    null,
    `prebuilds/linux-x64 is stale: ${why}.\nRebuild it with \`npm run build:prebuild\` and commit prebuilds/linux-x64/ (batch native changes: it takes minutes).`,
  );
});

test('the build record names what the prebuild contains', (t) => {
  t.true(fs.existsSync(RECORD), 'prebuilds/linux-x64/BUILD.json is missing: run `npm run build:prebuild`');
  const r = readRecord();
  t.regex(r.file, /^node\.napi\.glibc\.node$/);
  t.regex(r.glibc, /^2\.\d+$/);
  t.regex(r.ffmpeg.version, /^\d+:\d/);
  t.false(
    r.ffmpeg.configure.some((f) => /--enable-(gpl|nonfree|version3)/.test(f)),
    'the prebuild libav must be LGPL 2.1+',
  );
  t.true(r.ffmpeg.configure.includes('--disable-everything'));
  t.false(
    r.sharedLibraries.some((l) => /^lib(av|sw|postproc)|libstdc\+\+/.test(l)),
    r.sharedLibraries.join(' '),
  );
  const covered = sourceHash().files;
  t.true(covered.includes('CMakeLists.txt') && covered.includes('native/addon/addon.cc'));
  t.true(covered.every((f) => fs.existsSync(path.join(__dirname, '..', f))));
});

test("the committed prebuild's CUDA keeps ONNX Runtime's driver floor: promised code, a runtime for drivers >= 525", (t) => {
  const { CUDA_PROMISE, RUNTIME_DRIVER_FLOOR, compareVersions } = require('../scripts/prebuild-record');
  const r = readRecord();
  t.truthy(r.cuda, 'the prebuild has no CUDA kernels (built with ARSEG_PREBUILD_CUDA=0?)');
  if (!r.cuda) return;
  t.deepEqual(r.cuda.machineCode, CUDA_PROMISE.machineCode);
  t.deepEqual(r.cuda.ptx, CUDA_PROMISE.ptx);
  t.regex(
    String(r.cuda.runtime),
    /^\d+\.\d+$/,
    'BUILD.json must record the CUDA runtime linked in (rebuild: npm run build:prebuild)',
  );
  const floor = RUNTIME_DRIVER_FLOOR[parseInt(r.cuda.runtime, 10)];
  t.is(r.cuda.driverFloor, floor);
  t.true(
    floor !== undefined && compareVersions(floor, CUDA_PROMISE.driverFloor) <= 0,
    `the prebuild links the CUDA ${r.cuda.runtime} runtime (driver >= ${floor}), above ONNX Runtime's ${CUDA_PROMISE.driverFloor}`,
  );
});
