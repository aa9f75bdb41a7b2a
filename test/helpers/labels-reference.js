'use strict';
// A plain reference of labels from logits (native/postprocess): PyTorch's
// F.interpolate(mode='bilinear') rules in float64, one resize or two in a row (the intermediate
// logits materialised), then the arg-max with each pixel's margin between its two best classes
// (pixels with a margin near 0 may go either way in float32).

/** Where output coordinate x reads the input, in input pixels. */
function source(x, inSize, outSize, mode) {
  if (mode === 'half-pixel') return Math.max((x + 0.5) * (inSize / outSize) - 0.5, 0);
  return outSize > 1 ? (x * (inSize - 1)) / (outSize - 1) : 0;
}

/** logits classes x h x w resized to classes x outH x outW (float64). */
function resizeReference(logits, classes, h, w, outH, outW, mode) {
  const out = new Float64Array(classes * outH * outW);
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(source(y, h, outH, mode), h - 1);
    const y0 = Math.floor(sy),
      y1 = Math.min(y0 + 1, h - 1),
      ay = sy - y0;
    for (let x = 0; x < outW; x++) {
      const sx = Math.min(source(x, w, outW, mode), w - 1);
      const x0 = Math.floor(sx),
        x1 = Math.min(x0 + 1, w - 1),
        ax = sx - x0;
      for (let c = 0; c < classes; c++) {
        const p = c * h * w;
        out[c * outH * outW + y * outW + x] =
          (1 - ay) * ((1 - ax) * logits[p + y0 * w + x0] + ax * logits[p + y0 * w + x1]) +
          ay * ((1 - ax) * logits[p + y1 * w + x0] + ax * logits[p + y1 * w + x1]);
      }
    }
  }
  return out;
}

/** The arg-max of classes x n values per pixel, and each pixel's margin to its second-best class. */
function argmaxWithMargins(values, classes, n) {
  const labels = new Uint8Array(n);
  const margins = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let best = -Infinity,
      second = -Infinity,
      arg = 0;
    for (let c = 0; c < classes; c++) {
      const v = values[c * n + i];
      if (v > best) {
        second = best;
        best = v;
        arg = c;
      } else if (v > second) second = v;
    }
    labels[i] = arg;
    margins[i] = best - second;
  }
  return { labels, margins };
}

/**
 * The labels of logits (classes x h x w) at outH x outW, resized with `mode`, through
 * via = { height, width, upsampling? } first when given; with their margins.
 */
function labelsReference(logits, classes, h, w, outH, outW, mode = 'align-corners', via = undefined) {
  let [values, vh, vw] = [logits, h, w];
  if (via)
    [values, vh, vw] = [
      resizeReference(logits, classes, h, w, via.height, via.width, via.upsampling ?? 'align-corners'),
      via.height,
      via.width,
    ];
  return argmaxWithMargins(resizeReference(values, classes, vh, vw, outH, outW, mode), classes, outH * outW);
}

module.exports = { labelsReference, resizeReference };
