import { systemClock, type Clock, type Logger } from '@kos-mesh/interface'

/** The log levels, most verbose first; `silent` writes nothing (config `logLevel`, CLI `--log-level`). */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const
/** One of LOG_LEVELS: lines below it are dropped. */
export type LogLevel = (typeof LOG_LEVELS)[number]

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

/** A silent logger (the interface's). */
export { silentLogger } from '@kos-mesh/interface'

/** Keys of the line itself: a field of the same name is written as `field_<key>`, never over them. */
const RESERVED = new Set(['time', 'level', 'name', 'msg'])

function safe(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  if (fields === undefined) return {}
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fields)) {
    out[RESERVED.has(k) ? `field_${k}` : k] = v instanceof Error ? { name: v.name, message: v.message } : typeof v === 'bigint' ? v.toString() : v
  }
  return out
}

/** A structured logger writing one JSON object per line (`{ time, level, msg, ...fields }`). */
export function jsonLogger(level: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l), name?: string, clock: Pick<Clock, 'now'> = systemClock): Logger {
  const min = RANK[level]
  const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>): void => {
    if (RANK[lvl] < min) return
    let line: string
    try {
      line = JSON.stringify({ time: new Date(clock.now()).toISOString(), level: lvl, ...(name === undefined ? {} : { name }), msg, ...safe(fields) })
    } catch {
      line = JSON.stringify({ time: new Date(clock.now()).toISOString(), level: lvl, msg })
    }
    write(line + '\n')
  }
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  }
}
