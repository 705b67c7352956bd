// What an unwatched phone sends per hour, with idling off (what every phone did before the
// relay managed its phones) and on: the push page in Debian's Chromium with the fake camera,
// 640x480 at 10 fps (the page's defaults), the relay's own counters, and every request the
// page makes with its headers. Not a test: a measurement for docs/managed-phones.md.
//
//   make build && cd e2e && node idle-cost.mjs [SECONDS_PER_PHASE]

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RELAY = process.env.STREAMPUMP_BIN || join(ROOT, 'target/release/streampump');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SECONDS = Number(process.argv[2] || 60);
const PORT = 19000 + Math.floor(Math.random() * 900);
const BASE = `http://127.0.0.1:${PORT}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const stateDir = mkdtempSync(join(tmpdir(), 'streampump-idle-cost-'));
const relay = spawn(RELAY, ['--listen', `127.0.0.1:${PORT}`, '--state-dir', stateDir], { stdio: 'ignore' });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding'],
});
try {
  for (let i = 0; i < 50; i++) { try { if ((await fetch(`${BASE}/healthz`)).ok) break; } catch { await sleep(100); } }
  const page = await browser.newPage();
  let requests = 0, headerBytes = 0;
  page.on('request', (request) => {
    requests++;
    // Request line and the headers Chromium reports; the JPEG bodies are the relay's count
    // (Playwright does not show a Blob body).
    headerBytes += request.method().length + request.url().length + 12;
    for (const [name, value] of Object.entries(request.headers())) headerBytes += name.length + value.length + 4;
  });
  await page.goto(`${BASE}/push.html?device_id=cost`);
  const device = async () => (await (await fetch(`${BASE}/api/devices`)).json()).find((d) => d.id === 'cost');
  const results = {};
  for (const [name, idle] of [['idling off (before)', false], ['idling on (after)', true]]) {
    if (idle) await page.check('#idle'); else await page.uncheck('#idle');
    if (name.startsWith('idling off')) await page.click('#toggle');
    await sleep(6000); // settle: the rate follows the next push answer
    const first = await device();
    const [r0, b0] = [requests, headerBytes];
    const started = Date.now();
    await sleep(SECONDS * 1000);
    const last = await device();
    const hours = (Date.now() - started) / 3600e3;
    results[name] = {
      frames_per_hour: Math.round((last.frames_received - first.frames_received) / hours),
      jpeg_bytes_per_hour: Math.round((last.bytes_received - first.bytes_received) / hours),
      requests_per_hour: Math.round((requests - r0) / hours),
      request_header_bytes_per_hour: Math.round((headerBytes - b0) / hours),
      encode_ms_last_report: last.health && last.health.encode_ms,
      mean_frame_bytes: Math.round((last.bytes_received - first.bytes_received) / Math.max(1, last.frames_received - first.frames_received)),
    };
  }
  console.log(JSON.stringify({ seconds_per_phase: SECONDS, ...results }, null, 2));
} finally {
  await browser.close();
  relay.kill('SIGTERM');
  rmSync(stateDir, { recursive: true, force: true });
}
