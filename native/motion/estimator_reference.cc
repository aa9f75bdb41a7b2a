#include "estimator_reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace arseg {

namespace {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<float> px;
  // Outside the picture, the nearest edge pixel (the vectorised code's replicated border).
  float at(int x, int y) const {
    x = std::min(std::max(x, 0), width - 1);
    y = std::min(std::max(y, 0), height - 1);
    return px[static_cast<size_t>(y) * width + x];
  }
  float bilinear(float x, float y) const {
    const float lo = -(kPad - 1);
    x = std::min(std::max(x, lo), static_cast<float>(width + kPad - 2));
    y = std::min(std::max(y, lo), static_cast<float>(height + kPad - 2));
    const int xi = static_cast<int>(std::floor(x)), yi = static_cast<int>(std::floor(y));
    const float ax = x - xi, ay = y - yi;
    const float top = at(xi, yi) + ax * (at(xi + 1, yi) - at(xi, yi));
    const float bottom = at(xi, yi + 1) + ax * (at(xi + 1, yi + 1) - at(xi, yi + 1));
    return top + ay * (bottom - top);
  }
};

// Levels finest..coarsest: the finest is the mean of 2^f x 2^f blocks of the 8-bit plane, each
// next one the level below filtered by [1 3 3 1] / 8 along both axes and decimated.
std::vector<Image> pyramid(const uint8_t* luma, ptrdiff_t linesize, int width, int height, const EstimatorOptions& o) {
  const int top = coarsestLevel(width, height, o);
  std::vector<Image> levels(top - o.finestLevel + 1);
  const int n = 1 << o.finestLevel;
  Image& first = levels[0];
  first.width = width >> o.finestLevel;
  first.height = height >> o.finestLevel;
  first.px.resize(static_cast<size_t>(first.width) * first.height);
  for (int y = 0; y < first.height; ++y) {
    for (int x = 0; x < first.width; ++x) {
      float value;
      if (n == 2) {  // pairs summed as floats, as the vector code does (exact either way)
        const uint8_t* a = luma + static_cast<ptrdiff_t>(2 * y) * linesize + 2 * x;
        const uint8_t* b = a + linesize;
        value = 0.25f * ((float(a[0]) + float(a[1])) + (float(b[0]) + float(b[1])));
      } else {
        int s = 0;
        for (int dy = 0; dy < n; ++dy)
          for (int dx = 0; dx < n; ++dx) s += luma[static_cast<ptrdiff_t>(y * n + dy) * linesize + x * n + dx];
        value = static_cast<float>(s) * (1.f / static_cast<float>(n * n));
      }
      first.px[static_cast<size_t>(y) * first.width + x] = value;
    }
  }
  for (size_t k = 1; k < levels.size(); ++k) {
    const Image& below = levels[k - 1];
    Image& lv = levels[k];
    lv.width = below.width / 2;
    lv.height = below.height / 2;
    lv.px.resize(static_cast<size_t>(lv.width) * lv.height);
    // [1 3 3 1] / 8 along x on rows 2y - 1 .. 2y + 2, then along y (edge pixels repeated).
    auto across = [&](int x, int y) {
      return ((below.at(2 * x - 1, y) + below.at(2 * x + 2, y)) + 3.f * (below.at(2 * x, y) + below.at(2 * x + 1, y))) *
             0.125f;
    };
    for (int y = 0; y < lv.height; ++y)
      for (int x = 0; x < lv.width; ++x)
        lv.px[static_cast<size_t>(y) * lv.width + x] =
            ((across(x, 2 * y - 1) + across(x, 2 * y + 2)) + 3.f * (across(x, 2 * y) + across(x, 2 * y + 1))) * 0.125f;
  }
  return levels;
}

struct Patches {
  std::vector<int> ox, oy;
  std::vector<float> u, v;
  std::vector<uint8_t> ok;
};

