'use strict';
// The CUDA floor check of scripts/prebuild.sh (scripts/prebuild-record.js checkCudaFloor,
// cuda-check): the cubins and PTX an addon embeds, read from its .nv_fatbin section and from
// cuobjdump's listings, against the promise (Turing to Hopper as machine code, PTX for newer
// GPUs), and the CUDA runtime it links against ONNX Runtime's CUDA 12 driver floor (525.60.13).
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { tmpDir } = require('./helpers/fixtures');
const record = require('../scripts/prebuild-record');

const { CUDA_PROMISE, checkCudaFloor, parseCuobjdump, cudaArchs, compareVersions } = record;
const PROMISED = [...CUDA_PROMISE.machineCode, ...CUDA_PROMISE.ptx];
const SOURCE_BUILD = path.join(__dirname, '..', 'build', 'Release', 'ar_seg_native.node');

/**
 * A minimal 64-bit ELF file whose .nv_fatbin section holds one fatbin container with the given
 * entries ({ kind: 1 PTX | 2 cubin, sm }), laid out as nvcc writes them.
 */
function elfWithFatbin(entries) {
  const entryHeader = 64;
  const payload = 16;
  const body = Buffer.alloc(entries.length * (entryHeader + payload));
  entries.forEach(({ kind, sm }, i) => {
    const e = i * (entryHeader + payload);
    body.writeUInt16LE(kind, e);
    body.writeUInt16LE(0x0101, e + 2);
    body.writeUInt32LE(entryHeader, e + 4);
    body.writeBigUInt64LE(BigInt(payload), e + 8);
    body.writeUInt32LE(sm, e + 28);
  });
  const container = Buffer.alloc(16);
  container.writeUInt32LE(0xba55ed50, 0);
  container.writeUInt16LE(1, 4);
  container.writeUInt16LE(16, 6);
  container.writeBigUInt64LE(BigInt(body.length), 8);
  const fatbin = Buffer.concat([container, body]);
  const shstrtab = Buffer.from('\0.nv_fatbin\0.shstrtab\0', 'latin1');
  const fatbinOffset = 64;
  const strOffset = fatbinOffset + fatbin.length;
  const shoff = (strOffset + shstrtab.length + 7) & ~7;
  const file = Buffer.alloc(shoff + 3 * 64);
  file.writeUInt32BE(0x7f454c46, 0);
  file[4] = 2; // 64-bit
  file[5] = 1; // little-endian
  file.writeBigUInt64LE(BigInt(shoff), 0x28);
  file.writeUInt16LE(64, 0x3a);
  file.writeUInt16LE(3, 0x3c);
  file.writeUInt16LE(2, 0x3e);
  fatbin.copy(file, fatbinOffset);
  shstrtab.copy(file, strOffset);
  const header = (i, name, offset, size) => {
    const h = shoff + i * 64;
    file.writeUInt32LE(name, h);
    file.writeBigUInt64LE(BigInt(offset), h + 24);
    file.writeBigUInt64LE(BigInt(size), h + 32);
  };
  header(1, 1, fatbinOffset, fatbin.length);
  header(2, 12, strOffset, shstrtab.length);
  return file;
}

test("the promise is Turing to Hopper as machine code and PTX for newer GPUs, under ONNX Runtime's driver floor", (t) => {
  t.deepEqual(CUDA_PROMISE.machineCode, ['sm_75', 'sm_80', 'sm_86', 'sm_89', 'sm_90']);
  t.deepEqual(CUDA_PROMISE.ptx, ['compute_90']);
  t.is(CUDA_PROMISE.driverFloor, '525.60.13');
  // the CMake architectures build exactly the promise
  const cmake = CUDA_PROMISE.cmakeArchitectures.split(';');
  t.deepEqual(
    cmake.filter((a) => !a.endsWith('-virtual')).map((a) => `sm_${parseInt(a, 10)}`),
    CUDA_PROMISE.machineCode,
  );
  t.deepEqual(
    cmake.filter((a) => !a.endsWith('-real')).map((a) => `compute_${parseInt(a, 10)}`),
    CUDA_PROMISE.ptx,
  );
  t.is(compareVersions('450.80.02', '525.60.13'), -1);
  t.is(compareVersions('580.65.06', '525.60.13'), 1);
  t.is(compareVersions('525.60.13', '525.60.13'), 0);
});

test('the floor check passes a CUDA 11.8 or 12 build with exactly the promised code', (t) => {
  for (const runtimeVersion of [11080, 12040]) {
    t.deepEqual(
      checkCudaFloor({ fatbin: PROMISED, cuobjdump: PROMISED, runtimeVersion, ptxIsa: '7.8' }),
      [],
      `runtime ${runtimeVersion}`,
    );
  }
  // without cuobjdump the fatbin alone decides
  t.deepEqual(checkCudaFloor({ fatbin: PROMISED, cuobjdump: null, runtimeVersion: 11080, ptxIsa: null }), []);
});

