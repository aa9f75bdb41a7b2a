#!/usr/bin/env node
// The prebuild's build record, prebuilds/linux-x64/BUILD.json: what the committed binary was
// built from. scripts/prebuild.sh writes it (`write`, facts passed in ARSEG_PREBUILD_* variables);
// test/prebuild-fresh.test.js and `node scripts/prebuild-record.js check` compare the hash of
// the sources in the working tree with it.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const RECORD = path.join(ROOT, 'prebuilds', 'linux-x64', 'BUILD.json');

/** What the prebuild is made from: every file under these directories, and these files. */
const SOURCE_DIRS = ['native', 'patches'];
const SOURCE_FILES = ['CMakeLists.txt', 'scripts/prebuild.sh', 'scripts/build-libav.sh', 'scripts/prebuild-record.js'];

function walk(rel, out) {
  for (const entry of fs.readdirSync(path.join(ROOT, rel), { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue; // editor and OS droppings, not sources
    const child = `${rel}/${entry.name}`;
    if (entry.isDirectory()) walk(child, out);
    else if (entry.isFile()) out.push(child);
  }
  return out;
}

/** The source files, repository-relative with '/', sorted. */
function sourceFiles() {
  const files = [...SOURCE_FILES];
  for (const dir of SOURCE_DIRS) walk(dir, files);
  return files.sort();
}

function sha256(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/**
 * One hash over the sources: sha256 of the lines "<sha256 of the file> <path>", sorted by path
 * (the format of `sha256sum`, so it can be checked by hand). Paths and contents both count.
 */
function sourceHash() {
  const files = sourceFiles();
  const each = Object.fromEntries(files.map((f) => [f, sha256(fs.readFileSync(path.join(ROOT, f)))]));
  const lines = files.map((f) => `${each[f]}  ${f}\n`);
  return { sha256: sha256(lines.join('')), files, each };
}

/**
 * The CUDA code embedded in an ELF shared object: the entries of its .nv_fatbin section (fatbin
 * containers: magic 0xBA55ED50, u16 version, u16 header size, u64 payload size; each entry a
 * u16 kind, 1 PTX or 2 machine code, u32 header size at 4, u64 payload size at 8 and the u32
 * SM number at 28). Returns e.g. ['sm_75', ..., 'compute_90'], or [] without CUDA code.
 */
function cudaArchs(file) {
  const d = fs.readFileSync(file);
  if (d.readUInt32BE(0) !== 0x7f454c46 || d[4] !== 2) throw new Error(`${file}: not a 64-bit ELF file`);
  const shoff = Number(d.readBigUInt64LE(0x28));
  const shentsize = d.readUInt16LE(0x3a);
  const shnum = d.readUInt16LE(0x3c);
  const shstrndx = d.readUInt16LE(0x3e);
  const section = (i) => {
    const h = shoff + i * shentsize;
    return {
      name: d.readUInt32LE(h),
      offset: Number(d.readBigUInt64LE(h + 24)),
      size: Number(d.readBigUInt64LE(h + 32)),
    };
  };
  const strtab = section(shstrndx);
  const nameOf = (s) => {
    const start = strtab.offset + s.name;
    return d.toString('latin1', start, d.indexOf(0, start));
  };
  const sm = new Set();
  const ptx = new Set();
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (nameOf(s) !== '.nv_fatbin') continue;
    let p = s.offset;
    const end = s.offset + s.size;
    while (p + 16 <= end && d.readUInt32LE(p) === 0xba55ed50) {
      let e = p + d.readUInt16LE(p + 6);
      const containerEnd = e + Number(d.readBigUInt64LE(p + 8));
      while (e < containerEnd) {
        const kind = d.readUInt16LE(e);
        const arch = d.readUInt32LE(e + 28);
        if (kind === 1) ptx.add(arch);
        else if (kind === 2) sm.add(arch);
        e += d.readUInt32LE(e + 4) + Number(d.readBigUInt64LE(e + 8));
      }
      p = (containerEnd + 7) & ~7;
    }
  }
  const sorted = (set) => [...set].sort((a, b) => a - b);
  return [...sorted(sm).map((a) => `sm_${a}`), ...sorted(ptx).map((a) => `compute_${a}`)];
}

/**
 * The CUDA floor the prebuild promises (README, "Prebuilt install"): machine code for Turing to
 * Hopper, PTX of the newest for later GPUs (compiled by the driver), and a runtime that runs
 * wherever ONNX Runtime's CUDA 12 provider runs (driver >= 525.60.13).
 */
const CUDA_PROMISE = {
  machineCode: ['sm_75', 'sm_80', 'sm_86', 'sm_89', 'sm_90'],
  ptx: ['compute_90'],
  /** CMAKE_CUDA_ARCHITECTURES that builds exactly that. */
  cmakeArchitectures: '75-real;80-real;86-real;89-real;90',
  /** The driver ONNX Runtime's CUDA 12 provider needs; the kernel's runtime must not need more. */
  driverFloor: '525.60.13',
};

/** The first driver of each CUDA major version (minor-version compatibility: it runs them all). */
const RUNTIME_DRIVER_FLOOR = { 11: '450.80.02', 12: '525.60.13', 13: '580.65.06' };

function compareVersions(a, b) {
  const pa = String(a).split('.').map(Number);
  const pb = String(b).split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] || 0) - (pb[i] || 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

/**
 * cuobjdump --list-elf / --list-ptx output -> ['sm_75', ..., 'compute_90'] ("ELF file 1:
 * x.1.sm_75.cubin", "PTX file 1: x.1.sm_90.ptx").
 */
function parseCuobjdump(elfList, ptxList) {
  const sm = new Set();
  const ptx = new Set();
  for (const m of String(elfList || '').matchAll(/^ELF file\s+\d+:\s+\S*?\.sm_(\d+)[a-z]?\.cubin\s*$/gm))
    sm.add(Number(m[1]));
  for (const m of String(ptxList || '').matchAll(/^PTX file\s+\d+:\s+\S*?\.sm_(\d+)[a-z]?\.ptx\s*$/gm))
    ptx.add(Number(m[1]));
  const sorted = (set) => [...set].sort((a, b) => a - b);
  return [...sorted(sm).map((a) => `sm_${a}`), ...sorted(ptx).map((a) => `compute_${a}`)];
}

/**
 * The floor check: the CUDA code embedded in the addon against the promise. facts: {
 *   fatbin: archs read from the .nv_fatbin section (cudaArchs), cuobjdump: archs cuobjdump lists
 *   (parseCuobjdump; null when cuobjdump is missing), runtimeVersion: CUDART_VERSION the addon
 *   reports (e.g. 11080), ptxIsa: the PTX's .version (e.g. '7.8') }.
 * Returns the problems (empty: the promise holds).
 */
function checkCudaFloor(facts, promise = CUDA_PROMISE) {
  const problems = [];
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const fatbin = facts.fatbin || [];
  const expected = [...promise.machineCode, ...promise.ptx];
  if (!same(fatbin, expected))
    problems.push(`the addon's CUDA code is [${fatbin.join(' ') || 'none'}], the promise is [${expected.join(' ')}]`);
  if (facts.cuobjdump && !same(facts.cuobjdump, fatbin))
    problems.push(`cuobjdump lists [${facts.cuobjdump.join(' ')}] but the fatbin holds [${fatbin.join(' ')}]`);
  const major = Math.floor((facts.runtimeVersion || 0) / 1000);
  const needs = RUNTIME_DRIVER_FLOOR[major];
  if (!needs) problems.push(`the addon links CUDA runtime ${facts.runtimeVersion || 'unknown'}: no known driver floor`);
  else if (compareVersions(needs, promise.driverFloor) > 0)
    problems.push(
      `the addon links the CUDA ${major}.${Math.floor((facts.runtimeVersion % 1000) / 10)} runtime, which needs driver >= ${needs}; ` +
        `the promise is ${promise.driverFloor} (ONNX Runtime's CUDA 12 provider): build with CUDA 11.8 or 12 (Debian 12: nvidia-cuda-toolkit)`,
    );
  // The PTX is compiled by the driver: its ISA must be one a driver at the floor knows (CUDA 12.0
  // drivers know PTX ISA up to 8.0).
  if (facts.ptxIsa && compareVersions(facts.ptxIsa, '8.0') > 0)
    problems.push(
      `the PTX is ISA ${facts.ptxIsa}, newer than what a driver at ${promise.driverFloor} can compile (8.0)`,
    );
  return problems;
}

function readRecord() {
  return JSON.parse(fs.readFileSync(RECORD, 'utf8'));
}

function lines(value) {
  return String(value || '')
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
}

function tool(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')[0]
      .trim();
  } catch {
    return null;
  }
}

function write() {
  const env = process.env;
  const file = env.ARSEG_PREBUILD_FILE;
  if (!file || !fs.existsSync(file)) throw new Error('prebuild-record: ARSEG_PREBUILD_FILE names no file');
  const binary = fs.readFileSync(file);
  const { sha256: hash, files, each } = sourceHash();
  const archs = lines((env.ARSEG_PREBUILD_CUDA_ARCHS || '').replace(/\s+/g, '\n'));
  const osRelease = fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '';
  const record = {
    file: path.basename(file),
    size: binary.length,
    sha256: sha256(binary),
    sources: {
      sha256: hash,
      covers: [...SOURCE_DIRS.map((d) => `${d}/**`), ...SOURCE_FILES],
      rebuild: 'npm run build:prebuild',
      files: each,
    },
    napi: 8,
    node: '>= 20 (N-API 8; one file serves every Node.js version)',
    glibc: env.ARSEG_PREBUILD_GLIBC,
    libstdcxx: 'static (symbols local to the addon)',
    ffmpeg: {
      source: 'Debian source package ffmpeg (apt-get source)',
      version: env.ARSEG_PREBUILD_FFMPEG_VERSION,
      licence: 'LGPL-2.1-or-later (no --enable-gpl, no --enable-nonfree)',
      linked: 'static: libavformat, libavcodec, libavutil, libswscale',
      patches: lines(env.ARSEG_PREBUILD_PATCHES).map((p) => `patches/ffmpeg/${p}`),
      configure: lines(env.ARSEG_PREBUILD_FLAGS),
      configHEdits: lines(env.ARSEG_PREBUILD_CONFIG_EDITS),
    },
    cuda: archs.length
      ? {
          toolkit: env.ARSEG_PREBUILD_CUDA_VERSION || null,
          runtime: env.ARSEG_PREBUILD_CUDA_RUNTIME || null,
          linked: 'static (libcudart_static); needs only the NVIDIA driver, loads without one',
          driverFloor: env.ARSEG_PREBUILD_CUDA_DRIVER_FLOOR || null,
          onnxRuntimeDriverFloor: CUDA_PROMISE.driverFloor,
          machineCode: archs.filter((a) => a.startsWith('sm_')),
          ptx: archs.filter((a) => a.startsWith('compute_')),
          ptxIsa: env.ARSEG_PREBUILD_CUDA_PTX_ISA || null,
          hostCompiler: env.ARSEG_PREBUILD_CUDA_HOST_COMPILER || null,
        }
      : null,
    sharedLibraries: lines(env.ARSEG_PREBUILD_LDD).map((l) => l.split(/\s+/)[0]),
    builtWith: {
      os: (/^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease) || [])[1] || os.type(),
      compiler: tool('c++', ['--version']),
      cmake: tool('cmake', ['--version']),
      node: process.version,
    },
    built: new Date().toISOString(),
  };
  fs.writeFileSync(RECORD, JSON.stringify(record, null, 2) + '\n');
  console.error(`prebuild: wrote ${path.relative(ROOT, RECORD)} (sources ${hash.slice(0, 12)}, ${files.length} files)`);
}

