// Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by npm playwright-core, with the flags
// this machine's closed network needs. `chromiumUnavailable()` gives the skip reason when it is not installed.
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.REMAX_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic'];

export function chromiumUnavailable(): string | undefined {
  if (!existsSync(CHROMIUM_PATH)) {
    return `no Chromium at ${CHROMIUM_PATH} (install it with: apt-get install chromium; .ci/run does this)`;
  }
  return undefined;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: FLAGS, headless: true });
}
