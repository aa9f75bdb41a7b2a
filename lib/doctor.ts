/**
 * `ar-seg doctor`: what this installation is and whether each device can run, in words a user
 * can act on. Facts come from the addon (the file loaded, its build, the CPU's vector level, the
 * libav inside it, the NVIDIA driver asked through libcuda.so.1), from ONNX Runtime (its
 * version, its CUDA provider's files) and from the dynamic loader (whether the CUDA 12 runtime
 * and cuDNN 9 that the provider needs can be loaded). `cudaVerdict` turns the facts into the
 * first reason `device: 'cuda'` cannot run and its fix; it is pure, so every reason is tested.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { addon, NativeAddon, NativeCudaBuild, NativeDriverFacts } from './native';

/** The driver ONNX Runtime's CUDA 12 provider needs (CUDA 12 minor-version compatibility). */
export const ONNX_RUNTIME_DRIVER_FLOOR = '525.60.13';

/** The shared libraries ONNX Runtime's CUDA 12 provider loads (its DT_NEEDED entries). */
export const ONNX_RUNTIME_CUDA_LIBRARIES = [
  'libcudart.so.12',
  'libcublas.so.12',
  'libcublasLt.so.12',
  'libcufft.so.11',
  'libcudnn.so.9',
];

const INSTALL_PROVIDER =
  'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node (downloads the provider from NuGet)';

/** One check of a device's verdict. */
export interface DoctorCheck {
  /** What is checked, e.g. 'ONNX Runtime's CUDA provider'. */
  name: string;
  /** Whether it passed. */
  ok: boolean;
  /** What was found. */
  detail: string;
  /** What to do when not ok ('' when ok). */
  fix: string;
}

/** Whether a device can run here, and if not, why and what to do. */
export interface DeviceVerdict {
  /** Whether the device can run. */
  usable: boolean;
  /** The first failed check's detail ('' when usable). */
  reason: string;
  /** Its fix ('' when usable). */
  fix: string;
  /** Every check, in the order a user fixes them. */
  checks: DoctorCheck[];
}

/** The addon file loaded and what it was built from. */
export interface DoctorAddon {
  /** Whether it loaded. */
  loaded: boolean;
  /** Why not, when it did not. */
  error: string | null;
  /** The .node file node-gyp-build resolves to. */
  file: string | null;
  /** 'prebuild' (prebuilds/, the packaged binary) or 'source build' (build/Release). */
  kind: 'prebuild' | 'source build' | null;
  /** A prebuild's BUILD.json (what it was built from, without the per-file hashes), else null. */
  buildRecord: Record<string, unknown> | null;
}

/** The CPU and the vector code the kernels run. */
export interface DoctorCpu {
  /** The CPU's model name. */
  model: string;
  /** Hardware threads. */
  cores: number;
  /** The vector code the native kernels run: 'avx512', 'avx2' or 'baseline'. */
  simd: string | null;
  /** ARSEG_SIMD, when it caps that. */
  simdCap: string | null;
  /** The CPU's flags that matter here (avx512f, avx2, fma...). */
  flags: string[];
}

/** The libav inside or beside the addon. */
export interface DoctorLibav {
  /** libavcodec's version. */
  avcodec: string | null;
  /** libavformat's version. */
  avformat: string | null;
  /** true: linked into the addon (the prebuild's static LGPL build); false: the system's shared libraries. */
  bundled: boolean | null;
  /** How it was configured: 'GPL' (--enable-gpl) or 'LGPL'. */
  licence: 'LGPL' | 'GPL' | null;
}

/** The NVIDIA driver and its GPUs. */
export interface DoctorGpu {
  /** What libcuda.so.1 says (null when the addon cannot ask). */
  driver: NativeDriverFacts | null;
  /** `nvidia-smi --query-gpu` lines, or null without nvidia-smi. */
  nvidiaSmi: string[] | null;
}

/** A shared library and whether it loads here. */
export interface DoctorLibrary {
  /** Its soname, e.g. 'libcudnn.so.9'. */
  name: string;
  /** Whether the dynamic loader loads it (with its dependencies). */
  loaded: boolean;
  /** The loader's error when not. */
  error: string;
}

