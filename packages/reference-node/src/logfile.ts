/**
 * The node's log file: JSON lines appended to `<data dir>/logs/node.log` (0600), rotated by size
 * (`node.log` -> `node.log.1` -> ... up to `keep` old files), written synchronously so that a
 * killed process loses no line it logged. `readLogTail` and `followLog` serve `kos-mesh logs`.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync, chmodSync } from 'node:fs'
import { dirname } from 'node:path'
import type { AbortOptions, Clock } from '@kos-mesh/interface'

export interface LogFileInit {
  /** The log file path. */
  path: string
  /** Size at which the file is rotated, bytes. Default 5 MiB. */
  maxBytes?: number
  /** Rotated files kept (`node.log.1` .. `node.log.<keep>`). Default 3. */
  keep?: number
}

export interface LogFile {
  readonly path: string
  /** Appends one line (ending with a newline). Errors are swallowed after the first is reported. */
  write(line: string): void
  close(): void
}

export const DEFAULT_LOG_MAX_BYTES = 5 * 1024 * 1024
export const DEFAULT_LOG_KEEP = 3

/** Opens (creating it 0600, its directory 0700) the log file for appending. */
export function openLogFile(init: LogFileInit, onError: (err: Error) => void = () => {}): LogFile {
  const maxBytes = init.maxBytes ?? DEFAULT_LOG_MAX_BYTES
  const keep = Math.max(1, init.keep ?? DEFAULT_LOG_KEEP)
  const path = init.path
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  try {
    chmodSync(dirname(path), 0o700)
  } catch {
    // best effort (the data dir itself is 0700)
  }
  let fd: number | undefined = openSync(path, 'a', 0o600)
  let size = fstatSync(fd).size
  let failed = false
  const rotate = (): void => {
    if (fd !== undefined) closeSync(fd)
    fd = undefined
    rmSync(`${path}.${keep}`, { force: true })
    for (let i = keep - 1; i >= 1; i--) {
      try {
        renameSync(`${path}.${i}`, `${path}.${i + 1}`)
      } catch {
        // no such file
      }
    }
    renameSync(path, `${path}.1`)
    fd = openSync(path, 'a', 0o600)
    size = 0
  }
  return {
    path,
    write(line: string): void {
      if (fd === undefined) return
      try {
        const buf = Buffer.from(line, 'utf8')
        if (size > 0 && size + buf.length > maxBytes) rotate()
        if (fd === undefined) return
        writeSync(fd, buf)
        size += buf.length
      } catch (err) {
        if (!failed) onError(err as Error)
        failed = true
      }
    },
    close(): void {
      if (fd !== undefined) closeSync(fd)
      fd = undefined
    },
  }
}

/** The log files of `path`, oldest first (`node.log.3`, ..., `node.log.1`, `node.log`), those that exist. */
export function logFiles(path: string, keep = DEFAULT_LOG_KEEP): string[] {
  const out: string[] = []
  for (let i = keep; i >= 1; i--) if (exists(`${path}.${i}`)) out.push(`${path}.${i}`)
  if (exists(path)) out.push(path)
  return out
}

function exists(p: string): boolean {
  try {
    return statSync(p).isFile()
  } catch {
    return false
  }
}

/** Reads at most `maxBytes` from the end of a file. */
function readEnd(p: string, maxBytes: number): string {
  const fd = openSync(p, 'r')
  try {
    const size = fstatSync(fd).size
    const len = Math.min(size, maxBytes)
    const buf = Buffer.alloc(len)
    let off = 0
    while (off < len) {
      const n = readSync(fd, buf, off, len - off, size - len + off)
      if (n === 0) break
      off += n
    }
    return buf.subarray(0, off).toString('utf8')
  } finally {
    closeSync(fd)
  }
}

/** The last `n` complete lines across the log files (rotated ones first), each at most 64 KiB read. */
export function readLogTail(path: string, n: number, keep = DEFAULT_LOG_KEEP): string[] {
  if (n <= 0) return []
  const lines: string[] = []
  const files = logFiles(path, keep).reverse() // newest first
  for (const f of files) {
    const text = readEnd(f, Math.min(64 * 1024 * 1024, Math.max(64 * 1024, n * 2048)))
    const part = text.split('\n').filter((l) => l.length > 0)
    // a read that started mid-file drops its first (partial) line
    if (text.length > 0 && statSync(f).size > Buffer.byteLength(text)) part.shift()
    lines.unshift(...part)
    if (lines.length >= n) break
  }
  return lines.slice(-n)
}

/**
 * Calls `onLine` for every line appended to `path` from its current end (from the start after a
 * rotation), polling every `intervalMs` of `clock` until `signal` aborts.
 */
export async function followLog(path: string, onLine: (line: string) => void, clock: Clock, options: AbortOptions & { intervalMs?: number; fromStart?: boolean } = {}): Promise<void> {
  const interval = options.intervalMs ?? 250
  let pos = options.fromStart === true ? 0 : exists(path) ? statSync(path).size : 0
  let ino = exists(path) ? statSync(path).ino : -1
  let rest = ''
  while (options.signal?.aborted !== true) {
    if (exists(path)) {
      const s = statSync(path)
      if (s.ino !== ino || s.size < pos) {
        // rotated or truncated: the new file from its start
        ino = s.ino
        pos = 0
        rest = ''
      }
      if (s.size > pos) {
        const fd = openSync(path, 'r')
        try {
          const len = Math.min(s.size - pos, 4 * 1024 * 1024)
          const buf = Buffer.alloc(len)
          const got = readSync(fd, buf, 0, len, pos)
          pos += got
          const text = rest + buf.subarray(0, got).toString('utf8')
          const parts = text.split('\n')
          rest = parts.pop() ?? ''
          for (const l of parts) if (l.length > 0) onLine(l)
        } finally {
          closeSync(fd)
        }
        continue
      }
    }
    try {
      await clock.sleep(interval, options)
    } catch {
      break
    }
  }
}
