// Example as-pect spec: a small SIMD kernel defined right here, checked against a scalar loop.
// Run: npm run test:as  (node tests/as/run-aspect.mjs; runs every spec for `simd` and `relaxed`)
//
// Writing kernel specs
// --------------------
// * Import the code under test relatively, e.g.
//     import { dot } from "../../assembly/kernels/dot";
//   Each spec is compiled to its own module together with @as-pect/assembly (managed
//   `incremental` runtime, debug build) with the features of the mode: `simd`, or
//   `simd` + `relaxed-simd`, so `ASC_FEATURE_RELAXED_SIMD` selects the same kernel branch as
//   in the real build/remax.relaxed.wasm.
// * Float buffers: allocate raw memory and pass the pointer, as the host does:
//     const p = heap.alloc(n << 2);                  // n f32, 16-byte aligned, not zeroed
//     store<f32>(p + (<usize>i << 2), v);  load<f32>(p + (<usize>i << 2));
//     ...
//     heap.free(p);                                  // optional, keeps rtrace quiet
//   `memory.data(n << 2, 16)` (static, zeroed, fixed size) works too, and so does
//   `const a = new StaticArray<f32>(n)` with `changetype<usize>(a)` as the data pointer
//   (keep `a` referenced while the kernel runs).
// * Assertions: use explicit primitive type arguments --
//     expect<f32>(got).toBeCloseTo(want, 5);          // |got - want| < 1e-5 (absolute!)
//     expect<i32>(x).toBe(y);  expect<bool>(ok).toBe(true);
//   toBeCloseTo's tolerance is absolute (10^-digits), so for sums of many products compare the
//   relative error against 0 (see `relErr` below) rather than the raw values. Results of
//   relaxed-simd (relaxed_madd may or may not fuse) and SIMD reassociation differ from a
//   scalar loop in the last bits: never compare such floats with toBe.
//   Class/array assertions (toStrictEqual on objects, StaticArray<f32>, ...) also work.
// * Editor/type checking: tests/as/tsconfig.json (AS std + as-pect globals): `npx tsc -p tests/as`.
// * `log<f32>(x)` prints a value in the test output; test/group names filter with
//   `node tests/as/run-aspect.mjs --test <regex>`; `--mode simd` runs one mode only.

const N = 37; // 9 full f32x4 lanes + a scalar tail of 1

/** xorshift32 -> non-zero f32 in [-1, 1). */
let rngState: u32 = 0x9e3779b9;
function nextF32(): f32 {
  rngState ^= rngState << 13;
  rngState ^= rngState >> 17;
  rngState ^= rngState << 5;
  const v = <f32>(<f64>(rngState >>> 8) / 8388608.0 - 1.0);
  return v != 0 ? v : 0.5;
}

function fillRandom(p: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<f32>(p + (<usize>i << 2), nextF32());
}

/** Reference: plain scalar loop, accumulated in f64. */
function dotScalar(a: usize, b: usize, n: i32): f64 {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) {
    s += <f64>load<f32>(a + (<usize>i << 2)) * <f64>load<f32>(b + (<usize>i << 2));
  }
  return s;
}

/** SIMD dot product: 4 lanes at a time, horizontal sum, scalar tail. */
function dotSimd(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const off = <usize>i << 2;
    const va = v128.load(a + off);
    const vb = v128.load(b + off);
    if (ASC_FEATURE_RELAXED_SIMD) {
      acc = f32x4.relaxed_madd(va, vb, acc);
    } else {
      acc = f32x4.add(acc, f32x4.mul(va, vb));
    }
  }
  let s =
    f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

/** |got - want| / max(|want|, 1): compare with toBeCloseTo(0, digits). */
function relErr(got: f64, want: f64): f64 {
  return Math.abs(got - want) / Math.max(Math.abs(want), 1.0);
}

describe("dotSimd (example kernel)", () => {
  test("matches the scalar loop on 37 pseudo-random values", () => {
    const a = heap.alloc(N << 2);
    const b = heap.alloc(N << 2);
    fillRandom(a, N);
    fillRandom(b, N);

    const want = dotScalar(a, b, N);
    const got = dotSimd(a, b, N);
    expect<bool>(want != 0).toBe(true); // the data is not degenerate
    expect<f64>(relErr(<f64>got, want)).toBeCloseTo(0, 5);
    expect<f32>(got).toBeCloseTo(<f32>want, 4);

    heap.free(a);
    heap.free(b);
  });

  test("handles every tail length 0..7", () => {
    const a = heap.alloc(8 << 2);
    const b = heap.alloc(8 << 2);
    fillRandom(a, 8);
    fillRandom(b, 8);
    for (let n = 0; n < 8; n++) {
      expect<f64>(relErr(<f64>dotSimd(a, b, n), dotScalar(a, b, n))).toBeCloseTo(0, 5);
    }
    expect<f32>(dotSimd(a, b, 0)).toBe(0);
    heap.free(a);
    heap.free(b);
  });

  test("works on a StaticArray<f32> buffer (dot(x, x) == |x|^2)", () => {
    const x = new StaticArray<f32>(N);
    for (let i = 0; i < N; i++) x[i] = <f32>(i + 1);
    const got = dotSimd(changetype<usize>(x), changetype<usize>(x), N);
    expect<f32>(got).toBe(<f32>(N * (N + 1) * (2 * N + 1) / 6)); // exact: small integers
  });
});

describe("build flags", () => {
  test("SIMD is enabled", () => {
    expect<bool>(ASC_FEATURE_SIMD).toBe(true);
    // 9 full vectors for N = 37, the kernels' lane arithmetic in i32
    expect<i32>(N >> 2).toBe(9);
    expect<i32>(i32x4.extract_lane(i32x4.add(i32x4.splat(20), i32x4.splat(22)), 3)).toBe(42);
  });
});