/** ONNX Runtime (onnxruntime-node) and what its CUDA provider needs. */
export interface DoctorOnnxRuntime {
  /** onnxruntime-node's version. */
  version: string | null;
  /** Its backends ('cuda (separate download)' when the provider is not bundled). */
  backends: string[];
  /** The CUDA provider's library, whether it is installed and whether it loads. */
  cudaProvider: {
    /** Where it would be. */
    file: string | null;
    /** Whether it is there. */
    installed: boolean;
    /** Whether it loads with its dependencies. */
    loads: boolean;
    /** The loader's error when not. */
    error: string;
  };
  /** The CUDA 12 runtime, cuBLAS, cuFFT and cuDNN 9 libraries the provider loads. */
  libraries: DoctorLibrary[];
}

/** What `ar-seg doctor` reports (its --json output, with `ok` and `device` added). */
export interface DoctorReport {
  /** This package's name and version. */
  package: {
    /** 'ar-seg-native'. */
    name: string;
    /** Its version. */
    version: string;
  };
  /** The Node.js running it. */
  node: {
    /** process.version. */
    version: string;
    /** process.platform. */
    platform: string;
    /** process.arch. */
    arch: string;
    /** The C library's version (glibc), when Node.js reports it. */
    glibc: string | null;
  };
  /** The addon. */
  addon: DoctorAddon;
  /** The CPU. */
  cpu: DoctorCpu;
  /** libav. */
  libav: DoctorLibav;
  /** The NVIDIA driver and GPUs. */
  gpu: DoctorGpu;
  /** The CUDA the addon's kernels were built with and the driver they need (null when the addon cannot say). */
  cudaKernels: NativeCudaBuild | null;
  /** ONNX Runtime. */
  onnxRuntime: DoctorOnnxRuntime;
  /** The verdict per device. */
  devices: {
    /** device 'cpu'. */
    cpu: DeviceVerdict;
    /** device 'cuda'. */
    cuda: DeviceVerdict;
  };
}

/** The facts cudaVerdict judges (a subset of the report, so that tests can make them up). */
export interface CudaFacts {
  /** Whether the addon loaded. */
  addonLoaded: boolean;
  /** Why not. */
  addonError: string | null;
  /** The native diagnosis (driver, its version against the kernels' runtime, a GPU, the build, the architecture). */
  kernels: {
    /** It can run. */
    ok: boolean;
    /** Why not. */
    reason: string;
    /** The fix. */
    fix: string;
  } | null;
  /** The driver's version (when there is a driver). */
  driver: {
    /** The release, e.g. '535.129.03'. */
    version: string;
    /** cuDriverGetVersion, e.g. 12020. */
    cudaVersion: number;
  } | null;
  /** Whether ONNX Runtime's CUDA provider is installed. */
  providerInstalled: boolean;
  /** Where it would be. */
  providerFile: string | null;
  /** The libraries the provider needs. */
  libraries: DoctorLibrary[];
}

