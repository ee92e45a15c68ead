/** A bump allocator over byte offsets of linear memory: the memory plan is a sequence of named reservations. */
export class Arena {
  constructor(public end: number) {}

  /** Reserves `bytes` at an `align`-byte boundary (64: a cache line, so no two buffers share one) and returns the offset. */
  take(bytes: number, align = 64): number {
    const at = Math.ceil(this.end / align) * align;
    this.end = at + bytes;
    return at;
  }
}

export const WASM_PAGE_BYTES = 65536;
/** wasm32 addresses 4 GiB at most. */
export const WASM_MAX_PAGES = 65536;
