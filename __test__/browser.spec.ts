// `uring-fs serve` as a browser sees it: a real headless Chromium (the
// system's, driven by playwright-core; never a downloaded one) against the
// CLI run as a child process. The HTTP-level specs (cli.spec.ts,
// send-file.spec.ts) check the bytes and headers we send; they cannot tell
// whether a browser does what a user expects with them, and that is where
// a static server fails in practice: a video that plays but cannot seek
// (ranges refused, or answered in a way the media stack drops), a
// precompressed variant with a header the browser does not decode, a
// listing whose escaping holds for a regex but not for an HTML parser.
// So, in the browser:
//
//  - example/ (what `npm start` serves): the page renders with its
//    stylesheet, the image decodes, and nothing fails or logs an error;
//  - its video plays, seeks, and plays on from the new point (on a
//    throttled link, so that the seek needs a range from past the start),
//    every request for it a Range answered 206 (or a 304 revalidation),
//    per the browser and per the server's access log;
//  - with --compress, a <script src> gets a precompressed variant (each
//    variant's script sets a different marker, so the page proves which
//    body ran), with Content-Encoding and Vary: Accept-Encoding;
//  - a listing with a file named like an XSS payload: no markup, no
//    dialog, the link's text is the name, following it fetches the file,
//    a subdirectory's listing links back to '../';
//  - screenshots of the example page and of a listing, into
//    target/browser/ (and docs/screenshots/ for the README when
//    URING_FS_UPDATE_SCREENSHOTS=1).
//
// The suite runs 12 times in CI (backends x Node versions) and a browser
// adds little on the second run: these tests run only when
// URING_FS_BROWSER_TESTS=1 (scripts/test.sh sets it for one run), and skip
// with the reason printed otherwise, or when no Chromium is found
// (URING_FS_CHROMIUM when set, else /usr/bin/chromium or
// /usr/bin/chromium-browser).

import test, { type ExecutionContext } from 'ava'
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as zlib from 'node:zlib'
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core'

// Not ./helpers: it loads the native addon, which this file has no use for
// (the server is a child process, and picks its backend from the env).
const REPO = process.cwd()
const BIN = path.join(REPO, 'bin', 'uring-fs.js')
const EXAMPLE = path.join(REPO, 'example')
const SHOTS = path.join(REPO, 'target', 'browser')
const DOCS_SHOTS = path.join(REPO, 'docs', 'screenshots')
const LISTENING = /^uring-fs serving (.+) at (http:\/\/\S+\/) \(backend: ([a-z_]+)(?:; [^)]*)?\)$/m
/** A response log line: ISO time, remote address, method, url, status, bytes, duration, how. */
const LOG_LINE = /^\d{4}-\d\d-\d\dT\S+Z \S+ [A-Z]+ \S+ \d{3} \d+ [\d.]+ms \S+/
const VIEWPORT = { width: 1024, height: 768 }

// ---------------------------------------------------------------------------
// Run or skip: decided at load time, the reason printed.

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

// URING_FS_CHROMIUM, when set, is the only one tried: a wrong path there
// should say so, not test some other browser.
const CANDIDATES = process.env.URING_FS_CHROMIUM ? [process.env.URING_FS_CHROMIUM] : ['/usr/bin/chromium', '/usr/bin/chromium-browser']
const CHROMIUM = CANDIDATES.find(executable)
const skipReason =
  process.env.URING_FS_BROWSER_TESTS !== '1'
    ? 'URING_FS_BROWSER_TESTS is not 1 (they run once, not on every backend and Node)'
    : CHROMIUM === undefined
      ? `no Chromium executable at ${CANDIDATES.join(' or ')} (URING_FS_CHROMIUM names another)`
      : null
if (skipReason !== null) console.log(`browser.spec: browser tests skipped: ${skipReason}`)
// Serial: the tests share one browser, and each starts a server and a
// browser context; run side by side, their timings would only get noisier.
const maybe = skipReason === null ? test.serial : test.serial.skip

// ---------------------------------------------------------------------------
// The page's globals, as the functions passed to page.evaluate see them.
// The specs compile without the DOM lib (it would retype Node's timers in
// every spec), so only what those functions use, loosely.

