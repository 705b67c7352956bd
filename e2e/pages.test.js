// End-to-end tests of the push page and the dashboard in a real browser (`make e2e`).
//
// The parts are the real ones: the release binary of the relay on 127.0.0.1, Debian's
// Chromium driven by playwright-core (no downloaded browser), Chromium's fake camera (a moving
// test pattern) behind the real getUserMedia, and Debian's ffmpeg and ffprobe as viewers. The QR
// codes are read back with zbarimg, and the phone that opens them trusts the relay's HTTPS
// through its own NSS store (certutil), as a phone does after installing the certificate.
// Screenshots of both pages go to target/e2e/ (`make screenshots` copies them into docs/).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { networkInterfaces, tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { chromium } from 'playwright-core';
import {
  RELAY, CHROMIUM, ARTIFACTS, BROWSER_FLAGS, CAMERA_FLAGS, freePort, sleep, stopProcess, eventually,
} from './support.js';

const DEVICE = 'e2e_cam';
// The page is asked for 10 fps. Headless Chromium on a loaded 2-core CI machine renders its
// fake camera and encodes JPEGs in software, so well under 10 is normal; 3 fps is far above
// what a broken pipeline (one frame, then nothing) would show, and is what a slow phone gives.
const MIN_INPUT_FPS = 3;



class Relay {
  // `args`: more flags; `viewToken`: presented by `device()` on a relay that needs one;
  // `bind`: the address it listens on (loopback unless a test needs phones to reach it).
  constructor(port, args = [], viewToken = '', bind = '127.0.0.1') {
    this.port = port;
    this.bind = bind;
    this.base = `http://127.0.0.1:${port}`;
    this.log = '';
    this.args = args;
    this.viewToken = viewToken;
  }

  async start() {
    const tls = this.args.includes('--tls-listen') ? [] : ['--tls-listen', 'off'];
    this.process = spawn(RELAY, ['--listen', `${this.bind}:${this.port}`, ...tls, ...this.args], {
      env: { ...process.env, RUST_LOG: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process.stdout.on('data', (chunk) => { this.log += chunk; });
    this.process.stderr.on('data', (chunk) => { this.log += chunk; });
    this.exited = new Promise((resolve) => this.process.on('exit', resolve));
    await eventually('the relay to answer /healthz', 10000, async () => {
      const response = await fetch(`${this.base}/healthz`);
      return response.ok;
    });
  }

  async stop() {
    await stopProcess(this.process, this.exited);
  }

  async device(id) {
    const query = this.viewToken ? `?token=${this.viewToken}` : '';
    const response = await fetch(`${this.base}/api/devices${query}`);
    const devices = await response.json();
    return devices.find((device) => device.id === id);
  }
}

function run(command, args, timeoutMs) {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, encoding: 'buffer', maxBuffer: 64 << 20 },
      (error, stdout, stderr) => resolve({ error, stdout, stderr: stderr.toString() }));
  });
}

let relay;
let browser;

before(async () => {
  // On every address, as a relay for phones is: the dashboard then offers links and codes.
  relay = new Relay(await freePort(), [], '', '0.0.0.0');
  await relay.start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...BROWSER_FLAGS, ...CAMERA_FLAGS],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (relay) await relay.stop();
});

// Shared between the tests below, which run in order: the phone page keeps streaming.
let phone;
// Pushes the phone page has in flight, and the most it ever had at once.
let inFlight = 0;
let mostInFlight = 0;

