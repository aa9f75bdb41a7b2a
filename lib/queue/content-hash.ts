/**
 * Content identities of a job's inputs, so that a job's id says what it computes: the clip's
 * bytes, its label files, the model bundle's files and the options, each as SHA-256. Equal
 * content under another path or name is the same job; a changed byte is another one.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ArSegError, ErrorCodes } from '../errors';

/** SHA-256 (hex) of a file's bytes, streamed. ERR_NOT_FOUND when it is missing, ERR_OPEN when unreadable. */
export async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ArSegError(ErrorCodes.NOT_FOUND, `${file}: no such file`, { cause: err });
    if (code === 'EISDIR')
      throw new ArSegError(ErrorCodes.INVALID_ARG, `${file}: a directory, not a video file`, { cause: err });
    throw new ArSegError(ErrorCodes.OPEN, `${file}: cannot be read (${(err as Error).message})`, { cause: err });
  }
  return hash.digest('hex');
}

/** SHA-256 (hex) of named files: each name with its content's hash, in the order given. */
export async function hashNamedFiles(files: { name: string; file: string }[]): Promise<string> {
  const hash = createHash('sha256');
  for (const { name, file } of files) hash.update(`${name}\0${await hashFile(file)}\n`);
  return hash.digest('hex');
}

/** JSON with object keys sorted at every level (undefined members dropped, as JSON.stringify does). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, (v as Record<string, unknown>)[k]]),
    );
  });
}

/** SHA-256 (hex) of a value's canonical JSON. */
export function hashJson(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/** The manifest fields a submitter reads without loading the bundle. */
export interface BundleIdentity {
  /** SHA-256 over the manifest and every file it names (networks, CReFF weights). */
  hash: string;
  /** The parsed manifest (arseg.json), unvalidated: the worker's load validates it. */
  manifest: { name?: unknown; keyframeInterval?: unknown; lrScale?: unknown; [k: string]: unknown };
}

/**
 * The identity of a model bundle: its manifest (arseg.json) and the files it names. Other files
 * in the directory (notes, training logs) do not count. ERR_BUNDLE when the directory or its
 * manifest is missing or not JSON, or a named file is missing.
 */
export async function hashBundle(dir: string): Promise<BundleIdentity> {
  const manifestFile = path.join(dir, 'arseg.json');
  let text: string;
  try {
    text = await fs.readFile(manifestFile, 'utf8');
  } catch (err) {
    throw new ArSegError(
      ErrorCodes.BUNDLE,
      `${dir}: not a model bundle (no readable arseg.json: ${(err as Error).message})`,
      { cause: err },
    );
  }
  let manifest: BundleIdentity['manifest'];
  try {
    manifest = JSON.parse(text) as BundleIdentity['manifest'];
  } catch (err) {
    throw new ArSegError(ErrorCodes.BUNDLE, `${manifestFile}: not valid JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
  if (manifest === null || typeof manifest !== 'object')
    throw new ArSegError(ErrorCodes.BUNDLE, `${manifestFile}: not a JSON object`);
  const named = new Set<string>();
  const networks = manifest.networks as Record<string, unknown> | undefined;
  for (const v of Object.values(networks ?? {})) if (typeof v === 'string') named.add(v);
  const creff = manifest.creff as Record<string, unknown> | undefined;
  for (const part of Object.values(creff ?? {}))
    if (part && typeof part === 'object')
      for (const v of Object.values(part as Record<string, unknown>)) if (typeof v === 'string') named.add(v);
  const files = [
    { name: 'arseg.json', file: manifestFile },
    ...[...named].sort().map((name) => ({ name, file: path.join(dir, name) })),
  ];
  try {
    return { hash: await hashNamedFiles(files), manifest };
  } catch (err) {
    const e = err as ArSegError;
    throw new ArSegError(ErrorCodes.BUNDLE, `${dir}: a file the manifest names cannot be read (${e.message})`, {
      cause: err,
    });
  }
}