/** null when the record matches the working tree, else why not. */
function staleness() {
  if (!fs.existsSync(RECORD)) return `${path.relative(ROOT, RECORD)} is missing`;
  const record = readRecord();
  const binary = path.join(path.dirname(RECORD), record.file);
  if (!fs.existsSync(binary)) return `${record.file} is missing from prebuilds/linux-x64`;
  if (sha256(fs.readFileSync(binary)) !== record.sha256) return `${record.file} is not the binary BUILD.json records`;
  const now = sourceHash();
  if (now.sha256 === record.sources.sha256) return null;
  const then = record.sources.files && typeof record.sources.files === 'object' ? record.sources.files : null;
  const changed = !then
    ? []
    : [
        ...now.files.filter((f) => !(f in then)).map((f) => `${f} (new)`),
        ...Object.keys(then)
          .filter((f) => !(f in now.each))
          .map((f) => `${f} (removed)`),
        ...now.files.filter((f) => f in then && then[f] !== now.each[f]),
      ];
  return (
    `the native sources or build files changed since the prebuild was built (${record.built}): ` +
    (changed.length
      ? changed.join(', ')
      : `sources hash ${now.sha256.slice(0, 12)}, the prebuild's ${record.sources.sha256.slice(0, 12)}`)
  );
}