test('the push page streams the camera at 640x480', async () => {
  const context = await browser.newContext({ viewport: { width: 412, height: 860 } });
  phone = await context.newPage();
  const isPush = (request) => request.url().includes('/pump_push/');
  phone.on('request', (request) => {
    if (isPush(request)) mostInFlight = Math.max(mostInFlight, ++inFlight);
  });
  for (const end of ['requestfinished', 'requestfailed']) {
    phone.on(end, (request) => { if (isPush(request)) inFlight--; });
  }
  await phone.goto(`${relay.base}/push.html?device_id=${DEVICE}`);
  assert.equal(await phone.inputValue('#device'), DEVICE);
  await phone.selectOption('#size', '640x480');
  await phone.selectOption('#fps-target', '10');
  // Full rate although nobody watches: these tests measure the pipeline, not idling
  // (e2e/managed.test.js does).
  await phone.uncheck('#idle');
  await phone.click('#toggle');

  const device = await eventually(`${DEVICE} online at ${MIN_INPUT_FPS}+ fps`, 20000, async () => {
    const found = await relay.device(DEVICE);
    return found && found.online && found.input_fps >= MIN_INPUT_FPS && found;
  });
  assert.equal(device.width, 640);
  assert.equal(device.height, 480);
  assert.equal(await phone.textContent('#toggle'), 'Stop');
  assert.match(await phone.textContent('#state'), /Streaming as e2e_cam/);
  // The page's own figures follow what it sends.
  await eventually('the page to show its frame rate', 5000, async () =>
    parseFloat(await phone.textContent('#fps')) > 0);
  assert.ok(parseFloat(await phone.textContent('#kb')) > 1, 'KB per frame shown');
  assert.ok(parseInt(await phone.textContent('#rtt'), 10) >= 0, 'round trip shown');
  await phone.screenshot({ path: join(ARTIFACTS, 'push.png') });
});

test('ffmpeg decodes 30 frames of the stream and the snapshot is 640x480', async () => {
  const url = `${relay.base}/live.mjpeg?device_id=${DEVICE}`;
  const decoded = await run('ffmpeg', ['-nostdin', '-v', 'error', '-rw_timeout', '10000000',
    '-i', url, '-frames:v', '30', '-f', 'rawvideo', '-pix_fmt', 'gray', '-'], 60000);
  assert.equal(decoded.error, null, `ffmpeg failed: ${decoded.stderr}`);
  assert.equal(decoded.stderr.trim(), '', 'ffmpeg reported problems');
  assert.equal(decoded.stdout.length, 640 * 480 * 30, 'thirty 640x480 frames');

  const snapshot = Buffer.from(await (await fetch(`${relay.base}/snapshot.jpg?device_id=${DEVICE}`)).arrayBuffer());
  const file = join(ARTIFACTS, 'snapshot.jpg');
  writeFileSync(file, snapshot);
  const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height',
    '-of', 'csv=p=0', file], 20000);
  assert.equal(probe.error, null, probe.stderr);
  assert.equal(probe.stdout.toString().trim(), 'mjpeg,640,480');
});

test('the push page rides out a relay restart by itself', async () => {
  await relay.stop();
  await eventually('the page to show the failure', 15000, async () =>
    (await phone.getAttribute('#state', 'class')) === 'bad' &&
    /Push failed/.test(await phone.textContent('#state')));
  const errors = parseInt(await phone.textContent('#errors'), 10);
  assert.ok(errors >= 1, 'the error count went up');

  await relay.start();
  // A new relay knows nothing: frames arriving there come from the page's own retries.
  const device = await eventually(`${DEVICE} back on the new relay`, 30000, async () => {
    const found = await relay.device(DEVICE);
    return found && found.online && found.frames_received >= 5 && found;
  });
  assert.equal(device.width, 640);
  await eventually('the page to say it streams again', 10000, async () =>
    (await phone.getAttribute('#state', 'class')) === 'ok');
  assert.equal(await phone.textContent('#toggle'), 'Stop');
});

test('a relay that stops answering is waited out, one push at a time', async () => {
  // A frozen relay still accepts connections (the kernel does) but never answers: the push
  // hangs until the page gives up on it, then the page retries on its own.
  relay.process.kill('SIGSTOP');
  try {
    await eventually('the page to give up on the hung push', 20000, async () =>
      /no answer from the relay within 10 s/.test(await phone.textContent('#state')));
  } finally {
    relay.process.kill('SIGCONT');
  }
  await eventually('the page to stream again', 30000, async () =>
    /Streaming as e2e_cam again/.test(await phone.textContent('#state')));
  const before = (await relay.device(DEVICE)).frames_received;
  await eventually('new frames after the freeze', 10000, async () =>
    (await relay.device(DEVICE)).frames_received >= before + 5);
  assert.equal(mostInFlight, 1, 'never more than one push in flight');
});