// Mean-normalised sum of squared differences of the patch of `cur` at (x0, y0) against `prev`
// sampled at offset (u, v), and the sums the Gauss-Newton step needs.
struct PassSums {
  float r = 0, gxr = 0, gyr = 0, d2 = 0;
};

PassSums pass(const Image& prev, const float* T, const float* gx, const float* gy, int x0, int y0, float u, float v) {
  PassSums s;
  for (int r = 0; r < kPatch; ++r) {
    for (int c = 0; c < kPatch; ++c) {
      const int e = r * kPatch + c;
      // The same bilinear formula as the vector code, at integer base floor(x0 + u).
      const float px = x0 + u, py = y0 + v;
      const int xi = static_cast<int>(std::floor(px)), yi = static_cast<int>(std::floor(py));
      const float fx = px - xi, fy = py - yi;
      const float a = prev.at(xi + c, yi + r), b = prev.at(xi + c + 1, yi + r);
      const float cc = prev.at(xi + c, yi + r + 1), d = prev.at(xi + c + 1, yi + r + 1);
      const float top = a + fx * (b - a), bottom = cc + fx * (d - cc);
      const float value = top + fy * (bottom - top);
      s.r += value;
      s.gxr += gx[e] * value;
      s.gyr += gy[e] * value;
      s.d2 += (value - T[e]) * (value - T[e]);
    }
  }
  return s;
}

void search(const Image& cur, const Image& prev, const float* altU, const float* altV, int radius, int iterations,
            Patches& p) {
  constexpr float n = kPatch * kPatch;
  const size_t nx = p.ox.size();
  for (size_t i = 0; i < p.oy.size(); ++i) {
    for (size_t j = 0; j < nx; ++j) {
      const int x0 = p.ox[j], y0 = p.oy[i];
      const size_t k = i * nx + j;
      float T[kPatch * kPatch], gx[kPatch * kPatch], gy[kPatch * kPatch];
      float sT = 0, sT2 = 0, sGx = 0, sGy = 0, sGxT = 0, sGyT = 0, hxx = 0, hxy = 0, hyy = 0;
      for (int r = 0; r < kPatch; ++r) {
        for (int c = 0; c < kPatch; ++c) {
          const int e = r * kPatch + c, x = x0 + c, y = y0 + r;
          T[e] = cur.at(x, y);
          gx[e] = 0.5f * (cur.at(x + 1, y) - cur.at(x - 1, y));
          gy[e] = 0.5f * (cur.at(x, y + 1) - cur.at(x, y - 1));
          sT += T[e];
          sT2 += T[e] * T[e];
          sGx += gx[e];
          sGy += gy[e];
          sGxT += gx[e] * T[e];
          sGyT += gy[e] * T[e];
          hxx += gx[e] * gx[e];
          hxy += gx[e] * gy[e];
          hyy += gy[e] * gy[e];
        }
      }
      // The Hessian of the mean-normalised error: centred gradients, plus the ridge.
      hxx = hxx - sGx * sGx / n + kHessianRidge;
      hxy = hxy - sGx * sGy / n;
      hyy = hyy - sGy * sGy / n + kHessianRidge;
      const float det = hxx * hyy - hxy * hxy;
      const float invDet = det > 0.f ? 1.f / det : 0.f;  // a singular Hessian: no step
      const float varT = sT2 / n - (sT / n) * (sT / n);
      const float loX = minOffset(x0), hiX = maxOffset(x0, cur.width);
      const float loY = minOffset(y0), hiY = maxOffset(y0, cur.height);
      auto clampOffset = [&](float& u, float& v) {
        u = std::min(std::max(u, loX), hiX);
        v = std::min(std::max(v, loY), hiY);
      };
      auto ssdOf = [&](const PassSums& s) { return s.d2 - (s.r - sT) * (s.r - sT) / n; };

      float u = p.u[k], v = p.v[k];
      clampOffset(u, v);
      PassSums s = pass(prev, T, gx, gy, x0, y0, u, v);
      float ssd = ssdOf(s);
      // The start: the best of the given one, the alternative and the whole-pixel offsets
      // around the given one (penalised by their squared length); the first best wins.
      const float u0 = u, v0 = v;
      float best = ssd;
      if (altU) {
        float au = altU[k], av = altV[k];
        clampOffset(au, av);
        const float cost = ssdOf(pass(prev, T, gx, gy, x0, y0, au, av));
        if (cost < best) {
          best = cost;
          u = au;
          v = av;
        }
      }
      for (int dv = -radius; dv <= radius; ++dv) {
        for (int du = -radius; du <= radius; ++du) {
          if (du == 0 && dv == 0) continue;
          float cu = u0 + du, cv = v0 + dv;
          clampOffset(cu, cv);
          const float cost =
              ssdOf(pass(prev, T, gx, gy, x0, y0, cu, cv)) + kOffsetPenalty * static_cast<float>(du * du + dv * dv);
          if (cost < best) {
            best = cost;
            u = cu;
            v = cv;
          }
        }
      }
      s = pass(prev, T, gx, gy, x0, y0, u, v);
      ssd = ssdOf(s);
      const float startU = u, startV = v, startSsd = ssd;
      for (int it = 0; it < iterations; ++it) {
        const float dm = (s.r - sT) / n;
        const float bx = s.gxr - sGxT - dm * sGx;
        const float by = s.gyr - sGyT - dm * sGy;
        u -= (hyy * bx - hxy * by) * invDet;
        v -= (hxx * by - hxy * bx) * invDet;
        clampOffset(u, v);
        s = pass(prev, T, gx, gy, x0, y0, u, v);
        ssd = ssdOf(s);
      }
      if (ssd > startSsd) {  // the search made it worse: back to the start
        u = startU;
        v = startV;
        ssd = startSsd;
      }
      p.u[k] = u;
      p.v[k] = v;
      const float residual = ssd / n;
      p.ok[k] = !(residual > kUnmatchedVariance && residual > kUnmatchedShare * varT);
    }
  }
}

