// What every browser test shares: where the relay binary and Chromium are, the flags every
// Chromium launch here needs, a free port, and polling with a deadline (never a bare sleep
// for something that can be awaited).

import { createServer } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const RELAY = process.env.STREAMPUMP_BIN || join(ROOT, 'target/release/streampump');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Screenshots and saved frames; `make screenshots` copies some into docs/img.
export const ARTIFACTS = join(ROOT, 'target/e2e');
mkdirSync(ARTIFACTS, { recursive: true });

// Flags every launch needs on a machine without network, GPU or a user session.
export const BROWSER_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // Keep timers running at full speed although no window is focused.
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
];
// Chromium's fake camera (a moving test pattern) behind the real getUserMedia, allowed at once.
export const CAMERA_FLAGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `everyMs` until it returns a truthy value or `ms` pass; fails with `what`. */
export async function eventually(what, ms, check, everyMs = 200) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/**
 * Ends a relay this test started (`child`, with `exited` resolved on its exit): SIGTERM, then
 * SIGKILL if it is still there after 5 s. A relay already gone is left alone.
 */
export async function stopProcess(child, exited) {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
  await exited;
}
