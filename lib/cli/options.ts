/** Option parsers shared by the `ar-seg` commands (commander: InvalidArgumentError is a usage error, exit 2). */
import { InvalidArgumentError } from 'commander';
import { EVAL_MODES } from '../evaluate';
import type { SegmentMode } from '../pipeline';

export function positiveInt(name: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}`);
    return n;
  };
}

export function keyframePolicy(value: string): 'gop' | 'adaptive' | number {
  if (value === 'gop' || value === 'adaptive') return value;
  return positiveInt('--keyframes', 1 << 20)(value);
}

export function size(value: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/.exec(value);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new InvalidArgumentError('--size must be WIDTHxHEIGHT, e.g. 960x720');
  return { width: Number(m[1]), height: Number(m[2]) };
}

export function scaleValue(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError('--scale must be a number in (0, 1]');
  return n;
}

export function modeValue(value: string): 'ar' | 'hr' | 'lr' {
  if (value !== 'ar' && value !== 'hr' && value !== 'lr') throw new InvalidArgumentError('--mode must be ar, hr or lr');
  return value;
}

export function modesValue(value: string): SegmentMode[] {
  const modes = value.split(',').map((m) => m.trim()).filter(Boolean);
  if (modes.length === 0 || modes.some((m) => !(EVAL_MODES as readonly string[]).includes(m))) throw new InvalidArgumentError('--modes must be a comma-separated list of hr, lr, ar');
  return [...new Set(modes)] as SegmentMode[];
}

export function deviceValue(value: string): 'cpu' | 'cuda' {
  if (value !== 'cpu' && value !== 'cuda') throw new InvalidArgumentError('--device must be cpu or cuda');
  return value;
}
