/**
 * The pipeline's device path (native/device/device_path.h): with `device: 'cuda'` the keyframe
 * feature is uploaded once and stays on the GPU for its GOP, and CReFF, the decoder's pointwise
 * head (the HR network's on HR frames; the LR network's own on LR and AR frames when the bundle
 * has one) and the upsampling + arg-max (every resize a bundle declares) run there; only the
 * labels come back (the logits when asked). The head and the labels are the CPU kernels' bit for
 * bit (native/postprocess/labels_kernel.cuh). 'cuda-emulated' runs the same device code on the
 * CPU through the emulator: how the path is tested without a GPU (slow).
 */
import type { Bundle, LabelsResize } from './bundle';
import type { FeatureTensor } from './creff';
import { ArSegError, ErrorCodes, toArSegError } from './errors';
import { addon, NativeDevicePath, NativeLabelsRequest } from './native';
import type { Logits } from './pointwise-head';

export type DeviceBackendName = 'cuda' | 'cuda-emulated';

export interface DeviceLabels {
  /** height x width class indices at the frame's size. */
  labels: Uint8Array;
  /** The logits at the feature's size, when asked for. */
  logits?: Logits;
  /** Device time of the kernels. */
  milliseconds: number;
  /**
   * Bytes this call moved across the bus, each way (ONNX Runtime's own copies not included; the
   * first frame of each labels size also sends up that resize's tap tables, 36 bytes per output
   * row and column).
   */
  bytesToDevice: number;
  bytesToHost: number;
}

export interface DeviceLabelsOptions {
  /** The labels' size (the frame's). */
  width: number;
  height: number;
  /** How the logits are resized to it (Bundle.labelsResize). */
  resize: LabelsResize;
  /** Also bring the logits back. */
  logits?: boolean;
}

export class DevicePath {
  readonly backend: DeviceBackendName;
  readonly classes: number;
  #native: NativeDevicePath;
  #sampling: 'exact' | 'official';

  private constructor(
    native: NativeDevicePath,
    backend: DeviceBackendName,
    classes: number,
    sampling: 'exact' | 'official',
  ) {
    this.#native = native;
    this.backend = backend;
    this.classes = classes;
    this.#sampling = sampling;
  }

  /**
   * Why the device path cannot run this bundle's frames, or null when it can: it needs every
   * decoder as a native pointwise head (the HR one, and the LR network's own when the bundle has
   * one). Every other pipeline choice the bundle makes it follows.
   */
  static unsupportedReason(bundle: Bundle): string | null {
    if (!bundle.head) return `the decoder is not run as a pointwise head: ${bundle.headReason}`;
    if (bundle.lrDecoder && !bundle.lrHead)
      return `the LR network's own decoder is not run as a pointwise head: ${bundle.lrHeadReason}`;
    return null;
  }

  /** Uploads the bundle's CReFF and head weights. ERR_UNSUPPORTED with unsupportedReason's words. */
  static open(bundle: Bundle, backend: DeviceBackendName): DevicePath {
    const reason = DevicePath.unsupportedReason(bundle);
    if (reason) throw new ArSegError(ErrorCodes.UNSUPPORTED, `the device path cannot run this bundle: ${reason}`);
    const head = bundle.head!;
    const lrHead = bundle.lrDecoder ? bundle.lrHead! : null;
    try {
      const native = new (addon().NativeDevicePath)({
        backend,
        creff: bundle.creff.nativeHandle(),
        channels: bundle.manifest.feature.channels,
        headWeight: head.weight,
        headBias: head.bias,
        ...(lrHead ? { lrHeadWeight: lrHead.weight, lrHeadBias: lrHead.bias } : {}),
      });
      return new DevicePath(native, backend, head.classes, bundle.pipeline.sampling);
    } catch (err) {
      throw toArSegError(err);
    }
  }

  /**
   * The labels of a feature [1, C, H, W] by the HR network's head ('hr') or the LR network's own
   * ('lr'; the HR head when the bundle has none). keyframe: also keep it on the device as the
   * GOP's keyframe for fuse(), in that CReFF mode.
   */
  async labels(
    feature: FeatureTensor,
    options: DeviceLabelsOptions & { head: 'hr' | 'lr'; keyframe?: 'exact' | 'keyframe-conv' },
  ): Promise<DeviceLabels> {
    const [, , H, W] = feature.dims;
    try {
      const r = await this.#native.labels(feature.data, H, W, {
        ...request(options),
        head: options.head,
        keyframe: options.keyframe,
      });
      return this.#result(r, H, W);
    } catch (err) {
      throw toArSegError(err);
    }
  }

  /**
   * CReFF of an LR feature [1, C, h, w] with the kept keyframe along motion [2, H, W], to labels
   * by the LR network's head (an AR frame is the LR network's; the HR head when it has none).
   */
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
        ...request(options),
        head: 'lr',
        sampling: this.#sampling,
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

function request(options: DeviceLabelsOptions): NativeLabelsRequest {
  return {
    outHeight: options.height,
    outWidth: options.width,
    upsampling: options.resize.upsampling,
    ...(options.resize.via ? { via: options.resize.via } : {}),
    logits: Boolean(options.logits),
  };
}
