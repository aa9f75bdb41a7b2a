/** How a command ends on an error: the code and message (or JSON with --json), and the exit code. */
import { ArSegError, toArSegError } from '../errors';
import { exitCodeFor } from './exit-codes';

export function fail(err: unknown, json: boolean): never {
  const e: ArSegError = toArSegError(err);
  if (json) {
    process.stdout.write(JSON.stringify({ ok: false, error: { code: e.code, message: e.message, framesDecoded: e.framesDecoded ?? null } }) + '\n');
  } else {
    process.stderr.write(`ar-seg: ${e.code}: ${e.message}\n`);
  }
  process.exit(exitCodeFor(e.code));
}
