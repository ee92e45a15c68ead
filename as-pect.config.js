// as-pect configuration for the AssemblyScript unit tests (tests/as/**/*.spec.ts).
//
// Run with `npm run test:as` (= `node tests/as/run-aspect.mjs`), NOT with the `asp` binary:
// @as-pect/cli 8.1.0 does not work with this install (it imports @assemblyscript/loader, which
// it does not declare, so npm nests the loader under @as-pect/core and the CLI cannot resolve
// it; it also compiles with @as-pect/transform, which is broken on AssemblyScript 0.28).
// tests/as/run-aspect.mjs drives @as-pect/core's TestContext directly, using the fields below,
// which keep the same meaning as in as-pect's own config format.
export default {
  /** Globs (relative to the project root) of the test files; each is compiled to its own module. */
  entries: ["tests/as/**/*.spec.ts"],
  /** Globs of files added to every compilation (shared helpers, as-pect `*.include.ts`). */
  include: ["tests/as/**/*.include.ts"],
  /** Test files whose path matches one of these are skipped. */
  disclude: [/node_modules/],
  /**
   * The asc config used for the tests, relative to the project root. Its targets are the
   * test "modes": `simd` and `relaxed` (simd + relaxed-simd, i.e. ASC_FEATURE_RELAXED_SIMD).
   * (Not an as-pect field; as-pect's CLI takes this as `--as-config`.)
   */
  asconfig: "tests/as/as-pect.asconfig.json",
  /** The AST transform as-pect needs, ported to AssemblyScript 0.28 (not an as-pect field). */
  transform: "tests/as/aspect-transform.mjs",
  /**
   * Instantiate a compiled test module. `createImports` adds as-pect's `__aspect`, `rtrace` and
   * `env.abort/trace` imports; put any extra imports the code under test needs in `myImports`.
   * The test modules export their own memory (as-pect needs the managed runtime), so `memory`
   * is only used if a module imports one.
   */
  async instantiate(memory, createImports, instantiate, binary) {
    const myImports = {
      env: { memory },
    };
    return instantiate(binary, createImports(myImports));
  },
  /** Also write each test module to build/aspect/<spec>.<mode>.wasm/.wat (or pass `--output-binary`). */
  outputBinary: false,
};