// The offsets of the four patches whose centres surround (qx, qy) (clamped into the picture),
// each weighted by its bilinear weight times 1 / max(1, |previous(q + u) - current(q)|).
void densify(const Image& cur, const Image& prev, const Patches& p, float qx, float qy, float& u, float& v,
             bool& matched) {
  qx = std::min(std::max(qx, 0.f), static_cast<float>(cur.width - 1));
  qy = std::min(std::max(qy, 0.f), static_cast<float>(cur.height - 1));
  const float here = cur.bilinear(qx, qy);
  // Along one axis: the patches whose centres are the last at or before q and the next one, and
  // the weight of the next (one patch alone before the first centre and after the last).
  auto around = [](const std::vector<int>& o, float q, int& lo, int& hi, float& t) {
    const float half = 0.5f * (kPatch - 1);
    lo = -1;
    for (size_t j = 0; j < o.size(); ++j)
      if (o[j] + half <= q) lo = static_cast<int>(j);
    const int n = static_cast<int>(o.size());
    if (lo < 0) {
      lo = hi = 0;
      t = 0.f;
    } else if (lo >= n - 1) {
      lo = hi = n - 1;
      t = 0.f;
    } else {
      hi = lo + 1;
      t = (q - (o[lo] + half)) / ((o[hi] + half) - (o[lo] + half));
    }
  };
  int x0, x1, y0, y1;
  float tx, ty;
  around(p.ox, qx, x0, x1, tx);
  around(p.oy, qy, y0, y1, ty);
  const int ys[2] = {y0, y1}, xs[2] = {x0, x1};
  const float wy[2] = {1.f - ty, ty}, wx[2] = {1.f - tx, tx};
  float su = 0, sv = 0, sw = 0, sm = 0;
  for (int a = 0; a < 2; ++a) {
    for (int b = 0; b < 2; ++b) {
      const size_t k = static_cast<size_t>(ys[a]) * p.ox.size() + xs[b];
      const float w = wy[a] * wx[b] / std::max(1.f, std::fabs(prev.bilinear(qx + p.u[k], qy + p.v[k]) - here));
      su += w * p.u[k];
      sv += w * p.v[k];
      sw += w;
      sm += p.ok[k] ? w : 0.f;
    }
  }
  u = su / sw;
  v = sv / sw;
  matched = sm >= 0.5f * sw;
}

}  // namespace

