/**
 * Headless Chromium for the dashboard's browser tests: Debian's /usr/bin/chromium (or
 * KOS_MESH_CHROMIUM), installed with apt-get when missing and the tests run as root, as .ci/run does.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chromium, type BrowserContext } from 'playwright-core'

export const CHROMIUM = process.env.KOS_MESH_CHROMIUM ?? '/usr/bin/chromium'
/** Longest an apt-get install of Chromium may take here, ms. */
const INSTALL_LIMIT_MS = 600_000

/** Runs a shell command to its end, killed after `ms`; resolves with its exit code (null when killed or not started). */
function sh(command: string, ms: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    const timer = setTimeout(() => child.kill('SIGKILL'), ms)
    child.on('error', () => resolve(null))
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  })
}

/** Chromium is there, or root installs it with apt-get (as .ci/run does); else the reason to skip. */
export async function ensureChromium(): Promise<string | undefined> {
  if (existsSync(CHROMIUM)) return undefined
  if (CHROMIUM !== '/usr/bin/chromium') return `no Chromium at ${CHROMIUM} (KOS_MESH_CHROMIUM)`
  if (process.getuid?.() !== 0) return 'no /usr/bin/chromium, and not root to install it (apt-get install -y chromium)'
  if ((await sh('command -v apt-get', 5_000)) !== 0) return 'no /usr/bin/chromium, and no apt-get to install it'
  console.warn('browser tests: installing chromium (apt-get)')
  await sh('apt-get install -y chromium || (apt-get update && apt-get install -y chromium)', INSTALL_LIMIT_MS)
  return existsSync(CHROMIUM) ? undefined : 'no /usr/bin/chromium, and apt-get install -y chromium failed'
}

/** Whether the browser tests of `file` can run (Chromium there, or installed now); says why they are skipped when not. */
export async function haveChromium(file: string): Promise<boolean> {
  const skip = await ensureChromium()
  if (skip !== undefined) console.warn(`SKIP ${file}: ${skip}`)
  return skip === undefined
}

/** A fresh-profile headless Chromium; without the background-networking flags its own connections are refused here. */
export function launchChromium(profile: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  })
}
