/**
 * The pipeline's device path (native/device/device_path.h): with `device: 'cuda'` the keyframe
 * feature is uploaded once and stays on the GPU for its GOP, and CReFF, the decoder's pointwise
 * head and the upsampling + arg-max run there; only the labels come back (the logits when
 * asked). 'cuda-emulated' runs the same device code on the CPU through the emulator: how the
 * path is tested without a GPU (slow).
 */
import type { Bundle } from './bundle';
import type { FeatureTensor } from './creff';
import { ArSegError, ErrorCodes, toArSegError } from './errors';
import { addon, NativeDevicePath } from './native';
import type { Logits } from './pointwise-head';

export type DeviceBackendName = 'cuda' | 'cuda-emulated';

export interface DeviceLabels {
  /** height x width class indices at the frame's size. */
  labels: Uint8Array;
  /** The logits at the feature's size, when asked for. */
  logits?: Logits;
  /** Device time of the kernels. */
  milliseconds: number;
  /** Bytes this call moved across the bus, each way (ONNX Runtime's own copies not included). */
  bytesToDevice: number;
  bytesToHost: number;
}

export interface DeviceLabelsOptions {
  /** The labels' size (the frame's). */
  width: number;
  height: number;
  /** Also bring the logits back. */
  logits?: boolean;
}

export class DevicePath {
  readonly backend: DeviceBackendName;
  readonly classes: number;
  #native: NativeDevicePath;
  #upsampling: 'align-corners' | 'half-pixel';
  #sampling: 'exact' | 'official';

  private constructor(
    native: NativeDevicePath,
    backend: DeviceBackendName,
    classes: number,
    upsampling: 'align-corners' | 'half-pixel',
    sampling: 'exact' | 'official',
  ) {
    this.#native = native;
    this.backend = backend;
    this.classes = classes;
    this.#upsampling = upsampling;
    this.#sampling = sampling;
  }

  /** Uploads the bundle's CReFF and head weights. Needs the bundle's native pointwise head. */
  static open(bundle: Bundle, backend: DeviceBackendName): DevicePath {
    const head = bundle.head;
    if (!head)
      throw new ArSegError(
        ErrorCodes.UNSUPPORTED,
        `the device path needs the decoder as a pointwise head: ${bundle.headReason}`,
      );
    const m = bundle.manifest;
    const { logitsUpsampling, sampling } = bundle.pipeline;
    if (logitsUpsampling !== 'align-corners' && logitsUpsampling !== 'half-pixel')
      throw new ArSegError(ErrorCodes.UNSUPPORTED, `the device path makes labels through one resize, not '${logitsUpsampling}'`);
    try {
      const native = new (addon().NativeDevicePath)({
        backend,
        creff: bundle.creff.nativeHandle(),
        channels: m.feature.channels,
        headWeight: head.weight,
        headBias: head.bias,
      });
      return new DevicePath(
        native,
        backend,
        head.classes,
        logitsUpsampling,
        sampling,
      );
    } catch (err) {
      throw toArSegError(err);
    }
  }

  /**
   * The labels of a feature [1, C, H, W]. keyframe: also keep it on the device as the GOP's
   * keyframe for fuse(), in that CReFF mode.
   */
  async labels(
    feature: FeatureTensor,
    options: DeviceLabelsOptions & { keyframe?: 'exact' | 'keyframe-conv' },
  ): Promise<DeviceLabels> {
    const [, , H, W] = feature.dims;
    try {
      const r = await this.#native.labels(feature.data, H, W, {
        outHeight: options.height,
        outWidth: options.width,
        upsampling: this.#upsampling,
        logits: Boolean(options.logits),
        keyframe: options.keyframe,
      });
      return this.#result(r, H, W);
    } catch (err) {
      throw toArSegError(err);
    }
  }

  /** CReFF of an LR feature [1, C, h, w] with the kept keyframe along motion [2, H, W], to labels. */
  async fuse(
    lr: FeatureTensor,
    motion: Float32Array,
    keyHeight: number,
    keyWidth: number,
    options: DeviceLabelsOptions,
  ): Promise<DeviceLabels> {
    const [, , h, w] = lr.dims;
    try {
      const r = await this.#native.fuse(lr.data, h, w, motion, {
        sampling: this.#sampling,
        outHeight: options.height,
        outWidth: options.width,
        upsampling: this.#upsampling,
        logits: Boolean(options.logits),
      });
      return this.#result(r, keyHeight, keyWidth);
    } catch (err) {
      throw toArSegError(err);
    }
  }

  /** Frees the keyframe on the device. */
  close(): void {
    this.#native.dropKeyframe();
  }

  #result(r: Awaited<ReturnType<NativeDevicePath['labels']>>, H: number, W: number): DeviceLabels {
    const out: DeviceLabels = {
      labels: r.labels,
      milliseconds: r.milliseconds,
      bytesToDevice: r.bytesToDevice,
      bytesToHost: r.bytesToHost,
    };
    if (r.logits) out.logits = { data: r.logits, dims: [1, this.classes, H, W] };
    return out;
  }
}