void estimateFieldReference(const uint8_t* prevLuma, ptrdiff_t prevLinesize, const uint8_t* curLuma,
                            ptrdiff_t curLinesize, int width, int height, const MotionGrid* prior, int stride,
                            const EstimatorOptions& o, FieldEstimate& out) {
  out.field = MotionGrid(width, height, stride);
  out.matched.assign(out.field.size(), 0);
  if (!frameLargeEnough(width, height, o)) return;
  const std::vector<Image> cur = pyramid(curLuma, curLinesize, width, height, o);
  const std::vector<Image> prev = pyramid(prevLuma, prevLinesize, width, height, o);
  const int levels = static_cast<int>(cur.size());
  Patches coarser;
  for (int k = levels - 1; k >= 0; --k) {
    const int level = o.finestLevel + k;
    const float scale = static_cast<float>(1 << level);
    Patches p;
    p.ox = patchOrigins(cur[k].width, o.patchStride);
    p.oy = patchOrigins(cur[k].height, o.patchStride);
    const size_t count = p.ox.size() * p.oy.size();
    p.u.assign(count, 0.f);
    p.v.assign(count, 0.f);
    p.ok.assign(count, 0);
    std::vector<float> altU, altV;
    const bool usePrior = k == levels - 1 && prior && !prior->empty();
    for (size_t i = 0; i < p.oy.size(); ++i) {
      for (size_t j = 0; j < p.ox.size(); ++j) {
        const size_t idx = i * p.ox.size() + j;
        const float cx = p.ox[j] + 0.5f * (kPatch - 1), cy = p.oy[i] + 0.5f * (kPatch - 1);
        if (k < levels - 1) {
          float u, v;
          bool unused;
          densify(cur[k + 1], prev[k + 1], coarser, (cx - 0.5f) / 2, (cy - 0.5f) / 2, u, v, unused);
          p.u[idx] = 2.f * u;
          p.v[idx] = 2.f * v;
        } else if (usePrior) {
          const float fx = cx * scale + 0.5f * (scale - 1), fy = cy * scale + 0.5f * (scale - 1);
          const float half = 0.5f * (prior->stride - 1);
          float px, py;
          prior->sample((fx - half) / prior->stride, (fy - half) / prior->stride, px, py);
          altU.push_back(px / scale);
          altV.push_back(py / scale);
        }
      }
    }
    search(cur[k], prev[k], usePrior ? altU.data() : nullptr, usePrior ? altV.data() : nullptr,
           k == levels - 1 ? o.coarseRadius : o.fineRadius, o.iterations, p);
    coarser = std::move(p);
  }
  const float scale = static_cast<float>(1 << o.finestLevel);
  MotionGrid& g = out.field;
  for (int i = 0; i < g.height; ++i) {
    for (int j = 0; j < g.width; ++j) {
      float u, v;
      bool matched;
      densify(cur[0], prev[0], coarser, (g.centre(j) - 0.5f * (scale - 1)) / scale,
              (g.centre(i) - 0.5f * (scale - 1)) / scale, u, v, matched);
      const size_t idx = static_cast<size_t>(i) * g.width + j;
      g.dx[idx] = u * scale;
      g.dy[idx] = v * scale;
      out.matched[idx] = matched;
    }
  }
}

}  // namespace arseg
