/**
 * What every `kos-mesh` command shares: exit codes, the command and context shapes, output
 * helpers (one JSON document with --json, notes on stderr), option checks, and the wrapper of the
 * commands that talk to the running node through its control API.
 */
import type { ParseArgsConfig } from 'node:util'
import type { Clock } from '@kos-mesh/interface'
import { connectControl } from './control.js'

/** Exit codes of `kos-mesh` (stable; scripts rely on them). */
export const ExitCode = {
  OK: 0,
  /**
   * Something failed at runtime (I/O, an unexpected error), or the command could not do what it
   * was asked on this data dir: `init` on an initialized one without --force, `start` while a node
   * runs, a listen address in use, `stop` that timed out.
   */
  FAILURE: 1,
  /** Bad command line: unknown command or option, missing or invalid argument. */
  USAGE: 2,
  /** No node is running for the data directory (start one with `kos-mesh start`). */
  NOT_RUNNING: 3,
  /** The peer rejected the request (no_eligible_agents, insufficient_trust, agent_failed, ...). */
  REJECTED: 4,
  /** The peer could not be reached, or did not answer in time. */
  UNREACHABLE: 5,
  /**
   * The data directory is not initialized, its config is invalid, the keystore is unreadable or
   * its passphrase wrong, or its datastore lost its records (see `start --reset-store`).
   */
  CONFIG: 6,
  /**
   * Identity: the peer proved another DID than the one the address names (`connect
   * tcp://.../did:key:A` answered by B), or the authority is pinned to another DID.
   */
  IDENTITY: 7,
} as const

export interface CliIo {
  stdout: (s: string) => void
  stderr: (s: string) => void
  env: NodeJS.ProcessEnv
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); used by `start` and `logs --follow`. */
  onSignal?: (handler: () => void) => void
  /** Time and timers of the CLI and of the node it starts. Default `systemClock`. */
  clock?: Clock
  /**
   * Reads standard input to its end (`task <target> -`), at most `maxBytes` (more rejects with a
   * RangeError). Default: none (reading stdin is then a usage error).
   */
  readStdin?: (maxBytes: number) => Promise<string>
  /** Whether stderr is a terminal (progress bars are drawn only then). Default false. */
  stderrIsTTY?: boolean
  /** Whether a process runs (`stop` waits for the node's to end). Default `process.kill(pid, 0)`. */
  isProcessAlive?: (pid: number) => boolean
}

/** An AbortSignal that fires after `ms` of the clock's time (the timer does not keep the process alive). */
export function timeoutSignal(clock: Clock, ms: number): AbortSignal {
  const controller = new AbortController()
  clock.setTimeout(() => controller.abort(new DOMException('The operation timed out.', 'TimeoutError')), ms, { unref: true })
  return controller.signal
}

/** A bad command line (exit 2). `code` is the code of the typed error it wraps, else `ERR_USAGE`. */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly code: string

  constructor(message: string, code = 'ERR_USAGE') {
    super(message)
    this.code = code
  }
}

export const GLOBAL_OPTIONS = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options']

export const GLOBAL_TEXT = `Global options:
  --data-dir <dir>   data directory (default: $KOS_MESH_DATA_DIR, else ~/.kos-mesh)
  --json             one JSON document on stdout (errors too: {"error": {...}, "exitCode": N})
  -h, --help         show help`

export interface Command {
  help: string
  options: ParseArgsConfig['options']
  run(ctx: Ctx): Promise<number>
}

export interface Ctx {
  command: string
  values: Record<string, string | boolean | string[] | undefined>
  positionals: string[]
  dataDir: string
  json: boolean
  io: CliIo
  clock: Clock
}

export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))
}

export function print(ctx: Ctx, human: string, json: unknown): void {
  ctx.io.stdout(ctx.json ? toJson(json) + '\n' : human.endsWith('\n') ? human : human + '\n')
}

/** A note for people (stderr), never mixed into --json stdout. */
export function note(ctx: Ctx, text: string): void {
  ctx.io.stderr(`kos-mesh ${ctx.command}: ${text}\n`)
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

export function list(v: unknown): string[] {
  return Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : []
}

/** Formats rows as aligned columns (two spaces between columns; the last column is not padded). */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)))
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd()).join('\n')
}

export function bytesText(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

export function secondsText(ms: number): string {
  return ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : `${Math.round(ms / 1000)} s`
}

/** A plain decimal integer option in min..max (no `1e3`, `0x5`, `5.0`, `+5` or blanks). */
export function intOption(name: string, v: unknown, min: number, max: number): number | undefined {
  if (v === undefined) return undefined
  const n = typeof v === 'string' && /^-?[0-9]{1,15}$/.test(v) ? Number(v) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name}: expected a decimal integer in ${min}..${max}, got ${JSON.stringify(v)}`)
  return n
}

/** Runs a check that throws a typed error and turns it into a usage error (exit 2). */
export function usage<T>(what: string, check: () => T): T {
  try {
    return check()
  } catch (err) {
    const code = (err as { code?: unknown }).code
    throw new UsageError(`${what}: ${(err as Error).message}`, typeof code === 'string' && code.startsWith('ERR_') ? code : undefined)
  }
}

export function needPositionals(ctx: Ctx, n: number, what: string): void {
  if (ctx.positionals.length < n) throw new UsageError(`missing ${what}`)
  if (ctx.positionals.length > n) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.positionals[n])}`)
}

export type Control = Awaited<ReturnType<typeof connectControl>>

/** A command that talks to the running node: `prepare` checks the arguments first (usage errors win over "not running"). */
export function controlCommand(help: string, options: ParseArgsConfig['options'], prepare: (ctx: Ctx) => ((c: Control) => Promise<number>) | Promise<(c: Control) => Promise<number>>): Command {
  return {
    help,
    options,
    async run(ctx) {
      const fn = await prepare(ctx)
      const c = await connectControl(ctx.dataDir)
      return fn(c)
    },
  }
}