interface PageVideo {
  muted: boolean
  paused: boolean
  currentTime: number
  duration: number
  readyState: number
  error: { code: number; message: string } | null
  seekable: { length: number; start(i: number): number; end(i: number): number }
  play(): Promise<void>
  pause(): void
  addEventListener(type: string, fn: () => void, opts?: { once?: boolean }): void
}
interface PageElement {
  textContent: string | null
  getAttribute(name: string): string | null
}
declare const document: {
  title: string
  body: PageElement & { innerText: string; dataset: Record<string, string | undefined> }
  querySelector(selector: string): unknown
  querySelectorAll(selector: string): ArrayLike<PageElement>
}
declare function getComputedStyle(el: unknown): { maxWidth: string; backgroundColor: string }

// ---------------------------------------------------------------------------
// The server: `node bin/uring-fs.js serve <dir> --port 0 --host 127.0.0.1
// --workers 1 [flags]` (one worker: the access log is in request order).

interface Server {
  proc: ChildProcess
  url: string
  backend: string
  stdout(): string
  stderr(): string
  /** The response log lines so far. */
  log(): string[]
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Resolves when `cond()` holds; rejects with `what` after `timeoutMs`. */
async function waitFor(cond: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)
    await sleep(20)
  }
}

async function serve(t: ExecutionContext, dir: string, flags: string[] = []): Promise<Server> {
  const proc = spawn(process.execPath, [BIN, 'serve', dir, '--port', '0', '--host', '127.0.0.1', '--workers', '1', ...flags], {
    cwd: REPO,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c))
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c))
  let exited = false
  const closed = new Promise<void>((resolve) => {
    proc.on('error', () => resolve())
    proc.on('close', () => resolve())
  }).then(() => {
    exited = true
  })
  // SIGTERM first (the primary stops its worker), SIGKILL when that hangs:
  // a test must not leave a server behind.
  t.teardown(async () => {
    if (exited) return
    proc.kill('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 5000)))])
    // (Cleared: a pending timer would keep ava's worker alive after the tests.)
    clearTimeout(timer)
    if (!exited) proc.kill('SIGKILL')
    await closed
  })
  await waitFor(
    () => LISTENING.test(out) || exited,
    () => `the listening line; stdout: ${JSON.stringify(out)}, stderr: ${JSON.stringify(err)}`,
    15_000,
  )
  const m = LISTENING.exec(out)
  if (!m) throw new Error(`the server exited before listening; stderr: ${JSON.stringify(err)}`)
  return {
    proc,
    url: m[2],
    backend: m[3],
    stdout: () => out,
    stderr: () => err,
    log: () => out.split('\n').filter((l) => LOG_LINE.test(l)),
  }
}

/**
 * Waits until the access log has a line matching `re`: the worker writes it
 * when the response ends, which may be after the browser has what it needs.
 */
async function logged(srv: Server, re: RegExp): Promise<string> {
  await waitFor(() => srv.log().some((l) => re.test(l)), () => `a log line matching ${re}; log:\n${srv.log().join('\n')}`, 10_000)
  return srv.log().find((l) => re.test(l))!
}

function makeTmpDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `uring-fs-${label}-`))
  fs.chmodSync(dir, 0o755)
  return dir
}

// ---------------------------------------------------------------------------
// The browser: one for the file, a fresh context (cache, cookies) per test.

let browser: Browser | undefined

test.before(async () => {
  if (skipReason !== null) return
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // --no-sandbox: the suite may run as root, where Chromium's sandbox
    // refuses to start. Autoplay: play() is called from the test, with no
    // user gesture (muted would be enough; this takes policy out of it).
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
    timeout: 30_000,
  })
})

test.after.always(async () => {
  await browser?.close()
})

/** What went wrong in a page, as the browser reports it. */
interface Trouble {
  consoleErrors: string[]
  pageErrors: string[]
  failedRequests: string[]
  badResponses: string[]
  dialogs: string[]
}

/**
 * Whether `url` is the browser's own favicon probe: Chromium asks for
 * /favicon.ico on every page; example/ has none, and a 404 for it is the
 * correct answer, not a failure of the page.
 */
function faviconProbe(url: string): boolean {
  return new URL(url).pathname === '/favicon.ico'
}

