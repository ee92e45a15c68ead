// Stop strings (--stop "STRING"): a response ends where its text first contains one. Generation runs in WASM on
// token ids; the host finds the first token whose text completes a stop string and cuts the ids there (that token
// is kept, as a stop token is), and the text before the stop string is the response's text.

/** Where a response's ids and text end under `stops`: `length` ids, `text` (without the stop string), or null when none occurs. */
export function findStopString(ids: readonly number[], textOf: (ids: readonly number[]) => string, stops: readonly string[]):
  { length: number; text: string } | null {
  if (stops.length === 0 || ids.length === 0) return null;
  const firstStop = (text: string): number => stops.reduce((at, s) => {
    const i = text.indexOf(s);
    return i >= 0 && (at < 0 || i < at) ? i : at;
  }, -1);
  const full = textOf(ids);
  const at = firstStop(full);
  if (at < 0) return null;
  // The shortest prefix of the ids whose text contains a stop string: a prefix's text only grows with more ids, so
  // a binary search finds it.
  let lo = 1, hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (firstStop(textOf(ids.slice(0, mid))) >= 0) hi = mid;
    else lo = mid + 1;
  }
  return { length: lo, text: full.slice(0, at) };
}
