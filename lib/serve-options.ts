// `uring-fs serve`'s settings: read from the command line and from
// `--config FILE` (the same settings as JSON; a flag given on the command
// line wins), each checked once, here, so that a bad value stops the
// program with a clear line and exit 2 before anything listens.

import { readFileSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import ms from 'ms'

export type LogFormat = 'text' | 'json' | 'off'
export type Dotfiles = 'allow' | 'deny' | 'ignore'

export interface ServeSettings {
  /** The directory served. */
  dir: string
  port: number
  host: string
  /** Worker processes (node:cluster). */
  workers: number
  /** Serve precompressed .br/.zst/.gz variants. */
  compress: boolean
  /** Single-page app: an unknown path that asks for HTML gets index.html. */
  single: boolean
  cors: boolean
  /** Cache-Control max-age, in milliseconds. */
  maxAge: number
  /** Files whose name matches get a year's max-age and `immutable`; null: none. */
  immutable: RegExp | null
  /** Extensions tried for a path without a match (`html`: /about -> about.html). */
  extensions: string[]
  dotfiles: Dotfiles
  /** A directory without index.html is listed (else 404). */
  listing: boolean
  /** TLS certificate and key (PEM file paths): HTTPS when both are given. */
  cert: string | null
  key: string | null
  /** HTTP/2 (with HTTP/1.1 for clients without it); needs cert and key. */
  http2: boolean
  log: LogFormat
}

/** A bad command line or config file: the program prints it and exits 2. */
export class UsageError extends Error {}

/**
 * File names that look fingerprinted by a bundler (`app.3f9a1c2e.js`,
 * `index-BQ3x_mZa.css`): a part of 8 or more letters, digits or '_' with a
 * digit or a capital in it, right before the extension. A plain word
 * (`app.component.js`) does not match.
 */
export const FINGERPRINTED = /[.-](?=[^.]*[\dA-Z])[A-Za-z0-9_]{8,}\.[A-Za-z0-9]+$/

export const USAGE = `Usage: uring-fs serve [dir] [options]

Serves the files beneath dir (default: the current directory) over HTTP.

Options:
  -p, --port <n>            port to listen on, 0 for any free one (default 8080)
  -H, --host <addr>         address to listen on (default 127.0.0.1)
  -w, --workers <n>         worker processes, each on its own core (default: the
                            number of cores this process may use)
  -c, --compress            serve a file's precompressed variant (file.br,
                            file.zst, file.gz) to clients that accept its encoding
  -s, --single              single-page app: a GET for an unknown path without an
                            extension, from a client that accepts HTML, gets
                            the root's index.html
      --cors                Access-Control-Allow-Origin: * on every response, and
                            an answer to CORS preflight (OPTIONS) requests
  -m, --max-age <time>      Cache-Control max-age: seconds, or a duration such as
                            10m, 1h, 7d (default 0)
      --immutable           fingerprinted files (app.3f9a1c2e.js) get max-age of a
                            year and Cache-Control: immutable
      --immutable-pattern <regexp>
                            which file names are fingerprinted (implies
                            --immutable; default ${FINGERPRINTED.source})
  -e, --extensions <list>   extensions to try for a path with no match, comma
                            separated: html,htm serves /about from about.html
      --dotfiles <how>      files and directories starting with '.': ignore (404,
                            default), deny (403) or allow
      --no-listing          no listing of a directory without index.html (404)
      --cert <file>         TLS certificate (PEM); with --key, serves HTTPS
      --key <file>          TLS private key (PEM)
      --http2               HTTP/2 (and HTTP/1.1 for older clients); needs
                            --cert and --key
      --log <format>        one line per response: text (default), json or off
      --config <file>       read these settings from a JSON file (names as in
                            the README: port, host, workers, compress, single,
                            cors, maxAge, immutable, extensions, dotfiles,
                            listing, cert, key, http2, log, dir); flags given
                            here win
  -h, --help                show this help
  -v, --version             show the version
`

const FLAGS = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string', short: 'H' },
  workers: { type: 'string', short: 'w' },
  compress: { type: 'boolean', short: 'c' },
  single: { type: 'boolean', short: 's' },
  cors: { type: 'boolean' },
  'max-age': { type: 'string', short: 'm' },
  immutable: { type: 'boolean' },
  'immutable-pattern': { type: 'string' },
  extensions: { type: 'string', short: 'e' },
  dotfiles: { type: 'string' },
  listing: { type: 'boolean' },
  'no-listing': { type: 'boolean' },
  cert: { type: 'string' },
  key: { type: 'string' },
  http2: { type: 'boolean' },
  log: { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const

/** Settings keys of the config file, with how each is checked. */
const CONFIG_KEYS = ['dir', 'port', 'host', 'workers', 'compress', 'single', 'cors', 'maxAge', 'immutable', 'extensions', 'dotfiles', 'listing', 'cert', 'key', 'http2', 'log'] as const
type ConfigKey = (typeof CONFIG_KEYS)[number]

export type Parsed = { command: 'help' } | { command: 'version' } | { command: 'serve'; settings: ServeSettings }

const DEFAULTS: ServeSettings = {
  dir: '.',
  port: 8080,
  host: '127.0.0.1',
  workers: 0, // replaced by the core count
  compress: false,
  single: false,
  cors: false,
  maxAge: 0,
  immutable: null,
  extensions: [],
  dotfiles: 'ignore',
  listing: true,
  cert: null,
  key: null,
  http2: false,
  log: 'text',
}

function bad(message: string): never {
  throw new UsageError(message)
}

function integer(name: string, raw: unknown, min: number, max: number): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN
  if (!Number.isInteger(n) || n < min || n > max) bad(`${name} must be an integer from ${min} to ${max}, not ${show(raw)}`)
  return n
}

function bool(name: string, raw: unknown): boolean {
  if (typeof raw !== 'boolean') bad(`${name} must be true or false, not ${show(raw)}`)
  return raw
}

function text(name: string, raw: unknown): string {
  if (typeof raw !== 'string' || raw === '') bad(`${name} must be a non-empty string, not ${show(raw)}`)
  return raw
}

function show(raw: unknown): string {
  return typeof raw === 'string' ? `'${raw}'` : (JSON.stringify(raw) ?? String(raw))
}

const YEAR_MS = 365 * 24 * 3600 * 1000

/** Seconds (as sirv-cli and http-server take them) or an `ms` duration ('1h', '7d'). */
function maxAge(name: string, raw: unknown): number {
  let value = NaN
  if (typeof raw === 'number') value = raw * 1000
  else if (typeof raw === 'string' && /^\d+$/.test(raw)) value = Number(raw) * 1000
  else if (typeof raw === 'string' && /^\d+(?:\.\d+)?\s*[a-z]+$/i.test(raw)) value = ms(raw as ms.StringValue) ?? NaN
  if (!Number.isFinite(value) || value < 0 || value > YEAR_MS) {
    bad(`${name} must be seconds or a duration such as 10m, 1h or 7d, at most a year, not ${show(raw)}`)
  }
  return Math.floor(value)
}

function pattern(name: string, raw: unknown): RegExp {
  const source = text(name, raw)
  try {
    return new RegExp(source)
  } catch (err) {
    return bad(`${name} is not a regular expression: ${(err as Error).message}`)
  }
}

function extensionList(name: string, raw: unknown): string[] {
  const list = typeof raw === 'string' ? raw.split(',').map((e) => e.trim()) : raw
  if (!Array.isArray(list) || list.length === 0) bad(`${name} must be a list of extensions such as html,htm, not ${show(raw)}`)
  return list.map((e) => {
    if (typeof e !== 'string' || !/^\.?[A-Za-z0-9_-]+$/.test(e)) bad(`${name}: ${show(e)} is not an extension`)
    return e.replace(/^\./, '')
  })
}

function oneOf<T extends string>(name: string, raw: unknown, allowed: readonly T[]): T {
  if (typeof raw !== 'string' || !(allowed as readonly string[]).includes(raw)) bad(`${name} must be ${allowed.join(', ')}; not ${show(raw)}`)
  return raw as T
}

function readable(name: string, raw: unknown): string {
  const file = text(name, raw)
  try {
    if (!statSync(file).isFile()) bad(`${name} ${file}: not a file`)
  } catch (err) {
    if (err instanceof UsageError) throw err
    bad(`${name} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
  }
  return file
}

/** Checks one setting (`name` is how the user wrote it: a flag or a config key). */
function setting(key: ConfigKey, name: string, raw: unknown, into: Partial<ServeSettings>): void {
  switch (key) {
    case 'dir':
      into.dir = text(name, raw)
      break
    case 'port':
      into.port = integer(name, raw, 0, 65535)
      break
    case 'host':
      into.host = text(name, raw)
      break
    case 'workers':
      into.workers = integer(name, raw, 1, 1024)
      break
    case 'compress':
    case 'single':
    case 'cors':
    case 'listing':
    case 'http2':
      into[key] = bool(name, raw)
      break
    case 'maxAge':
      into.maxAge = maxAge(name, raw)
      break
    case 'immutable':
      // true: the default pattern; a string: a pattern of one's own.
      into.immutable = raw === false ? null : raw === true ? FINGERPRINTED : pattern(name, raw)
      break
    case 'extensions':
      into.extensions = extensionList(name, raw)
      break
    case 'dotfiles':
      into.dotfiles = oneOf(name, raw, ['ignore', 'deny', 'allow'] as const)
      break
    case 'cert':
    case 'key':
      into[key] = readable(name, raw)
      break
    case 'log':
      into.log = oneOf(name, raw, ['text', 'json', 'off'] as const)
      break
  }
}

function fromConfig(file: string): Partial<ServeSettings> {
  let json: unknown
  try {
    json = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    bad(`--config ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`)
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) bad(`--config ${file}: must hold a JSON object`)
  const into: Partial<ServeSettings> = {}
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(k)) bad(`--config ${file}: unknown setting '${k}' (known: ${CONFIG_KEYS.join(', ')})`)
    setting(k as ConfigKey, `${k} in ${file}`, v, into)
  }
  return into
}

/** Reads `uring-fs <command> [dir] [flags]`; throws UsageError on anything it cannot take. */
export function parseServeArgs(argv: string[]): Parsed {
  let parsed
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: FLAGS })
  } catch (err) {
    return bad((err as Error).message.split('\n')[0].split('. ')[0])
  }
  const { values: v, positionals } = parsed
  if (v.help) return { command: 'help' }
  if (v.version) return { command: 'version' }
  const [command, dir, ...extra] = positionals
  if (command === undefined) bad('no command given')
  if (command !== 'serve') bad(`unknown command '${command}'`)
  if (extra.length) bad(`unexpected argument '${extra[0]}'`)

  const fromFile = v.config !== undefined ? fromConfig(v.config) : {}
  const given: Partial<ServeSettings> = {}
  if (dir !== undefined) setting('dir', 'dir', dir, given)
  if (v.port !== undefined) setting('port', '--port', v.port, given)
  if (v.host !== undefined) setting('host', '--host', v.host, given)
  if (v.workers !== undefined) setting('workers', '--workers', v.workers, given)
  for (const k of ['compress', 'single', 'cors', 'http2'] as const) if (v[k] !== undefined) given[k] = v[k]
  if (v.listing !== undefined && v['no-listing'] !== undefined) bad('--listing and --no-listing cannot both be given')
  if (v.listing !== undefined) given.listing = true
  if (v['no-listing'] !== undefined) given.listing = false
  if (v['max-age'] !== undefined) setting('maxAge', '--max-age', v['max-age'], given)
  if (v['immutable-pattern'] !== undefined) setting('immutable', '--immutable-pattern', v['immutable-pattern'], given)
  else if (v.immutable !== undefined) given.immutable = FINGERPRINTED
  if (v.extensions !== undefined) setting('extensions', '--extensions', v.extensions, given)
  if (v.dotfiles !== undefined) setting('dotfiles', '--dotfiles', v.dotfiles, given)
  if (v.cert !== undefined) setting('cert', '--cert', v.cert, given)
  if (v.key !== undefined) setting('key', '--key', v.key, given)
  if (v.log !== undefined) setting('log', '--log', v.log, given)

  const settings: ServeSettings = { ...DEFAULTS, ...fromFile, ...given }
  if (settings.workers === 0) settings.workers = availableParallelism()
  if ((settings.cert === null) !== (settings.key === null)) bad('--cert and --key go together: give both for HTTPS')
  if (settings.http2 && settings.cert === null) bad('--http2 needs --cert and --key (browsers speak HTTP/2 only over TLS)')
  return { command: 'serve', settings }
}

/** The settings as a worker process receives them (in its environment). */
export function encodeSettings(s: ServeSettings): string {
  return JSON.stringify({ ...s, immutable: s.immutable === null ? null : s.immutable.source })
}

export function decodeSettings(json: string): ServeSettings {
  const o = JSON.parse(json) as Omit<ServeSettings, 'immutable'> & { immutable: string | null }
  return { ...o, immutable: o.immutable === null ? null : new RegExp(o.immutable) }
}
