/**
 * The dashboard page's static files (src/dashboard/static: one HTML page, one script, one style
 * sheet; no build step), found beside this module when it runs from src/ and under the package's
 * src/ when it runs bundled from dist/. Read once, then served from memory.
 */
import { readFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

/** The files of the page, by the name they are served under (`/dashboard/<name>`; `index.html` is `/dashboard`). */
export const ASSET_TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
}

/** A served file: its bytes and content type. */
export interface Asset {
  body: Buffer
  type: string
}

/** The folder of the static files. */
export function assetDir(): string {
  const candidates = [new URL('./static/', import.meta.url), new URL('../src/dashboard/static/', import.meta.url)].map((u) => fileURLToPath(u))
  for (const dir of candidates) if (existsSync(join(dir, 'index.html'))) return dir
  throw new Error(`expected the dashboard's static files in one of ${candidates.join(', ')}, found none`)
}

/** Loads the assets once (the promise is cached by the caller). */
export async function loadAssets(dir: string = assetDir()): Promise<Map<string, Asset>> {
  const out = new Map<string, Asset>()
  for (const [name, type] of Object.entries(ASSET_TYPES)) out.set(name, { body: await readFile(join(dir, name)), type })
  return out
}
