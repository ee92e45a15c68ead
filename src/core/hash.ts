// FNV-1a, 32-bit: enough to tell two files or checkpoints apart (not a cryptographic hash), fast on megabytes.

const OFFSET = 0x811c9dc5, PRIME = 0x01000193;

/** Continues the hash `h` over `bytes` (start with fnv1a()). */
export function fnv1a(bytes: Uint8Array = new Uint8Array(0), h = OFFSET): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, PRIME);
  return h >>> 0;
}

/** Continues the hash over 32-bit words (a float32 tensor's bits): four times fewer steps than over its bytes. */
export function fnv1aWords(words: Uint32Array, h = OFFSET): number {
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, PRIME);
  return h >>> 0;
}

export const hex8 = (h: number): string => h.toString(16).padStart(8, '0');
