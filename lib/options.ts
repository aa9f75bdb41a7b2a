/**
 * Checks on the options and arguments that TypeScript itself consumes, shared by every module:
 * each returns the value (or the fallback when it is undefined) or throws ERR_INVALID_ARG naming
 * the option, what it must be and what it got. Options that the native addon consumes (the
 * reader's frame options, CReFF's kernel options...) are checked there, once, and passed through
 * unchecked (docs/architecture.md, "Checking options").
 */
import { invalidArg } from './errors';

/** A value as a message shows it: strings quoted, objects as JSON. */
export function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || value == null)
    return String(value);
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? Object.prototype.toString.call(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** "'a', 'b' or 'c'" */
function alternatives(allowed: readonly unknown[]): string {
  const shown = allowed.map(show);
  return shown.length < 2 ? shown.join('') : `${shown.slice(0, -1).join(', ')} or ${shown[shown.length - 1]}`;
}

/**
 * An options object: undefined gives `{}`; null, arrays and other values are refused. `what`
 * names it in the message ("options", "options.head").
 */
export function optionsObject<T extends object>(value: T | null | undefined, what = 'options'): T {
  if (value === undefined) return {} as T;
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw invalidArg(`${what} must be an object, got ${show(value)}`);
  return value;
}

/** One of the listed values (strings, usually), or the fallback when undefined. */
export function oneOf<T>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T))
    throw invalidArg(`option '${name}' must be ${alternatives(allowed)}, got ${show(value)}`);
  return value as T;
}

/**
 * An integer from lo to hi (hi may be Infinity: "a positive integer" when lo is 1), or the
 * fallback when undefined.
 */
export function integerIn(name: string, value: unknown, lo: number, hi: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi) {
    const range =
      hi === Infinity
        ? lo === 1
          ? 'a positive integer'
          : `an integer of at least ${lo}`
        : `an integer from ${lo} to ${hi}`;
    throw invalidArg(`option '${name}' must be ${range}, got ${show(value)}`);
  }
  return value;
}

/**
 * A finite number in [lo, hi], or (lo, hi] with `lowOpen` (a scale above 0), or the fallback
 * when undefined.
 */
export function numberIn(
  name: string,
  value: unknown,
  lo: number,
  hi: number,
  fallback?: number,
  { lowOpen = false }: { lowOpen?: boolean } = {},
): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value > hi || (lowOpen ? value <= lo : value < lo))
    throw invalidArg(`option '${name}' must be a number in ${lowOpen ? '(' : '['}${lo}, ${hi}], got ${show(value)}`);
  return value;
}

/** A non-empty string; `what` is the whole subject of the message ("the bundle directory"). */
export function nonEmptyString(what: string, value: unknown, must = 'a non-empty string'): string {
  if (typeof value !== 'string' || value.length === 0) throw invalidArg(`${what} must be ${must}, got ${show(value)}`);
  return value;
}
