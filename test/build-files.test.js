'use strict';
// The two native builds, CMakeLists.txt (cmake-js, the full build) and binding.gyp (node-gyp, the
// install-time fallback), must compile the same sources with the same warnings and definitions:
// a file added to one only builds in one, and a warning enabled in one only hides in the other.
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');

const ROOT = path.join(__dirname, '..');

// binding.gyp is a Python literal: JSON plus '#' comments, single-quoted strings and trailing
// commas. A scanner turns it into JSON, leaving the contents of strings alone.
function parseGyp(text) {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"' || ch === "'") {
      let body = '';
      for (i++; i < text.length && text[i] !== ch; i++) {
        if (text[i] === '\\') body += text[i++];
        body += text[i];
      }
      out += JSON.stringify(ch === '"' ? JSON.parse(`"${body}"`) : body.replace(/\\(.)/g, '$1'));
    } else if (ch === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else {
      out += ch;
    }
  }
  return JSON.parse(out.replace(/,(\s*[\]}])/g, '$1'));
}

// The items of every `set(NAME ...)` in a CMakeLists.txt, by name, joined over repeated sets
// (ARSEG_CUDA_SOURCES is set in both branches of its if: the .cu and its stub).
function cmakeSets(text) {
  const sets = new Map();
  const uncommented = text.replace(/#.*$/gm, '');
  for (const m of uncommented.matchAll(/\bset\(\s*(\w+)\s+([^)]*)\)/g)) {
    const items = m[2].split(/\s+/).filter(Boolean);
    sets.set(m[1], [...(sets.get(m[1]) ?? []), ...items]);
  }
  return { sets, text: uncommented };
}

function cmake() {
  const { sets, text } = cmakeSets(fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8'));
  const sources = [...sets.entries()].filter(([name]) => /^ARSEG_\w*SOURCES$/.test(name)).flatMap(([, items]) => items);
  // Flags: the warning set, and the options added to every C++ compilation.
  const flags = [...(sets.get('ARSEG_WARNINGS') ?? [])];
  for (const m of text.matchAll(/add_compile_options\(([^\n]*)\)/g))
    for (const f of m[1].matchAll(/(-[Wf][\w=+-]+)/g)) flags.push(f[1]);
  const defines = [];
  for (const m of text.matchAll(/target_compile_definitions\(\s*\$\{PROJECT_NAME\}\s+PRIVATE\s+([^)]*)\)/g))
    defines.push(...m[1].split(/\s+/).filter(Boolean));
  return { sources, flags, defines };
}

function gyp() {
  const gypFile = parseGyp(fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8'));
  const [target] = gypFile.targets;
  const flags = [...(target.cflags ?? []), ...(target.cflags_cc ?? [])].filter((f) => /^-[Wf]/.test(f));
  return { sources: target.sources, flags, defines: target.defines };
}

const sorted = (a) => [...new Set(a)].sort();

test('CMakeLists.txt and binding.gyp compile the same sources (node-gyp: the CPU ones)', (t) => {
  const c = cmake();
  const g = gyp();
  t.true(c.sources.length > 10, `CMakeLists.txt: no source lists found (${c.sources.length} files)`);
  // node-gyp cannot compile CUDA: it builds CMake's non-CUDA sources, the stub among them.
  const cpu = c.sources.filter((f) => !f.endsWith('.cu'));
  t.deepEqual(sorted(g.sources), sorted(cpu));
  t.is(new Set(g.sources).size, g.sources.length, 'binding.gyp lists a source twice');
  for (const f of [...c.sources, ...g.sources]) t.true(fs.existsSync(path.join(ROOT, f)), `${f} is listed but missing`);
});

test('every native .cc file is built (tests and the prebuild shims aside)', (t) => {
  const listed = new Set(cmake().sources);
  const walk = (dir) =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = path.join(dir, e.name);
      return e.isDirectory() ? walk(p) : [path.relative(ROOT, p)];
    });
  const unbuilt = walk(path.join(ROOT, 'native')).filter(
    (f) => /\.(cc|cu)$/.test(f) && !f.startsWith('native/tests/') && !listed.has(f),
  );
  t.deepEqual(unbuilt, [], 'native sources in neither build');
});

test('CMakeLists.txt and binding.gyp enable the same warnings and definitions', (t) => {
  const c = cmake();
  const g = gyp();
  const warnings = (flags) => sorted(flags.filter((f) => f.startsWith('-W')));
  t.true(c.flags.includes('-Wall'), 'CMakeLists.txt: ARSEG_WARNINGS not found');
  t.deepEqual(warnings(g.flags), warnings(c.flags));
  // -fopenmp-simd vectorises the `omp simd` loops: a build without it is slower, not wrong.
  t.deepEqual(
    sorted(g.flags.filter((f) => f === '-fopenmp-simd')),
    sorted(c.flags.filter((f) => f === '-fopenmp-simd')),
  );
  t.deepEqual(sorted(g.defines), sorted(c.defines));
});

test('the parsers see a difference (a source or warning missing from binding.gyp)', (t) => {
  // The same comparison on a copy of binding.gyp with one source and one warning removed.
  const text = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8');
  const g = parseGyp(text);
  const target = g.targets[0];
  target.sources = target.sources.slice(1);
  target.cflags_cc = target.cflags_cc.filter((f) => f !== '-Wextra');
  const c = cmake();
  t.notDeepEqual(sorted(target.sources), sorted(c.sources.filter((f) => !f.endsWith('.cu'))));
  const warnings = (flags) => sorted(flags.filter((f) => f.startsWith('-W')));
  t.notDeepEqual(warnings(target.cflags_cc), warnings(c.flags));
  // and the gyp parser reads comments, single quotes and trailing commas
  t.deepEqual(parseGyp("{ # c\n 'a': ['x', 'y',],\n}"), { a: ['x', 'y'] });
});
