/**
 * The clips of a submission, and their check on the worker. Inputs are resolved to absolute
 * paths (workers run elsewhere, in other directories) on storage every worker sees; a URL has
 * no content to hash and is refused. A clip's identity is its content: the worker hashes the
 * video (and labels) again and refuses to run a job whose input changed since it was submitted.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ArSegError, ErrorCodes, invalidArg } from '../errors';
import { DatasetSplits, labelsError, listLabelFiles, resolveClips } from '../dataset';
import { hashFile, hashNamedFiles } from './content-hash';
import type { JobData } from './jobs';

/** A clip to queue: its name, video and the video's hash; for evaluation, its labels. */
export interface SubmitClip {
  name: string;
  video: string;
  hash: string;
  labels?: { dir: string; hash: string; files: number };
}

/** File names the segmentation of a plain directory takes as videos. */
const VIDEO_EXTENSIONS = new Set([
  '.mp4',
  '.m4v',
  '.mov',
  '.mkv',
  '.avi',
  '.webm',
  '.ts',
  '.mts',
  '.m2ts',
  '.mpg',
  '.mpeg',
  '.h264',
  '.264',
  '.h265',
  '.265',
  '.hevc',
  '.flv',
  '.3gp',
]);

function refuseUrl(input: string): void {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input))
    throw invalidArg(
      `${input}: the queue takes files on storage every worker sees (it identifies a clip by its content), not URLs`,
    );
}

async function statOrNull(p: string) {
  return fs.stat(p).catch(() => null);
}

async function labelHash(
  dir: string,
  name: string,
): Promise<{ dir: string; hash: string; files: number; list: string[] }> {
  const list = await listLabelFiles(dir, name);
  return {
    dir,
    hash: await hashNamedFiles(list.map((file) => ({ name: path.basename(file), file }))),
    files: list.length,
    list,
  };
}

/**
 * Evaluation: the clips `ar-seg eval` would take from the same inputs (videos with labels/ next
 * to them, clip directories, datasets with splits.json), every label file listed and hashed.
 */
export async function resolveEvalClips(
  inputs: string[],
  o: { labels?: string; split?: string },
): Promise<{ clips: SubmitClip[]; datasets: { dir: string; splits: DatasetSplits }[] }> {
  inputs.forEach(refuseUrl);
  const resolved = await resolveClips(
    inputs.map((i) => path.resolve(i)),
    { labels: o.labels === undefined ? undefined : path.resolve(o.labels), split: o.split },
  );
  const clips: SubmitClip[] = [];
  for (const c of resolved.clips) {
    const labels = await labelHash(c.labels, c.name);
    clips.push({
      name: c.name,
      video: c.video,
      hash: await hashFile(c.video),
      labels: { dir: labels.dir, hash: labels.hash, files: labels.files },
    });
  }
  return { clips, datasets: resolved.datasets };
}

/**
 * Segmentation: video files; clip directories (video.mp4) and datasets (splits.json, one split)
 * as `ar-seg eval` reads them; any other directory gives the video files directly in it, by name.
 */
export async function resolveSegmentClips(inputs: string[], o: { split?: string }): Promise<SubmitClip[]> {
  if (inputs.length === 0) throw invalidArg('give at least one video or directory');
  const clips: SubmitClip[] = [];
  for (const input of inputs) {
    refuseUrl(input);
    const abs = path.resolve(input);
    const st = await statOrNull(abs);
    if (!st) throw new ArSegError(ErrorCodes.NOT_FOUND, `${input}: no such file or directory`);
    if (
      st.isDirectory() &&
      !(await statOrNull(path.join(abs, 'splits.json'))) &&
      !(await statOrNull(path.join(abs, 'video.mp4')))
    ) {
      const names = (await fs.readdir(abs, { withFileTypes: true }))
        .filter((e) => e.isFile() && VIDEO_EXTENSIONS.has(path.extname(e.name).toLowerCase()))
        .map((e) => e.name)
        .sort();
      if (names.length === 0)
        throw new ArSegError(
          ErrorCodes.NOT_FOUND,
          `${input}: a directory with no video files (${[...VIDEO_EXTENSIONS].join(' ')}), no splits.json and no video.mp4`,
        );
      for (const name of names) {
        const video = path.join(abs, name);
        clips.push({ name: video, video, hash: await hashFile(video) });
      }
      continue;
    }
    const { clips: found } = await resolveClips([abs], { split: o.split });
    for (const c of found) clips.push({ name: c.name, video: c.video, hash: await hashFile(c.video) });
  }
  return clips;
}

/**
 * On the worker: the job's inputs still have the content they were submitted with. Returns an
 * evaluation's label files. ERR_NOT_FOUND when the video is missing here (not on this machine's
 * storage), ERR_INVALID_DATA when it changed, ERR_LABELS when the labels did.
 */
export async function verifyInputs(data: JobData): Promise<string[] | null> {
  const hash = await hashFile(data.clip.video);
  if (hash !== data.clip.hash)
    throw new ArSegError(
      ErrorCodes.INVALID_DATA,
      `${data.clip.video}: the video changed since it was submitted (its content hash differs): submit it again`,
    );
  if (data.kind !== 'eval') return null;
  const labels = await labelHash(data.labels.dir, data.clip.name);
  if (labels.hash !== data.labels.hash)
    throw labelsError(
      `clip ${data.clip.name}: the labels in ${data.labels.dir} changed since they were submitted: submit again`,
    );
  return labels.list;
}