test('the dashboard shows the device with a live 640-wide preview', async () => {
  for (const [name, viewport] of [['dashboard', { width: 1280, height: 800 }],
    ['dashboard-phone', { width: 412, height: 860 }]]) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    await page.goto(`${relay.base}/`);
    assert.equal(await page.title(), 'streampump');
    const card = page.locator('.card', { hasText: DEVICE });
    await card.waitFor({ timeout: 5000 });
    await eventually('the preview to show a frame', 10000, async () =>
      (await card.locator('img').evaluate((img) => img.naturalWidth)) === 640);
    assert.match(await card.locator('img').getAttribute('src'), /live\.mjpeg\?device_id=e2e_cam&fps=2&advance_headers=1/);
    // The preview is a viewer like any other; the figures catch up within a poll or two.
    await eventually('the preview counted as a viewer', 8000, async () =>
      /viewers\s*1(?!\d)/.test(await card.locator('.stats').textContent()));
    assert.match(await card.textContent(), /online/);
    // Opened as 127.0.0.1, which means nothing on a phone: the link names a LAN address.
    await eventually('the push link on a LAN address', 5000, async () =>
      new RegExp(`http://[0-9.]+:${relay.port}/push\\.html\\?device_id=cam_1`).test(await page.textContent('#push-url')));
    assert.doesNotMatch(await page.textContent('#push-url'), /127\.0\.0\.1/);
    assert.equal(await page.locator('#push-code').count(), 1);
    // One line on the memory budget: the phone's frame is in it.
    assert.match(await page.textContent('#memory'), /memory \d+\.\d of \d+\.\d MB: frames 0\.[0-9], uploads/);
    await card.locator('summary', { hasText: 'Use this camera' }).click();
    assert.match(await card.textContent(), /go2rtc\.yaml/);
    assert.match(await card.textContent(), /streams:\s+e2e_cam:\s+- http:\/\/127\.0\.0\.1:\d+\/live\.mjpeg\?device_id=e2e_cam/);
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: name === 'dashboard' });
    await context.close();
  }
});

test('stopping the page stops the camera and the pushes', async () => {
  await phone.evaluate(() => { window.cameraTracks = document.getElementById('preview').srcObject.getTracks(); });
  await phone.click('#toggle');
  assert.deepEqual(await phone.evaluate(() => window.cameraTracks.map((t) => t.readyState)), ['ended']);
  assert.equal(await phone.textContent('#toggle'), 'Start');
  assert.equal(await phone.evaluate(() => document.getElementById('preview').srcObject), null);
  const before = (await relay.device(DEVICE)).frames_received;
  await sleep(1500);
  const after = (await relay.device(DEVICE)).frames_received;
  assert.ok(after - before <= 1, `no pushes after Stop (${before} -> ${after})`);
});

test('over plain HTTP on a LAN name the page explains how to get the camera', async () => {
  // A name that is not localhost, resolved to the relay: an insecure origin for Chromium.
  const insecure = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...BROWSER_FLAGS, '--host-resolver-rules=MAP relay.lan 127.0.0.1'],
  });
  try {
    const page = await insecure.newPage({ viewport: { width: 412, height: 860 } });
    await page.goto(`http://relay.lan:${relay.port}/push.html?device_id=${DEVICE}`);
    assert.equal(await page.evaluate(() => window.isSecureContext), false);
    const state = await page.textContent('#state');
    assert.match(state, /The camera needs a secure page/);
    assert.match(state, /HTTPS/);
    assert.match(state, new RegExp(`http://relay\\.lan:${relay.port}`));
    assert.match(state, /unsafely-treat-insecure-origin-as-secure/);
    await page.click('#toggle');
    assert.match(await page.textContent('#state'), /The camera needs a secure page/);
    assert.equal(await page.textContent('#toggle'), 'Start');
    await page.screenshot({ path: join(ARTIFACTS, 'push-insecure.png') });
  } finally {
    await insecure.close();
  }
});