async function openPage(t: ExecutionContext): Promise<{ context: BrowserContext; page: Page; trouble: Trouble }> {
  const context = await browser!.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, colorScheme: 'light', locale: 'en-US' })
  t.teardown(() => context.close())
  context.setDefaultTimeout(20_000)
  const page = await context.newPage()
  const trouble: Trouble = { consoleErrors: [], pageErrors: [], failedRequests: [], badResponses: [], dialogs: [] }
  page.on('console', (m) => {
    if (m.type() !== 'error') return
    if (m.location().url && faviconProbe(m.location().url)) return
    trouble.consoleErrors.push(`${m.text()} (${m.location().url})`)
  })
  page.on('pageerror', (e) => trouble.pageErrors.push(String(e)))
  page.on('requestfailed', (r) => {
    // Chromium's media stack cancels its own requests (the preload one once
    // it has the metadata, a range it no longer needs after a seek) and
    // asks again with a Range: the browser's doing, not a failure.
    if (r.resourceType() === 'media' && r.failure()?.errorText === 'net::ERR_ABORTED') return
    trouble.failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`)
  })
  page.on('response', (r) => {
    if (r.status() >= 400 && !faviconProbe(r.url())) trouble.badResponses.push(`${r.status()} ${r.url()}`)
  })
  page.on('dialog', (d) => {
    trouble.dialogs.push(`${d.type()}: ${d.message()}`)
    void d.dismiss().catch(() => {})
  })
  return { context, page, trouble }
}

function noTrouble(t: ExecutionContext, trouble: Trouble): void {
  t.deepEqual(trouble.consoleErrors, [], 'console errors')
  t.deepEqual(trouble.pageErrors, [], 'uncaught page errors')
  t.deepEqual(trouble.failedRequests, [], 'failed requests')
  t.deepEqual(trouble.badResponses, [], 'responses >= 400')
  t.deepEqual(trouble.dialogs, [], 'dialogs')
}

/** The width and height in a PNG's IHDR, or null when `buf` is no PNG. */
function pngSize(buf: Buffer): { width: number; height: number } | null {
  const magic = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  if (buf.length < 24 || !buf.subarray(0, 8).equals(magic) || buf.toString('latin1', 12, 16) !== 'IHDR') return null
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) }
}

/**
 * A full-page screenshot into target/browser/<name>, checked to be a real
 * image of the page (a blank or failed capture is a few hundred bytes);
 * copied to docs/screenshots/ for the README with URING_FS_UPDATE_SCREENSHOTS=1.
 */
async function screenshot(t: ExecutionContext, page: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true })
  const file = path.join(SHOTS, name)
  fs.rmSync(file, { force: true })
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled', caret: 'hide' })
  const png = fs.readFileSync(file)
  const size = pngSize(png)
  const viewport = page.viewportSize()!
  t.not(size, null, `${name} is a PNG`)
  t.is(size?.width, viewport.width, `${name}: the viewport's width`)
  t.true((size?.height ?? 0) >= viewport.height, `${name}: at least the viewport's height`)
  t.true(png.length > 5 * 1024, `${name}: ${png.length} bytes, more than 5 KiB`)
  if (process.env.URING_FS_UPDATE_SCREENSHOTS === '1') {
    fs.mkdirSync(DOCS_SHOTS, { recursive: true })
    fs.copyFileSync(file, path.join(DOCS_SHOTS, name))
    t.log(`updated docs/screenshots/${name}`)
  }
}

// ---------------------------------------------------------------------------

maybe('example/: the page renders with its stylesheet, the image decodes, nothing fails', async (t) => {
  t.timeout(60_000)
  const srv = await serve(t, EXAMPLE)
  // The child inherits the env: URING_FS_BACKEND=fallback reaches it.
  if (process.env.URING_FS_BACKEND === 'fallback') t.is(srv.backend, 'fallback')
  const { page, trouble } = await openPage(t)
  const res = await page.goto(srv.url, { waitUntil: 'load' })
  t.is(res?.status(), 200)
  t.regex(res?.headers()['content-type'] ?? '', /^text\/html\b/)

  t.is(await page.title(), 'uring-fs')
  t.is(await page.locator('h1').textContent(), 'uring-fs')
  // style.css applied: main's max-width (42rem) and the light background.
  const style = await page.evaluate(() => {
    const main = getComputedStyle(document.querySelector('main'))
    const body = getComputedStyle(document.body)
    return { maxWidth: main.maxWidth, background: body.backgroundColor }
  })
  t.deepEqual(style, { maxWidth: '672px', background: 'rgb(250, 250, 247)' })

  // The image decoded at its own size (naturalWidth is 0 for a broken one).
  const expected = pngSize(fs.readFileSync(path.join(EXAMPLE, 'image.png')))!
  const img = await page.evaluate(() => {
    const el = document.querySelector('img') as { complete: boolean; naturalWidth: number; naturalHeight: number }
    return { complete: el.complete, width: el.naturalWidth, height: el.naturalHeight }
  })
  t.deepEqual(img, { complete: true, width: expected.width, height: expected.height })

  // A frame in the video box rather than black, for the screenshot: a seek
  // while paused makes the browser fetch and decode that frame.
  const shown = await page.evaluate(async () => {
    const v = document.querySelector('video') as PageVideo
    const seeked = new Promise<void>((resolve) => v.addEventListener('seeked', () => resolve(), { once: true }))
    v.currentTime = 2
    await seeked
    return { time: v.currentTime, paused: v.paused, readyState: v.readyState, error: v.error?.message ?? null }
  })
  t.is(shown.error, null)
  t.true(shown.readyState >= 2, `the frame at 2 s is there (readyState ${shown.readyState})`)
  await screenshot(t, page, 'example-page.png')

  for (const f of ['/', '/style.css', '/image.png']) await logged(srv, new RegExp(` GET ${f.replace('.', '\\.')} 200 `))
  noTrouble(t, trouble)
  t.is(srv.stderr(), '')
})

maybe('example/video.mp4 plays and seeks: every request for it a Range, answered 206', async (t) => {
  t.timeout(60_000)
  const srv = await serve(t, EXAMPLE)
  const { context, page, trouble } = await openPage(t)
  // A slow link (about 1.6 Mbit/s, the video's own bitrate being 0.6): on
  // localhost the whole file would arrive in the first response and a seek
  // would need no request at all. Slowed down, the seek outruns the
  // download and the media stack asks for a range from the new point on,
  // as it does for a user on a real network.
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: 200 * 1024, uploadThroughput: -1 })
  const videoRequests: Array<{ range: string | undefined; status: number; contentRange: string | undefined }> = []
  page.on('response', (r) => {
    if (new URL(r.url()).pathname !== '/video.mp4') return
    videoRequests.push({ range: r.request().headers().range, status: r.status(), contentRange: r.headers()['content-range'] })
  })
  await page.goto(srv.url, { waitUntil: 'load' })

  const played = await page.evaluate(async () => {
    const v = document.querySelector('video') as PageVideo
    v.muted = true
    const until = async (cond: () => boolean, what: string) => {
      const deadline = Date.now() + 15_000
      while (!cond()) {
        if (v.error) throw new Error(`video error ${v.error.code}: ${v.error.message} (waiting for ${what})`)
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (currentTime ${v.currentTime}, readyState ${v.readyState})`)
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
    }
    await v.play()
    await until(() => v.currentTime > 0.5, 'playback to pass 0.5 s')
    const before = v.currentTime
    // Forward, past what the first response may have delivered before the
    // browser cut it: the media stack has to ask for a later range.
    const target = 7.5
    const seeked = new Promise<void>((resolve) => v.addEventListener('seeked', () => resolve(), { once: true }))
    v.currentTime = target
    await seeked
    const landed = v.currentTime
    await until(() => v.currentTime > landed + 0.5, 'playback to go on after the seek')
    const after = v.currentTime
    v.pause()
    const seekable = v.seekable.length === 1 ? [v.seekable.start(0), v.seekable.end(0)] : null
    return { before, target, landed, after, duration: v.duration, seekable, error: v.error?.message ?? null }
  })
  t.log(`video: ${JSON.stringify(played)}`)
  t.is(played.error, null)
  t.true(played.before > 0.5, 'it played')
  t.true(Math.abs(played.landed - played.target) < 0.5, `the seek landed at ${played.landed}`)
  t.true(played.after > played.landed + 0.5, 'it played on from there')
  // The whole of it seekable: the browser took the server's ranges as real
  // (without them, Chromium cannot seek a progressive download freely).
  t.true(played.seekable !== null && played.seekable[0] === 0 && Math.abs(played.seekable[1] - played.duration) < 0.1, `seekable ${JSON.stringify(played.seekable)}`)

  // The browser's view: each request a Range; each answer a 206 for that
  // range (or a 304 when it revalidates a cached part).
  t.log(`video requests: ${JSON.stringify(videoRequests)}`)
  t.true(videoRequests.length > 0)
  const size = fs.statSync(path.join(EXAMPLE, 'video.mp4')).size
  for (const r of videoRequests) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(r.range ?? '')
    t.truthy(m, `a Range request: ${JSON.stringify(r)}`)
    if (r.status === 304) continue
    t.is(r.status, 206, JSON.stringify(r))
    if (m) t.regex(r.contentRange ?? '', new RegExp(`^bytes ${m[1]}-\\d+/${size}$`), JSON.stringify(r))
  }

  // The seek's own request: a range from past the start.
  const start = (r: { range: string | undefined }) => Number(/^bytes=(\d+)-/.exec(r.range ?? '')?.[1] ?? 0)
  t.true(
    videoRequests.some((r) => r.status === 206 && start(r) > 0),
    'after the seek, a range from past the start, answered 206',
  )

  // The server's view: 206s in the log, one of them short of the whole
  // file, and never a 200 or an error for it.
  // (Waited for: a line is written when its response has been sent, and
  // the browser's throttling may hold the end of one back a while.)
  const part = (l: string) => {
    const m = / GET \/video\.mp4 206 (\d+) /.exec(l)
    return m !== null && Number(m[1]) < size
  }
  await logged(srv, / GET \/video\.mp4 206 /)
  await waitFor(() => srv.log().some(part), () => `a 206 for part of the video in the log:\n${srv.log().join('\n')}`, 15_000)
  const lines = srv.log().filter((l) => / GET \/video\.mp4 /.test(l))
  t.log(lines.join('\n'))
  t.deepEqual(
    lines.filter((l) => !/ GET \/video\.mp4 (206|304) /.test(l)),
    [],
    'every response for the video a 206 (or a 304)',
  )
  noTrouble(t, trouble)
  t.is(srv.stderr(), '')
})

maybe('--compress: a <script src> gets the precompressed variant its Accept-Encoding selects, and runs it', async (t) => {
  t.timeout(60_000)
  const dir = makeTmpDir('browser-compress')
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  // Each body sets its own marker: the page says which one ran. Real
  // precompressed files hold the same script; these differ so that a
  // variant served as identity, or identity served instead, is caught.
  const script = (marker: string) => `document.body.dataset.ran = '${marker}'\n`
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>compress</title></head>\n<body>\n<script src="app.js"></script>\n</body>\n</html>\n')
  fs.writeFileSync(path.join(dir, 'app.js'), script('identity'))
  fs.writeFileSync(path.join(dir, 'app.js.br'), zlib.brotliCompressSync(script('br')))
  fs.writeFileSync(path.join(dir, 'app.js.gz'), zlib.gzipSync(script('gzip')))

  const srv = await serve(t, dir, ['--compress'])
  const { page, trouble } = await openPage(t)
  const [response] = await Promise.all([page.waitForResponse((r) => new URL(r.url()).pathname === '/app.js'), page.goto(srv.url, { waitUntil: 'load' })])
  // allHeaders(): the headers as sent and received, with what the network
  // stack adds (Accept-Encoding) and takes away (headers() may not have them).
  const sent = await response.request().allHeaders()
  const got = await response.allHeaders()
  const accept = sent['accept-encoding'] ?? ''
  t.log(`Accept-Encoding: ${accept}; Content-Encoding: ${got['content-encoding']}`)
  const offered = accept.split(',').map((s) => s.trim().split(';')[0])
  // The server's order of preference: br, then zstd (no .zst here), then gzip.
  const expected = offered.includes('br') ? 'br' : offered.includes('gzip') ? 'gzip' : null
  t.not(expected, null, `Chromium accepts br or gzip (Accept-Encoding: ${accept})`)
  t.is(response.status(), 200)
  t.is(got['content-encoding'], expected!, 'the variant for this Accept-Encoding')
  t.is(got.vary, 'Accept-Encoding')
  t.regex(got['content-type'] ?? '', /^text\/javascript\b/, 'the type of app.js, not of the .br or .gz')
  t.is(await page.evaluate(() => document.body.dataset.ran), expected!, 'the variant ran, decoded')

  await logged(srv, / GET \/app\.js 200 /)
  noTrouble(t, trouble)
  t.is(srv.stderr(), '')
})

maybe('a listing: a file named like markup stays text, its link fetches it, a subdirectory links back', async (t) => {
  t.timeout(60_000)
  const dir = makeTmpDir('browser-list')
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const NAME = '<img src=x onerror=alert(1)>.txt'
  const CONTENT = 'a file named like markup\n'
  fs.writeFileSync(path.join(dir, NAME), CONTENT)
  fs.mkdirSync(path.join(dir, 'sub'))
  fs.writeFileSync(path.join(dir, 'sub', 'inner.txt'), 'inside sub/\n')
  fs.writeFileSync(path.join(dir, 'notes.md'), '# notes\n')
  fs.copyFileSync(path.join(EXAMPLE, 'image.png'), path.join(dir, 'image.png'))
  // Fixed dates: the listing shows them, and the screenshot should not
  // change with the day it was taken.
  const when = new Date('2026-01-15T09:30:00Z')
  for (const f of [NAME, 'sub/inner.txt', 'notes.md', 'image.png', 'sub']) fs.utimesSync(path.join(dir, f), when, when)

  const srv = await serve(t, dir)
  const { page, trouble } = await openPage(t)
  await page.goto(srv.url, { waitUntil: 'load' })
  t.is(await page.title(), 'Index of /')

  // Parsed by the browser, the name is text: no element, no handler.
  const parsed = await page.evaluate(() => ({
    imgs: document.querySelectorAll('img').length,
    withHandlers: document.querySelectorAll('[onerror], [onload], script').length,
    links: Array.from(document.querySelectorAll('a')).map((a) => ({ text: a.textContent, href: a.getAttribute('href') })),
  }))
  t.is(parsed.imgs, 0, 'no <img> from the file name')
  t.is(parsed.withHandlers, 0, 'no element with a handler, no script')
  const texts = parsed.links.map((l) => l.text)
  t.is(texts[0], 'sub/', `the directory first (links: ${JSON.stringify(parsed.links)})`)
  t.deepEqual([...texts].sort(), ['sub/', 'image.png', NAME, 'notes.md'].sort(), `each entry once, named as it is (links: ${JSON.stringify(parsed.links)})`)
  // Short: the listing is a few rows, the rest of a full viewport blank.
  await page.setViewportSize({ width: VIEWPORT.width, height: 320 })
  await screenshot(t, page, 'listing.png')
  await page.setViewportSize(VIEWPORT)

  // Following the link fetches the file itself.
  const link = page.getByRole('link', { name: NAME, exact: true })
  t.is(await link.count(), 1)
  const [file] = await Promise.all([page.waitForNavigation(), link.click()])
  t.is(file?.status(), 200)
  t.regex(file?.headers()['content-type'] ?? '', /^text\/plain\b/)
  t.is(decodeURIComponent(new URL(page.url()).pathname), `/${NAME}`)
  t.is(await file?.text(), CONTENT)
  t.is(await page.evaluate(() => document.body.textContent), CONTENT, 'shown as text')

  // Back to the listing, into sub/, and up again through '../'.
  await page.goBack({ waitUntil: 'load' })
  t.is(new URL(page.url()).pathname, '/')
  await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'sub/', exact: true }).click()])
  t.is(new URL(page.url()).pathname, '/sub/')
  t.is(await page.title(), 'Index of /sub/')
  const subLinks = await page.evaluate(() => Array.from(document.querySelectorAll('a')).map((a) => ({ text: a.textContent, href: a.getAttribute('href') })))
  t.deepEqual(subLinks[0], { text: '../', href: '../' }, 'the parent link first')
  t.true(subLinks.some((l) => l.text === 'inner.txt'), JSON.stringify(subLinks))
  await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: '../', exact: true }).click()])
  t.is(new URL(page.url()).pathname, '/')
  t.is(await page.title(), 'Index of /')

  await logged(srv, / GET \/%3Cimg%20src%3Dx%20onerror%3Dalert\(1\)%3E\.txt 200 /)
  noTrouble(t, trouble)
  t.is(srv.stderr(), '')
})