test('the floor check fails a CUDA 13 runtime, missing or extra architectures, a disagreeing cuobjdump and too new a PTX', (t) => {
  const cuda13 = checkCudaFloor({ fatbin: PROMISED, cuobjdump: PROMISED, runtimeVersion: 13000, ptxIsa: '9.0' });
  t.is(cuda13.length, 2, cuda13.join('\n'));
  t.regex(cuda13[0], /CUDA 13\.0 runtime, which needs driver >= 580\.65\.06; the promise is 525\.60\.13/);
  t.regex(cuda13[1], /PTX is ISA 9\.0/);
  const noTuring = checkCudaFloor({ fatbin: PROMISED.slice(1), cuobjdump: PROMISED.slice(1), runtimeVersion: 11080 });
  t.is(noTuring.length, 1);
  t.regex(noTuring[0], /\[sm_80 sm_86 sm_89 sm_90 compute_90\], the promise is \[sm_75 /);
  t.is(checkCudaFloor({ fatbin: [...PROMISED, 'sm_100'], cuobjdump: null, runtimeVersion: 11080 }).length, 1);
  t.is(
    checkCudaFloor({ fatbin: PROMISED.filter((a) => !a.startsWith('compute')), cuobjdump: null, runtimeVersion: 11080 })
      .length,
    1,
  );
  const disagree = checkCudaFloor({ fatbin: PROMISED, cuobjdump: ['sm_75'], runtimeVersion: 11080 });
  t.is(disagree.length, 1);
  t.regex(disagree[0], /cuobjdump lists \[sm_75\]/);
  t.regex(checkCudaFloor({ fatbin: PROMISED, runtimeVersion: 0 })[0], /no known driver floor/);
  t.regex(checkCudaFloor({ fatbin: [], runtimeVersion: 11080 })[0], /\[none\]/);
});

test("cuobjdump's listings and the fatbin reader agree on the same code", (t) => {
  const elf =
    'ELF file    1: ar_seg_native.1.sm_75.cubin\nELF file    2: ar_seg_native.2.sm_80.cubin\nELF file    3: ar_seg_native.3.sm_86.cubin\n' +
    'ELF file    4: ar_seg_native.4.sm_89.cubin\nELF file    5: ar_seg_native.5.sm_90.cubin\n';
  const ptx = 'PTX file    1: ar_seg_native.1.sm_90.ptx\n';
  t.deepEqual(parseCuobjdump(elf, ptx), PROMISED);
  t.deepEqual(parseCuobjdump('', ''), []);

  const dir = tmpDir('arseg-floor-');
  try {
    const file = path.join(dir, 'fake.node');
    fs.writeFileSync(
      file,
      elfWithFatbin([
        { kind: 2, sm: 80 },
        { kind: 2, sm: 75 },
        { kind: 1, sm: 90 },
        { kind: 2, sm: 90 },
        { kind: 2, sm: 89 },
        { kind: 2, sm: 86 },
      ]),
    );
    t.deepEqual(cudaArchs(file), PROMISED);
    fs.writeFileSync(file, elfWithFatbin([{ kind: 2, sm: 75 }]));
    t.deepEqual(cudaArchs(file), ['sm_75']);
    fs.writeFileSync(file, Buffer.from('not an ELF file'));
    t.throws(() => cudaArchs(file), { message: /not a 64-bit ELF file/ });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cuda-check on the source build: the floor holds, or exactly the runtime problem of a newer toolkit', (t) => {
  if (!fs.existsSync(SOURCE_BUILD)) {
    t.fail('the from-source build is missing: run `npm run build`');
    return;
  }
  const { addon } = require('../dist/native');
  const build = addon().cudaDriver().build;
  const r = spawnSync(
    process.execPath,
    [path.join(__dirname, '..', 'scripts', 'prebuild-record.js'), 'cuda-check', SOURCE_BUILD],
    { encoding: 'utf8' },
  );
  if (!build.built) {
    // a build without nvcc: no CUDA code at all, which the check refuses
    t.is(r.status, 1, r.stderr);
    t.regex(r.stderr, /\[none\], the promise is/);
    t.log('this source build has no CUDA kernels');
    return;
  }
  const facts = JSON.parse(r.stdout);
  t.log(
    `source build: CUDA ${build.runtime} runtime (toolkit ${build.toolkit}), ${facts.fatbin.join(' ')}, PTX ISA ${facts.ptxIsa}`,
  );
  t.is(facts.runtimeVersion, build.runtimeVersion);
  if (facts.cuobjdump) t.deepEqual(facts.cuobjdump, facts.fatbin);
  if (Math.floor(build.runtimeVersion / 1000) <= 12) {
    t.is(r.status, 0, r.stderr);
    t.deepEqual(facts.fatbin, PROMISED);
  } else {
    t.is(r.status, 1);
    t.regex(r.stderr, /needs driver >= 580\.65\.06; the promise is 525\.60\.13/);
  }
});
