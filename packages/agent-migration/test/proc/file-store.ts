/**
 * A durable KeyValueStore for the process tests: one file per key, written to a temporary file,
 * fsynced and renamed over the old one (atomic on POSIX), so a process killed at any instant leaves
 * every key either old or new.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { KeyValueStore } from '@kos-mesh/interface'

export function fileStore(dir: string): KeyValueStore {
  mkdirSync(dir, { recursive: true })
  const file = (k: string): string => join(dir, Buffer.from(k).toString('base64url'))
  const read = (k: string): Uint8Array | undefined => {
    try { return new Uint8Array(readFileSync(file(k))) } catch { return undefined }
  }
  return {
    async get(k) { return read(k) },
    async has(k) { return read(k) !== undefined },
    async put(k, v) {
      const tmp = `${file(k)}.tmp`
      const fd = openSync(tmp, 'w')
      try { writeSync(fd, v); fsyncSync(fd) } finally { closeSync(fd) }
      renameSync(tmp, file(k))
      const d = openSync(dir, 'r')
      try { fsyncSync(d) } finally { closeSync(d) }
    },
    async delete(k) { rmSync(file(k), { force: true }) },
    async *query(prefix) {
      const keys = readdirSync(dir).filter((n) => !n.endsWith('.tmp')).map((n) => Buffer.from(n, 'base64url').toString()).filter((k) => k.startsWith(prefix)).sort()
      for (const k of keys) {
        const v = read(k)
        if (v !== undefined) yield { key: k, value: v }
      }
    },
  }
}
