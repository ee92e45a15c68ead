#!/usr/bin/env node
// Runs the AssemblyScript unit tests (tests/as/**/*.spec.ts) with as-pect, once per SIMD mode:
//
//   simd     --enable simd                 (ASC_FEATURE_RELAXED_SIMD == false)
//   relaxed  --enable simd,relaxed-simd    (ASC_FEATURE_RELAXED_SIMD == true)
//
// and ends with one line `N passed, N failed` (totals over all modes; CI parses it). Exit code
// is 1 if any test failed, a spec did not compile/instantiate/start, or no test ran at all.
//
// Usage:  node tests/as/run-aspect.mjs [options] [spec filter ...] [-- extra asc args]
//   --mode <m>        simd | relaxed | all (default: all; env ASPECT_MODES=simd,relaxed)
//   --verbose         print every group/test (as-pect VerboseReporter), not only failures
//   --test <regex>    only run tests whose name matches (as-pect -t); --group <regex> likewise
//   --output-binary   also write build/aspect/<spec>.<mode>.wasm/.wat for inspection
//   spec filter       run only specs whose path contains one of these strings
//   -- <args>         extra asc options, e.g. `-- -O3` to test the optimized code paths
//   --no-rerun        never re-run under `node --experimental-wasm-relaxed-simd` (see below)
//
// Relaxed SIMD: Node 20 needs `--experimental-wasm-relaxed-simd` (newer Node versions have it on
// by default; this is probed). If this process cannot run relaxed SIMD, the runner re-runs itself
// once in a child `node --experimental-wasm-relaxed-simd` (which then runs both modes and prints
// the summary). If the runtime cannot do relaxed SIMD even then, the relaxed pass is skipped with
// a notice -- unless it was asked for explicitly (--mode relaxed / ASPECT_MODES=relaxed), in
// which case that counts as a failure.
//
// Why not the `asp` CLI: @as-pect/cli 8.1.0 imports @assemblyscript/loader without declaring it
// (npm nests it under @as-pect/core, so the CLI cannot even start here), runs every file through
// @as-pect/transform (which is built for AssemblyScript 0.27 and breaks class assertions on
// 0.28, see aspect-transform.mjs), prints no machine-readable totals and only knows one
// compiler configuration. This script does what the CLI does -- compile each spec together
// with @as-pect/assembly, instantiate it with as-pect.config.js, run @as-pect/core's
// TestContext with as-pect's Summary/Verbose reporter -- plus the modes and the totals.
//
// Compile one spec by hand (e.g. to read the generated code):
//   npx asc tests/as/example.spec.ts --config tests/as/as-pect.asconfig.json --target relaxed \
//     --transform ./tests/as/aspect-transform.mjs --outFile /tmp/t.wasm --textFile /tmp/t.wat
// (the transform cannot live in that asconfig: asc 0.28 drops the leading "./" of a relative
// transform path from a config file and then fails to resolve it as a package name).

