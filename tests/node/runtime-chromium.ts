// Runs tests/runtimes/browser-check.mjs in headless Chromium, in a page and in a module Web Worker: bundles it with
// esbuild for the browser, serves it (and ../shared under /shared/) on 127.0.0.1, and reads the page's results.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { firstOf, folderUnder, startStaticServer } from '../../src/node/static-server';
import { launchChromium } from './chromium';
import { SHARED_DIR } from './shared-data';

const DIR = path.resolve('build', 'browser-check');

export interface BrowserCheckRun {
  results?: any[];
  error?: string;
  console: string[];
}

/** Runs the checks (or, with query "?speed", the timings of speed.mjs) in a page and in a Web Worker. */
export async function runChromiumCheck(timeoutMs = 120_000, query = ''): Promise<BrowserCheckRun> {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  await build({
    entryPoints: ['tests/runtimes/browser-check.mjs'], outfile: path.join(DIR, 'check.js'),
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'warning',
  });
  writeFileSync(path.join(DIR, 'index.html'), '<!doctype html><meta charset="utf-8"><title>remax runtime check</title>' +
    '<body>running…<script type="module" src="/check.js"></script></body>\n');
  const server = await startStaticServer(firstOf(folderUnder('/shared/', SHARED_DIR), folderUnder('/', DIR)));
  const browser = await launchChromium();
  const consoleLines: string[] = [];
  try {
    const page = await browser.newPage();
    page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
    page.on('pageerror', (error) => consoleLines.push(`pageerror: ${error.message}`));
    await page.goto(server.url + query);
    await page.waitForFunction(() => (globalThis as any).remaxCheckResults, undefined, { timeout: timeoutMs });
    return { results: await page.evaluate(() => (globalThis as any).remaxCheckResults), console: consoleLines };
  } catch (error) {
    return { error: (error as Error).message, console: consoleLines };
  } finally {
    await browser.close();
    await server.close();
  }
}
