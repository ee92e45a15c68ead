// The shared test data (models and reference outputs) sits beside the project root in ../shared; tests run from
// the project root. When it is absent (a user's fresh clone) the tests that need it skip with this reason.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const SHARED_DIR = path.resolve(process.cwd(), '..', 'shared');
export const sharedPath = (relative: string): string => path.join(SHARED_DIR, relative);

/** false when every file exists, else a skip reason naming the missing ones (also printed once). */
export function skipUnlessShared(...relatives: string[]): string | false {
  const missing = relatives.map(sharedPath).filter((p) => !existsSync(p));
  if (missing.length === 0) return false;
  const reason = `shared test data not found: ${missing.join(', ')} (it lives in ../shared beside the project root)`;
  console.log(`skipping: ${reason}`);
  return reason;
}

export const readShared = (relative: string): Uint8Array => new Uint8Array(readFileSync(sharedPath(relative)));
export const readSharedJson = <T = any>(relative: string): T => JSON.parse(readFileSync(sharedPath(relative), 'utf8')) as T;

export const MODEL_NAMES = ['stories260K.bin', 'aidreams260K.bin'] as const;
