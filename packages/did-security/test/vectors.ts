/** Locates the repository's vectors/ folder (KOS_VECTORS_DIR overrides). Missing + CI => loud failure. */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const vectorsDir = process.env.KOS_VECTORS_DIR || join(repoRoot, 'vectors')
export const haveVectors = existsSync(join(vectorsDir, 'README.md'))
/** Run vector suites when present; in CI, run them anyway so that a missing folder fails loudly. */
export const runVectors = haveVectors || process.env.CI !== undefined

export function loadJson<T = any>(rel: string): T {
  const p = join(vectorsDir, rel)
  if (!existsSync(p)) throw new Error(`test vectors missing: ${p} (set KOS_VECTORS_DIR)`)
  return JSON.parse(readFileSync(p, 'utf8')) as T
}

export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
