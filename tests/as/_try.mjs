import { main as asc } from "assemblyscript/dist/asc.js";
import { createRequire } from "module";
import fs from "fs";
const spec = process.argv[2];
const files = new Map();
const transformMod = process.argv[3] || "@as-pect/transform";
const res = await asc([spec, "node_modules/@as-pect/assembly/assembly/index.ts",
  "--config", "/nonexistent.json", "--runtime", "incremental", "--exportStart", "_start", "--exportRuntime", "--exportTable", "--debug", "--use", "RTRACE=1",
  "--enable", "simd", "--outFile", "output.wasm", "--transform", transformMod], {
  writeFile(name, contents) { files.set(name, contents); }, stderr: process.stderr, stdout: process.stdout,
});
console.log("error:", res.error && res.error.message, [...files.keys()]);