test('a phone without a camera is told so', async () => {
  const context = await browser.newContext({ viewport: { width: 412, height: 860 } });
  const page = await context.newPage();
  await page.goto(`${relay.base}/push.html?device_id=no_cam`);
  // Ask for a camera that does not exist, as a phone whose camera is gone would.
  await page.evaluate(() => {
    const select = document.getElementById('camera');
    const option = document.createElement('option');
    option.value = 'no-such-camera';
    select.appendChild(option);
    select.value = 'no-such-camera';
  });
  await page.click('#toggle');
  await eventually('the no-camera message', 10000, async () =>
    /No camera found/.test(await page.textContent('#state')));
  assert.equal(await page.textContent('#toggle'), 'Start');
  await context.close();
});

test('the pages are small', async () => {
  const sizes = {};
  for (const path of ['/push.html', '/']) {
    const response = await fetch(`${relay.base}${path}`, { headers: { Accept: 'text/html', 'Accept-Encoding': 'gzip' } });
    assert.equal(response.headers.get('content-encoding'), 'gzip');
    assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
    sizes[path] = Number(response.headers.get('content-length'));
    assert.ok(sizes[path] < 8 * 1024, `${path} is ${sizes[path]} bytes compressed`);
  }
  writeFileSync(join(ARTIFACTS, 'page-sizes.json'), JSON.stringify(sizes) + '\n');
  // curl and scripts get the plain-text index, and are told how to fetch a page.
  const text = await run('curl', ['-s', `${relay.base}/`], 10000);
  assert.match(text.stdout.toString(), /^streampump /);
  const refused = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${relay.base}/push.html`], 10000);
  assert.equal(refused.stdout.toString(), '406');
});

test('with tokens, one link per phone and per dashboard carries them everywhere', async () => {
  const guarded = new Relay(await freePort(),
    ['--push-token', 'e2e-push-token', '--view-token', 'e2e-view-token'], 'e2e-view-token');
  await guarded.start();
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  try {
    // Without the token in its link the page shows the relay's refusal.
    const stranger = await context.newPage();
    await stranger.goto(`${guarded.base}/push.html?device_id=tok_cam`);
    await stranger.selectOption('#size', '320x240');
    await stranger.click('#toggle');
    await eventually('the refusal on the page', 10000, async () =>
      /401/.test(await stranger.textContent('#state')));
    await stranger.click('#toggle');
    assert.equal(await guarded.device('tok_cam'), undefined);

    const phonePage = await context.newPage();
    await phonePage.goto(`${guarded.base}/push.html?device_id=tok_cam&token=e2e-push-token`);
    await phonePage.selectOption('#size', '320x240');
    await phonePage.uncheck('#idle');
    await phonePage.click('#toggle');
    await eventually('tok_cam online through the token', 20000, async () => {
      const found = await guarded.device('tok_cam');
      return found && found.online && found.frames_received > 2;
    });
    // The page keeps the token in its own address (a bookmark works again).
    assert.match(phonePage.url(), /[?&]token=e2e-push-token/);

    const dashboard = await context.newPage();
    await dashboard.goto(`${guarded.base}/?token=e2e-view-token`);
    const card = dashboard.locator('.card', { hasText: 'tok_cam' });
    await card.waitFor({ timeout: 10000 });
    await eventually('the preview to show a frame', 10000, async () =>
      (await card.locator('img').evaluate((img) => img.naturalWidth)) === 320);
    assert.match(await card.locator('img').getAttribute('src'), /token=e2e-view-token/);
    await card.locator('summary', { hasText: 'Use this camera' }).click();
    const snippets = await card.textContent();
    assert.match(snippets, /live\.mjpeg\?device_id=tok_cam&token=e2e-view-token/);
    assert.match(snippets, /Still image URL: http:\/\/127\.0\.0\.1:\d+\/snapshot\.jpg\?device_id=tok_cam&token=e2e-view-token/);
    await eventually('the loopback relay saying phones cannot reach it', 5000, async () =>
      /Phones cannot reach this relay/.test(await dashboard.textContent('#push-url')));
    await phonePage.click('#toggle');
  } finally {
    await context.close();
    await guarded.stop();
  }
});

/** The first IPv4 address of this machine other than loopback: what a phone on the LAN uses. */
function lanAddress() {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses || []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  throw new Error('this machine needs an IPv4 address besides loopback for the QR code test');
}

/** What Debian's zbarimg reads from the image at `file` (one code expected). */
async function zbar(file) {
  const decoded = await run('zbarimg', ['--quiet', '--raw', file], 20000);
  assert.equal(decoded.error, null, `zbarimg found no code in ${file}: ${decoded.stderr}`);
  return decoded.stdout.toString().replace(/\n$/, '');
}

/**
 * A Chromium "phone" with a fresh profile whose NSS store ($HOME/.pki/nssdb, made with
 * certutil) trusts the authority in `caFile`, as a phone does after installing /ca.crt. No
 * --ignore-certificate-errors and no insecure-origin flag: the trust comes from the store.
 */
function trustingPhone(home, caFile) {
  const nssdb = join(home, '.pki', 'nssdb');
  mkdirSync(nssdb, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-N', '--empty-password'], { timeout: 20000 });
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'streampump',
    '-i', caFile], { timeout: 20000 });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...BROWSER_FLAGS, ...CAMERA_FLAGS],
    env: { ...process.env, HOME: home },
  });
}

/** Waits until the dashboard's QR code `#id` shows `device`, then screenshots it to `file`. */
async function shootCode(dashboard, id, device, file) {
  const code = dashboard.locator(`#${id}`);
  await eventually(`the QR code #${id} drawn`, 5000, async () =>
    new RegExp(`device_id=${device}`).test(await code.getAttribute('src')) &&
    (await code.evaluate((img) => img.complete && img.naturalWidth)) > 0);
  await code.screenshot({ path: file });
}

test('a first-run dashboard welcomes, its QR codes decode to the HTTPS push link and the set-up page, and a phone that trusts the relay streams', async () => {
  const lan = lanAddress();
  const scratch = mkdtempSync(join(tmpdir(), 'streampump-e2e-qr-'));
  const stateDir = join(scratch, 'state');
  const tlsPort = await freePort();
  // Pushing needs a token; the dashboard is opened with it, so its code carries it. HTTPS on
  // every address, with the relay's own authority, as a relay for phones runs by default.
  const relayOnLan = new Relay(await freePort(), ['--push-token', 'e2e-qr-token',
    '--tls-listen', `0.0.0.0:${tlsPort}`, '--state-dir', stateDir], '', '0.0.0.0');
  let phoneBrowser;
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    await relayOnLan.start();
    await eventually('the relay to serve HTTPS', 10000, async () =>
      relayOnLan.log.includes('HTTPS on ') && existsSync(join(stateDir, 'ca.crt')));
    const origin = `http://${lan}:${relayOnLan.port}`;
    const expectedPush = `https://${lan}:${tlsPort}/push.html?device_id=qr_cam&token=e2e-qr-token`;
    const expectedSetup = `${origin}/https.html`;

    const dashboard = await context.newPage();
    await dashboard.goto(`${origin}/?token=e2e-qr-token`);
    assert.equal(await dashboard.textContent('#add-title'), 'Welcome: add your first phone');
    assert.ok(await dashboard.isVisible('#welcome'));
    await dashboard.fill('#new-id', 'qr_cam');
    await eventually('the link for qr_cam', 5000, async () =>
      (await dashboard.textContent('#push-url')).includes(expectedPush));
    assert.ok((await dashboard.textContent('#push-url')).includes(expectedSetup));
    const pushShot = join(ARTIFACTS, 'push-code.png');
    const setupShot = join(ARTIFACTS, 'setup-code.png');
    await shootCode(dashboard, 'push-code', 'qr_cam', pushShot);
    await shootCode(dashboard, 'setup-code', 'qr_cam', setupShot);
    await dashboard.screenshot({ path: join(ARTIFACTS, 'dashboard-welcome.png'), fullPage: true });
    const pushLink = await zbar(pushShot);
    const setupLink = await zbar(setupShot);
    assert.equal(pushLink, expectedPush);
    assert.equal(setupLink, expectedSetup);

    // Without the token, the dashboard cannot know it: a placeholder and no codes at all.
    const stranger = await context.newPage();
    await stranger.goto(`${origin}/`);
    await eventually('the placeholder link', 5000, async () =>
      (await stranger.textContent('#push-url')).includes(
        `https://${lan}:${tlsPort}/push.html?device_id=cam_1&token=PUSH_TOKEN`));
    assert.equal(await stranger.locator('#push-code').count(), 0);
    assert.equal(await stranger.locator('#setup-code').count(), 0);

    // The authority as the relay serves it to phones (DER at /ca.crt) is the one in the state
    // directory, and the certificate of the HTTPS port names the LAN address.
    const caFile = join(stateDir, 'ca.crt');
    const served = Buffer.from(await (await fetch(`${origin}/ca.crt`)).arrayBuffer());
    const stored = new X509Certificate(readFileSync(caFile));
    assert.ok(served.equals(stored.raw), '/ca.crt serves the state directory\'s authority');
    const fingerprint = createHash('sha256').update(served).digest('hex')
      .toUpperCase().match(/../g).join(':');
    assert.equal(fingerprint, stored.fingerprint256);
    const leaf = await new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: lan, port: tlsPort, ca: readFileSync(caFile), timeout: 10000 },
        () => { resolve(socket.getPeerX509Certificate()); socket.end(); });
      socket.on('error', reject);
      socket.on('timeout', () => reject(new Error('no TLS handshake within 10 s')));
    });
    assert.ok(leaf.checkIP(lan), `the certificate names ${lan}: ${leaf.subjectAltName}`);
    assert.ok(leaf.checkIssued(stored), 'the certificate is issued by the relay\'s authority');

    // The phone opens what it scanned, over HTTPS, trusting only what it installed.
    phoneBrowser = await trustingPhone(join(scratch, 'phone'), caFile);
    const phonePage = await phoneBrowser.newPage({ viewport: { width: 412, height: 860 } });
    await phonePage.goto(pushLink);
    assert.equal(await phonePage.evaluate(() => window.isSecureContext), true);
    assert.equal(await phonePage.inputValue('#device'), 'qr_cam');
    await phonePage.selectOption('#size', '320x240');
    await phonePage.uncheck('#idle');
    await phonePage.click('#toggle');
    await eventually('qr_cam online through the scanned HTTPS link', 20000, async () => {
      const found = await relayOnLan.device('qr_cam');
      return found && found.online && found.frames_received > 2;
    });
    assert.match(await phonePage.textContent('#state'), /Streaming as qr_cam/);
    // With a camera, the welcome gives way to the usual page.
    await eventually('the welcome to end', 8000, async () =>
      (await dashboard.textContent('#add-title')) === 'Add a phone');
    assert.equal(await dashboard.isVisible('#welcome'), false);
    await phonePage.click('#toggle');

    // The scanned set-up page shows the authority's fingerprint, to check before installing.
    const setupPage = await phoneBrowser.newPage({ viewport: { width: 412, height: 860 } });
    await setupPage.goto(setupLink);
    await eventually('the fingerprint on the set-up page', 5000, async () =>
      (await setupPage.textContent('#fingerprint')) === fingerprint);
  } finally {
    if (phoneBrowser) await phoneBrowser.close();
    await context.close();
    await relayOnLan.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
});