import { spawn } from "node:child_process";
import { existsSync, promises as fsp, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { performance } from "node:perf_hooks";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CALLER_CWD = process.cwd();
process.chdir(ROOT);
const require = createRequire(import.meta.url);

// loaded in main(), after the decision to re-run with the relaxed-SIMD flag
let asc, ascVersion, TestContext, SummaryReporter, VerboseReporter, loader;

const RELAXED_FLAG = "--experimental-wasm-relaxed-simd";
const ALL_MODES = ["simd", "relaxed"];

// ---------------------------------------------------------------------------------------------
// command line

function parseArgs(argv) {
  const opts = {
    modes: null,
    modesExplicit: false,
    verbose: false,
    test: "(:?)",
    group: "(:?)",
    outputBinary: false,
    filters: [],
    ascArgs: [],
    noRerun: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const eq = arg.indexOf("=");
      if (eq >= 0) return arg.slice(eq + 1);
      if (i + 1 >= argv.length) fatal(`missing value for ${arg}`);
      return argv[++i];
    };
    const name = arg.split("=")[0];
    if (arg === "--") {
      opts.ascArgs = argv.slice(i + 1);
      break;
    } else if (name === "--mode" || name === "--modes") {
      const m = value();
      opts.modes = m === "all" ? ALL_MODES.slice() : m.split(",").map((s) => s.trim()).filter(Boolean);
      opts.modesExplicit = m !== "all";
    } else if (arg === "--verbose") opts.verbose = true;
    else if (arg === "--summary") opts.verbose = false;
    else if (name === "--test" || name === "-t") opts.test = value();
    else if (name === "--group" || name === "-g") opts.group = value();
    else if (arg === "--output-binary" || arg === "-o") opts.outputBinary = true;
    else if (arg === "--no-rerun") opts.noRerun = true;
    else if (arg.startsWith("-")) fatal(`unknown option ${arg}`);
    else {
      // a path (relative to the caller's cwd) or any substring of a spec path
      const abs = path.resolve(CALLER_CWD, arg);
      opts.filters.push(existsSync(abs) ? path.relative(ROOT, abs).split(path.sep).join("/") : arg.replace(/^\.\//, ""));
    }
  }
  if (!opts.modes) {
    const env = (process.env.ASPECT_MODES || "").trim();
    opts.modes = env && env !== "all" ? env.split(",").map((s) => s.trim()).filter(Boolean) : ALL_MODES.slice();
    opts.modesExplicit = Boolean(env) && env !== "all";
  }
  for (const m of opts.modes) if (!ALL_MODES.includes(m)) fatal(`unknown mode '${m}' (expected ${ALL_MODES.join(", ")} or all)`);
  return opts;
}

function fatal(message) {
  process.stderr.write(`run-aspect: ${message}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// helpers

/** @assemblyscript/loader as used by as-pect (nested under @as-pect/core by npm). */
function loadAsLoader() {
  try {
    return require("@assemblyscript/loader");
  } catch {
    return createRequire(require.resolve("@as-pect/core"))("@assemblyscript/loader");
  }
}

/** Minimal glob (`**`, `*`, `?`) relative to ROOT; Node 20 has no fs.glob. */
function glob(pattern) {
  const parts = pattern.split("/");
  const firstMagic = parts.findIndex((p) => /[*?[]/.test(p));
  if (firstMagic < 0) return existsSync(pattern) ? [pattern] : [];
  const base = parts.slice(0, firstMagic).join("/") || ".";
  const source = parts
    .map((p) => (p === "**" ? "(?:[^/]+/)*" : p.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]") + "/"))
    .join("")
    .replace(/\/$/, "");
  const re = new RegExp(`^${source}$`);
  const out = [];
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name === "node_modules" || e.name.startsWith(".")) continue;
      const rel = dir === "." ? e.name : `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (re.test(rel)) out.push(rel);
    }
  };
  if (existsSync(base) && statSync(base).isDirectory()) walk(base);
  return out.sort();
}

/** Can this process compile relaxed SIMD? (f32x4.relaxed_madd in a tiny module) */
function relaxedSimdSupported() {
  // (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd)
  const bytes = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b,
    0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20,
    0x02, 0xfd, 0x85, 0x02, 0x0b,
  ]);
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

