'use strict';
// Deterministic pseudo-random floats (xorshift32), for tests and benchmarks that need the same
// inputs on every run.

/** n floats uniform in [-scale, scale), from `seed`. */
function randoms(n, seed, scale = 1) {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = ((x / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

module.exports = { randoms };