/**
 * `cuda-check FILE`: the floor check on a built addon, printing its facts as JSON (for BUILD.json)
 * and exiting 1 with the problems when the promise does not hold.
 */
function cudaCheck(file) {
  const fatbin = cudaArchs(file);
  let cuobjdump = null;
  let ptxIsa = null;
  const run = (args) =>
    execFileSync('cuobjdump', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20 });
  try {
    cuobjdump = parseCuobjdump(run(['--list-elf', file]), run(['--list-ptx', file]));
    const isa = /^\s*\.version\s+(\d+\.\d+)/m.exec(run(['--dump-ptx', file]));
    ptxIsa = isa ? isa[1] : null;
  } catch (err) {
    if (err.code !== 'ENOENT') throw new Error(`cuobjdump failed on ${file}: ${err.message}`);
  }
  // The runtime the addon links, as the addon itself reports it (CUDART_VERSION of its build).
  const build = require(path.resolve(file)).cudaDriver().build;
  const facts = {
    fatbin,
    cuobjdump,
    runtimeVersion: build.runtimeVersion,
    ptxIsa,
    toolkit: build.toolkit,
    driverFloor: build.driverFloor,
    runtime: build.runtime,
  };
  return { facts, problems: checkCudaFloor(facts) };
}

module.exports = {
  ROOT,
  RECORD,
  CUDA_PROMISE,
  RUNTIME_DRIVER_FLOOR,
  sourceFiles,
  sourceHash,
  readRecord,
  staleness,
  cudaArchs,
  parseCuobjdump,
  checkCudaFloor,
  compareVersions,
};

if (require.main === module) {
  const cmd = process.argv[2];
  if (cmd === 'write') {
    write();
  } else if (cmd === 'check') {
    const why = staleness();
    if (why) {
      console.error(`prebuild is stale: ${why}. Rebuild it: npm run build:prebuild`);
      process.exit(1);
    }
    console.error('prebuild is up to date with the sources');
  } else if (cmd === 'cuda-archs') {
    console.log(cudaArchs(process.argv[3]).join(' '));
  } else if (cmd === 'cuda-architectures') {
    console.log(CUDA_PROMISE.cmakeArchitectures);
  } else if (cmd === 'cuda-check') {
    const { facts, problems } = cudaCheck(process.argv[3]);
    console.log(JSON.stringify(facts));
    if (problems.length) {
      for (const p of problems) console.error(`prebuild: CUDA floor: ${p}`);
      process.exit(1);
    }
  } else if (cmd === 'hash') {
    console.log(sourceHash().sha256);
  } else {
    console.error(
      'usage: prebuild-record.js write | check | hash | cuda-archs FILE | cuda-architectures | cuda-check FILE',
    );
    process.exit(2);
  }
}
