/**
 * `kos-mesh logs`: prints the node's log file (JSON lines) for people, or follows it.
 */
import { stat } from 'node:fs/promises'
import { dataDirPaths } from './config.js'
import { ExitCode, GLOBAL_TEXT, intOption, needPositionals, note, str, toJson, UsageError, type Command } from './cli-common.js'
import { NotInitializedError } from './errors.js'
import { followLog, readLogTail } from './logfile.js'

const LEVEL_RANK: Record<string, number> = { debug: 10, info: 20, warn: 30, error: 40 }

/** A log line for people: `time  LEVEL  msg  key=value ...` (lines that are not JSON as they are). */
function humanLogLine(line: string): string {
  let o: Record<string, unknown>
  try {
    o = JSON.parse(line) as Record<string, unknown>
  } catch {
    return line
  }
  if (o === null || typeof o !== 'object') return line
  const { time, level, msg, name: _name, ...rest } = o
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`)
    .join(' ')
  return `${String(time ?? '')}  ${String(level ?? '').toUpperCase().padEnd(5)}  ${String(msg ?? '')}${fields.length > 0 ? `  ${fields}` : ''}`
}

function levelOf(line: string): number {
  const m = /"level":"(debug|info|warn|error)"/.exec(line)
  return m === null ? 0 : (LEVEL_RANK[m[1] as string] ?? 0)
}

export const logs: Command = {
  help: `Usage: kos-mesh logs [--follow] [--lines N] [--level <level>]

Prints the log of the node of the data dir (logs/node.log and its rotated files node.log.1, ...,
JSON lines written by \`kos-mesh start\`), one line per event for people: time, level, message
and fields. Works whether the node runs or not. Every event an operator asks about has a line:
connections opened and closed (with the reason), handshakes refused, tasks served and refused
(with the reason code), forged or replayed messages (message rejected, with the reason), trust
changes, bootstrap progress, redials and "no peers connected". Each kind of event is
rate-limited (20 at once, then 2 per second); a "log events suppressed" line counts what was
left out.

Options:
  --follow, -f        keep printing new lines until Ctrl-C (follows rotations)
  --lines <N>         print the last N lines first (default: 50; 0 with --follow: only new ones)
  --level <level>     only lines at this level or above: debug, info, warn or error

With --json, the lines are printed as they are in the file: one JSON document
{"file": ..., "lines": [...]} without --follow, one JSON object per line with --follow.

${GLOBAL_TEXT}
`,
  options: {
    follow: { type: 'boolean', short: 'f' },
    lines: { type: 'string' },
    level: { type: 'string' },
  },
  async run(ctx) {
    needPositionals(ctx, 0, '')
    const n = intOption('lines', ctx.values.lines, 0, 1_000_000) ?? 50
    const level = str(ctx.values.level)
    if (level !== undefined && LEVEL_RANK[level] === undefined) throw new UsageError(`--level: expected one of debug, info, warn, error, got ${JSON.stringify(level)}`)
    const min = level === undefined ? 0 : (LEVEL_RANK[level] as number)
    const p = dataDirPaths(ctx.dataDir)
    const follow = ctx.values.follow === true
    const haveConfig = await stat(p.config).then(() => true, () => false)
    if (!haveConfig) throw new NotInitializedError(`no configuration in ${p.root}: run \`kos-mesh init --data-dir ${p.root}\` first`)
    const wanted = (l: string): boolean => min === 0 || levelOf(l) >= min
    const tail = readLogTail(p.log, n > 0 ? n * (min > 0 ? 20 : 1) : 0).filter(wanted).slice(-n)
    const parse = (l: string): unknown => {
      try {
        return JSON.parse(l)
      } catch {
        return l
      }
    }
    if (!follow) {
      if (ctx.json) ctx.io.stdout(toJson({ file: p.log, lines: tail.map(parse) }) + '\n')
      else if (tail.length === 0) note(ctx, `no log lines yet in ${p.log}`)
      else ctx.io.stdout(tail.map(humanLogLine).join('\n') + '\n')
      return ExitCode.OK
    }
    const out = (l: string): void => ctx.io.stdout((ctx.json ? l : humanLogLine(l)) + '\n')
    for (const l of tail) out(l)
    const controller = new AbortController()
    ctx.io.onSignal?.(() => controller.abort())
    await followLog(p.log, (l) => void (wanted(l) && out(l)), ctx.clock, { signal: controller.signal })
    return ExitCode.OK
  },
}