function cudaVersionString(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** The checks for device 'cuda', in the order a user fixes them; the first failure is the reason. */
export function cudaVerdict(f: CudaFacts): DeviceVerdict {
  const checks: DoctorCheck[] = [];
  const add = (name: string, ok: boolean, detail: string, fix: string) =>
    checks.push({ name, ok, detail, fix: ok ? '' : fix });
  add(
    'the native addon',
    f.addonLoaded,
    f.addonLoaded ? 'loaded' : `not loaded: ${f.addonError}`,
    'reinstall ar-seg-native (`npm rebuild ar-seg-native`)',
  );
  if (f.kernels)
    add(
      'the CUDA kernels (driver, GPU, build)',
      f.kernels.ok,
      f.kernels.ok ? 'can run' : f.kernels.reason,
      f.kernels.fix,
    );
  if (f.driver && f.driver.cudaVersion) {
    const named = f.driver.version ? `driver ${f.driver.version}` : 'the NVIDIA driver';
    const ok = f.driver.cudaVersion >= 12000;
    add(
      "the driver for ONNX Runtime's CUDA 12 provider",
      ok,
      ok
        ? `${named} (CUDA ${cudaVersionString(f.driver.cudaVersion)})`
        : `${named} (CUDA ${cudaVersionString(f.driver.cudaVersion)}) is older than ${ONNX_RUNTIME_DRIVER_FLOOR}, needed by ONNX Runtime's CUDA 12 provider`,
      `upgrade the NVIDIA driver to ${ONNX_RUNTIME_DRIVER_FLOOR} or newer`,
    );
  }
  add(
    "ONNX Runtime's CUDA provider",
    f.providerInstalled,
    f.providerInstalled
      ? `installed (${f.providerFile})`
      : `ONNX Runtime's CUDA provider is not installed (no ${f.providerFile ?? 'libonnxruntime_providers_cuda.so'})`,
    `install it: ${INSTALL_PROVIDER}`,
  );
  for (const lib of f.libraries) {
    const cudnn = lib.name.startsWith('libcudnn');
    add(
      lib.name,
      lib.loaded,
      lib.loaded ? 'loads' : `${lib.name} cannot be loaded (${lib.error})`,
      cudnn
        ? "install cuDNN 9 for CUDA 12 (e.g. NVIDIA's apt repository: libcudnn9-cuda-12) and make it findable (ldconfig or LD_LIBRARY_PATH)"
        : "install the CUDA 12 runtime libraries (e.g. NVIDIA's apt repository: cuda-libraries-12-x, or the nvidia-*-cu12 wheels) and make them findable (ldconfig or LD_LIBRARY_PATH)",
    );
  }
  const first = checks.find((c) => !c.ok);
  return { usable: !first, reason: first ? first.detail : '', fix: first ? first.fix : '', checks };
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/** The onnxruntime-node directory holding its native binding (and, when installed, the CUDA provider). */
function onnxRuntimeBinDir(): string | null {
  return safe(() => {
    const root = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const bin = path.join(root, 'bin');
    for (const napi of fs.readdirSync(bin).sort().reverse()) {
      const dir = path.join(bin, napi, process.platform, process.arch);
      if (fs.existsSync(dir)) return dir;
    }
    return null;
  }, null);
}

/** Whether ONNX Runtime's CUDA provider library is installed next to onnxruntime-node's binding. */
export function onnxRuntimeCudaProvider(): { file: string | null; installed: boolean } {
  const dir = onnxRuntimeBinDir();
  const file = dir ? path.join(dir, 'libonnxruntime_providers_cuda.so') : null;
  return { file, installed: file !== null && fs.existsSync(file) };
}

function cpuFlags(): string[] {
  const info = safe(() => fs.readFileSync('/proc/cpuinfo', 'utf8'), '');
  const line = /^flags\s*:\s*(.*)$/m.exec(info);
  const flags = new Set(line ? line[1].split(/\s+/) : []);
  return ['avx512f', 'avx512bw', 'avx512vl', 'avx2', 'fma', 'sse4_2'].filter((f) => flags.has(f));
}

function nvidiaSmi(): string[] | null {
  return safe(() => {
    const out = execFileSync(
      'nvidia-smi',
      ['--query-gpu=index,name,driver_version,memory.total,compute_cap', '--format=csv,noheader'],
      {
        encoding: 'utf8',
        timeout: 15000,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }, null);
}

/** Whether a shared library is mapped into this process (the system's libav, for instance). */
function mapped(pattern: RegExp): boolean {
  return safe(() => pattern.test(fs.readFileSync('/proc/self/maps', 'utf8')), false);
}

/** Gathers the report. Never throws: what cannot be found is reported as such. */
export function doctor(): DoctorReport {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  const header = safe(
    () => (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }).header,
    undefined,
  );

  let native: NativeAddon | null = null;
  let addonError: string | null = null;
  try {
    native = addon();
  } catch (err) {
    addonError = (err as Error).message;
  }
  const file = safe(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- node-gyp-build has no ES export
    const load = require('node-gyp-build') as { resolve(dir: string): string };
    return load.resolve(path.join(__dirname, '..'));
  }, null);
  const kind = file === null ? null : file.split(path.sep).includes('prebuilds') ? 'prebuild' : 'source build';
  const recordFile = file && kind === 'prebuild' ? path.join(path.dirname(file), 'BUILD.json') : null;
  const record = recordFile
    ? safe(() => JSON.parse(fs.readFileSync(recordFile, 'utf8')) as Record<string, unknown>, null)
    : null;
  let buildRecord: Record<string, unknown> | null = null;
  if (record) {
    // the facts, without the per-file source hashes
    const { sources, ...rest } = record as { sources?: { sha256?: string } } & Record<string, unknown>;
    buildRecord = { ...rest, sourcesSha256: sources?.sha256 ?? null };
  }

  // (an addon older than this package lacks cudaDriver and canLoadLibrary: reported as unknown)
  const cuda = native && typeof native.cudaDriver === 'function' ? safe(() => native.cudaDriver(), null) : null;
  const canLoad = (name: string) =>
    native && typeof native.canLoadLibrary === 'function'
      ? native.canLoadLibrary(name)
      : { loaded: false, error: 'unknown: the addon cannot tell (a build older than this package)' };
  const libav = native?.libav ?? null;
  const configuration = libav ? String(libav.configuration ?? '') : '';
  const ortVersion = safe(
    () =>
      (JSON.parse(fs.readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string })
        .version,
    null,
  );
  const backends = safe(
    () => ort.listSupportedBackends().map((b) => (b.bundled ? b.name : `${b.name} (separate download)`)),
    [] as string[],
  );
  const provider = onnxRuntimeCudaProvider();
  const providerLoad = provider.installed ? canLoad(provider.file!) : { loaded: false, error: 'not installed' };
  const libraries = ONNX_RUNTIME_CUDA_LIBRARIES.map((name) => ({ name, ...canLoad(name) }));

  const cpuVerdictChecks: DoctorCheck[] = [
    {
      name: 'the native addon',
      ok: native !== null,
      detail: native ? `loaded (${kind}: ${file})` : `not loaded: ${addonError}`,
      fix: native ? '' : 'reinstall ar-seg-native (`npm rebuild ar-seg-native`)',
    },
    {
      name: 'ONNX Runtime',
      ok: ortVersion !== null && backends.length > 0,
      detail: ortVersion ? `onnxruntime-node ${ortVersion}` : 'onnxruntime-node cannot be loaded',
      fix: ortVersion ? '' : 'reinstall onnxruntime-node (`npm rebuild onnxruntime-node`)',
    },
  ];
  const cpuFirst = cpuVerdictChecks.find((c) => !c.ok);

  return {
    package: { name: pkg.name, version: pkg.version },
    node: {
      version: process.version,
      platform: process.platform,
      arch: process.arch,
      glibc: header?.glibcVersionRuntime ?? null,
    },
    addon: { loaded: native !== null, error: addonError, file, kind, buildRecord },
    cpu: {
      model: safe(() => os.cpus()[0].model, 'unknown'),
      cores: safe(() => os.cpus().length, 0),
      simd: native ? safe(() => native.simdLevel(), null) : null,
      simdCap: process.env.ARSEG_SIMD || null,
      flags: cpuFlags(),
    },
    libav: {
      avcodec: libav ? String(libav.avcodec) : null,
      avformat: libav ? String(libav.avformat) : null,
      bundled: libav ? !mapped(/libavcodec\.so/) : null,
      licence: libav ? (/--enable-gpl/.test(configuration) ? 'GPL' : 'LGPL') : null,
    },
    gpu: { driver: cuda ? cuda.driver : null, nvidiaSmi: nvidiaSmi() },
    cudaKernels: cuda ? cuda.build : null,
    onnxRuntime: {
      version: ortVersion,
      backends,
      cudaProvider: { ...provider, loads: providerLoad.loaded, error: providerLoad.error },
      libraries,
    },
    devices: {
      cpu: { usable: !cpuFirst, reason: cpuFirst?.detail ?? '', fix: cpuFirst?.fix ?? '', checks: cpuVerdictChecks },
      cuda: cudaVerdict({
        addonLoaded: native !== null,
        addonError,
        kernels: cuda
          ? cuda.diagnosis
          : native
            ? safe(() => {
                const st = native.cudaStatus();
                return { ok: st.available, reason: st.reason, fix: st.fix ?? '' };
              }, null)
            : null,
        // the driver's version matters once there is a driver: its library and its kernel module
        driver:
          cuda && cuda.driver.library && (cuda.driver.kernelModule || cuda.driver.initResult === 0)
            ? { version: cuda.driver.version, cudaVersion: cuda.driver.cudaVersion }
            : null,
        providerInstalled: provider.installed,
        providerFile: provider.file,
        libraries,
      }),
    },
  };
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/** The report as text for a terminal. */
export function formatDoctor(r: DoctorReport): string {
  const out: string[] = [];
  const mark = (ok: boolean) => (ok ? 'ok  ' : 'FAIL');
  out.push(
    `${r.package.name} ${r.package.version} on Node.js ${r.node.version} (${r.node.platform}-${r.node.arch}${r.node.glibc ? `, glibc ${r.node.glibc}` : ''})`,
  );
  out.push('');
  out.push(`addon:        ${r.addon.loaded ? `${r.addon.kind}, ${r.addon.file}` : `NOT LOADED: ${r.addon.error}`}`);
  const rec = r.addon.buildRecord as {
    built?: string;
    glibc?: string;
    ffmpeg?: { version?: string };
    cuda?: { runtime?: string; driverFloor?: string } | null;
  } | null;
  if (rec)
    out.push(
      `              built ${rec.built ?? '?'}; glibc >= ${rec.glibc ?? '?'}; ffmpeg ${rec.ffmpeg?.version ?? '?'}; ` +
        (rec.cuda
          ? `CUDA ${rec.cuda.runtime ?? '?'} runtime (driver >= ${rec.cuda.driverFloor ?? '?'})`
          : 'no CUDA kernels'),
    );
  out.push(
    `CPU:          ${r.cpu.model}, ${r.cpu.cores} threads; kernels use ${r.cpu.simd ?? '?'}${r.cpu.simdCap ? ` (capped by ARSEG_SIMD=${r.cpu.simdCap})` : ''}; flags: ${r.cpu.flags.join(' ') || 'none of avx512/avx2/fma'}`,
  );
  out.push(
    `libav:        libavcodec ${r.libav.avcodec ?? '?'}, libavformat ${r.libav.avformat ?? '?'}; ${r.libav.bundled === null ? '?' : r.libav.bundled ? 'bundled (inside the addon)' : "the system's shared libraries"}; ${r.libav.licence ?? '?'}`,
  );
  const d = r.gpu.driver;
  if (!d)
    out.push(
      `NVIDIA driver: unknown (${r.addon.loaded ? 'this addon cannot tell: a build older than this package' : 'the addon is not loaded'})`,
    );
  else if (!d.library) out.push(`NVIDIA driver: none (libcuda.so.1: ${d.libraryError})`);
  else {
    out.push(
      `NVIDIA driver: ${d.version || 'version unknown'}${d.cudaVersion ? ` (CUDA ${cudaVersionString(d.cudaVersion)})` : ''}` +
        `${d.kernelModule ? '' : ', kernel module not loaded'}${d.initResult !== 0 ? `; cuInit: ${d.initError}` : ''}`,
    );
    for (const g of d.devices)
      out.push(
        `  GPU ${g.index}: ${g.name}, compute capability ${g.computeCapability}, ${gib(g.memoryBytes)}, ${g.multiprocessors} SMs${g.pciBusId ? `, ${g.pciBusId}` : ''}`,
      );
  }
  if (r.gpu.nvidiaSmi) for (const l of r.gpu.nvidiaSmi) out.push(`  nvidia-smi: ${l}`);
  const k = r.cudaKernels;
  out.push(
    `CUDA kernels: ${!k ? 'unknown' : !k.built ? 'not in this build' : `CUDA ${k.runtime} runtime (toolkit ${k.toolkit}, static): driver >= ${k.driverFloor}; ${[...k.machineCode, ...k.ptx].join(' ')}`}`,
  );
  const o = r.onnxRuntime;
  out.push(`ONNX Runtime: ${o.version ?? 'not loadable'}; providers: ${o.backends.join(', ')}`);
  out.push(
    `  CUDA provider: ${o.cudaProvider.installed ? `installed${o.cudaProvider.loads ? ', loads' : `, does not load: ${o.cudaProvider.error}`}` : 'not installed'}`,
  );
  out.push(`  ${o.libraries.map((l) => `${l.name} ${l.loaded ? 'loads' : 'missing'}`).join(', ')}`);
  out.push('');
  for (const [device, v] of [
    ['cpu', r.devices.cpu],
    ['cuda', r.devices.cuda],
  ] as const) {
    out.push(`device '${device}': ${v.usable ? 'yes' : 'NO'}`);
    for (const c of v.checks) out.push(`  ${mark(c.ok)} ${c.name}: ${c.detail}`);
    if (!v.usable) out.push(`  first reason: ${v.reason}\n  to fix: ${v.fix}`);
  }
  return out.join('\n') + '\n';
}