const color = (code) => (s) => (process.stdout.isTTY || process.env.FORCE_COLOR ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = color("1");
const red = color("31");
const yellow = color("33");

/**
 * Wraps as-pect's Summary/Verbose reporter: counts failures of groups themselves (a trapping
 * describe() body, beforeAll/beforeEach/afterEach/afterAll callback, or the module start), and
 * before the final report drops the tests/groups that did not run because of --test/--group
 * (as-pect 8 leaves them in the tree with pass=false, which fails the whole file).
 */
class CountingReporter {
  constructor(inner) {
    this.inner = inner;
    this.groupFailures = 0;
    this.failedGroups = [];
  }
  set stdout(w) {
    this.inner.stdout = w;
  }
  get stdout() {
    return this.inner.stdout;
  }
  set stderr(w) {
    this.inner.stderr = w;
  }
  get stderr() {
    return this.inner.stderr;
  }
  onEnter(ctx, node) {
    this.inner.onEnter(ctx, node);
  }
  onExit(ctx, node) {
    // TestContext calls addResult(node, ok) right before onExit; for a group ok=false means the
    // group itself failed (failing children do not count here, they are counted as tests).
    if (node.type === 1 /* TestNodeType.Group */) {
      const fails = ctx.groupCount - ctx.groupPassCount;
      if (fails > this.groupFailures) {
        node.ownFailure = true;
        this.failedGroups.push(node);
      }
      this.groupFailures = fails;
    }
    this.inner.onExit(ctx, node);
  }
  onFinish(ctx) {
    const settle = (node) => {
      node.children = node.children.filter((c) => c.ran);
      if (node.type === 1) node.pass = !node.ownFailure && node.children.map(settle).every(Boolean);
      return node.pass;
    };
    settle(ctx.rootNode);
    ctx.pass = ctx.rootNode.pass && ctx.errors.length === 0;
    this.inner.onFinish(ctx);
  }
}

// ---------------------------------------------------------------------------------------------
// one mode, in this process

async function runMode(mode, opts, config, specs) {
  const result = { passed: 0, failed: 0, files: 0 };
  const fileCache = new Map();
  const dirCache = new Map();
  const { default: AspectTransform } = await import(pathToFileURL(path.resolve(config.transform)).href);
  const includes = [];
  for (const g of config.include || []) for (const f of glob(g)) if (!includes.includes(f)) includes.push(f);

  process.stdout.write(bold(`\n=== as-pect [${mode}] ===`) + ` asc ${ascVersion}, ${specs.length} spec file(s)\n`);
  for (const spec of specs) {
    result.files++;
    const outputs = new Map();
    const wantBinary = opts.outputBinary || config.outputBinary;
    const ascArgs = [spec, ...includes, "--config", config.asconfig, "--target", mode, "--outFile", "output.wasm"];
    if (wantBinary) ascArgs.push("--textFile", "output.wat");
    const compiled = await asc([...ascArgs, ...opts.ascArgs], {
      readFile(filename, baseDir) {
        const file = path.join(baseDir, filename);
        if (!fileCache.has(file)) {
          let text = null;
          try {
            text = readFileSync(file, "utf8");
          } catch {}
          fileCache.set(file, text);
        }
        return fileCache.get(file);
      },
      writeFile(filename, contents) {
        outputs.set(filename, contents);
      },
      listFiles(dirname, baseDir) {
        const dir = path.join(baseDir, dirname);
        if (!dirCache.has(dir)) {
          let files = null;
          try {
            files = readdirSync(dir).filter((f) => /^(?!.*\.d\.ts$).*\.ts$/.test(f));
          } catch {}
          dirCache.set(dir, files);
        }
        return dirCache.get(dir);
      },
      stdout: process.stdout,
      stderr: process.stderr,
      transforms: [AspectTransform],
    });
    const label = `${spec} [${mode}]`;
    const key = (ext) => [...outputs.keys()].find((k) => k.endsWith(ext));
    const binary = key(".wasm") && outputs.get(key(".wasm"));
    if (compiled.error || !binary) {
      process.stdout.write(red(`❌ ${label} did not compile: ${compiled.error ? compiled.error.message : "no output"}\n`));
      result.failed++;
      continue;
    }
    if (wantBinary) {
      const base = path.join("build/aspect", spec.replace(/^tests\/as\//, "").replace(/\.ts$/, `.${mode}`));
      await fsp.mkdir(path.dirname(base), { recursive: true });
      await fsp.writeFile(`${base}.wasm`, binary);
      if (key(".wat")) await fsp.writeFile(`${base}.wat`, outputs.get(key(".wat")));
    }

    const reporter = new CountingReporter(opts.verbose ? new VerboseReporter() : new SummaryReporter());
    reporter.stdout = process.stdout;
    reporter.stderr = process.stderr;
    const ctx = new TestContext({
      reporter,
      binary,
      fileName: label,
      testRegex: new RegExp(opts.test),
      groupRegex: new RegExp(opts.group),
    });
    let module;
    try {
      const memory = new WebAssembly.Memory({ initial: 10 });
      module = await config.instantiate(memory, (...imports) => ctx.createImports(...imports), loader.instantiate, binary);
    } catch (err) {
      process.stdout.write(red(`❌ ${label} could not be instantiated: ${err && err.stack ? err.stack : err}\n`));
      result.failed++;
      continue;
    }
    try {
      ctx.run(module);
    } catch (err) {
      process.stdout.write(red(`❌ ${label} crashed the test host: ${err && err.stack ? err.stack : err}\n`));
      result.failed++;
      continue;
    }
    // Every failed test counts once, and so does every group that failed by itself (trap in a
    // describe() body or a before/after callback, which also skips that group's remaining tests)
    // and a module whose start trapped (root group). Host-side errors (rtrace, reflection) that
    // did not fail a test or group count once for the file.
    const failedTests = ctx.testCount - ctx.testPassCount;
    const failedGroups = ctx.groupCount - ctx.groupPassCount;
    const otherErrors = failedTests + failedGroups === 0 && ctx.errors.length > 0 ? 1 : 0;
    result.passed += ctx.testPassCount;
    result.failed += failedTests + failedGroups + otherErrors;
    if (failedGroups + otherErrors > 0) {
      process.stdout.write(red(`❌ ${label}: ${failedGroups + otherErrors} failure(s) outside of a test\n`));
      for (const g of reporter.failedGroups) {
        const where = g === ctx.rootNode ? "module start / top level" : `describe("${g.name}") or its before/after hooks`;
        const trace = (g.stackTrace || "").split("\n").filter((l) => /wasm-function/.test(l)).slice(0, 3).map((l) => l.trim());
        process.stdout.write(`    ${where}: ${g.message || "trapped"}${trace.length ? `\n      ${trace.join("\n      ")}` : ""}\n`);
      }
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// main

/** Re-runs this script in `node <flags>` with the same arguments; resolves to its exit code. */
function rerunWithFlags(flags) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...flags, fileURLToPath(import.meta.url), "--no-rerun", ...process.argv.slice(2)], {
      stdio: "inherit",
      cwd: CALLER_CWD,
    });
    child.on("error", () => resolve(9));
    child.on("exit", (code, signal) => resolve(signal ? 1 : code));
  });
}

const opts = parseArgs(process.argv.slice(2));

if (!opts.noRerun && opts.modes.includes("relaxed") && !relaxedSimdSupported()) {
  const code = await rerunWithFlags([RELAXED_FLAG]);
  // 9 = node rejected the option (a runtime without that flag): carry on here without it.
  if (code !== 9) process.exit(code);
  process.stdout.write(yellow(`run-aspect: node does not accept ${RELAXED_FLAG}\n`));
}

({ main: asc, version: ascVersion } = await import("assemblyscript/dist/asc.js"));
({ TestContext, SummaryReporter, VerboseReporter } = await import("@as-pect/core"));
loader = loadAsLoader();

const config = (await import(pathToFileURL(path.join(ROOT, "as-pect.config.js")).href)).default;
config.asconfig ||= "tests/as/as-pect.asconfig.json";
config.transform ||= "tests/as/aspect-transform.mjs";
if (typeof config.instantiate !== "function") {
  config.instantiate = (memory, createImports, instantiate, binary) => instantiate(binary, createImports({ env: { memory } }));
}

const specs = [];
for (const g of config.entries || ["tests/as/**/*.spec.ts"]) {
  for (const f of glob(g)) {
    if ((config.disclude || []).some((re) => re.test(f))) continue;
    if (opts.filters.length && !opts.filters.some((s) => f.includes(s))) continue;
    if (!specs.includes(f)) specs.push(f);
  }
}

const t0 = performance.now();
let passed = 0;
let failed = 0;
if (specs.length === 0) {
  const filter = opts.filters.length ? ` and filter ${opts.filters.join(" ")}` : "";
  process.stdout.write(red(`run-aspect: no spec files matched ${JSON.stringify(config.entries)}${filter}\n`));
}
for (const mode of specs.length ? opts.modes : []) {
  if (mode === "relaxed" && !relaxedSimdSupported()) {
    const msg = `relaxed SIMD is not supported by this runtime (node ${process.version}, ${process.execArgv.includes(RELAXED_FLAG) ? "even with" : "without"} ${RELAXED_FLAG})`;
    if (opts.modesExplicit) {
      process.stdout.write(red(`\n=== as-pect [${mode}] === ${msg}: FAILED (explicitly requested)\n`));
      failed += 1;
    } else {
      process.stdout.write(yellow(`\n=== as-pect [${mode}] === skipped: ${msg}\n`));
    }
    continue;
  }
  const tm = performance.now();
  const r = await runMode(mode, opts, config, specs);
  passed += r.passed;
  failed += r.failed;
  const secs = ((performance.now() - tm) / 1000).toFixed(2);
  process.stdout.write(`--- [${mode}] tests: ${r.passed} ok, ${r.failed} not ok, in ${r.files} file(s), ${secs}s\n`);
}
const noTests = passed + failed === 0;
if (noTests) process.stdout.write(red("run-aspect: no test ran\n"));
process.stdout.write(`\nas-pect total time ${((performance.now() - t0) / 1000).toFixed(2)}s\n`);
// The one line CI parses. Keep it exactly `N passed, N failed`, alone on its line.
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exitCode = failed > 0 || noTests ? 1 : 0;
