/**
 * Helpers of the end-to-end tests: real `kos-mesh` processes (`node --import tsx src/cli.ts`,
 * workspace packages from their src/ through tsconfig.dev.json, so no build is needed), every wait
 * bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const PKG = join(dirname(fileURLToPath(import.meta.url)), '..')
export const ENV = { ...process.env, TSX_TSCONFIG_PATH: join(PKG, 'tsconfig.dev.json'), KOS_MESH_PASSPHRASE: '', KOS_MESH_DATA_DIR: '' }
export const WAIT_MS = 25_000
const CLI = [join(PKG, 'src/cli.ts')]

export interface Result {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs one CLI command to completion (bounded); `stdin` is written to its standard input. */
export function cli(args: string[], options: { timeoutMs?: number; stdin?: string } = {}): Promise<Result> {
  const timeoutMs = options.timeoutMs ?? WAIT_MS
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...CLI, ...args], { cwd: PKG, env: ENV, stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    if (options.stdin !== undefined) child.stdin?.end(options.stdin)
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`kos-mesh ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr}`))
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** The one JSON document a `--json` command printed on stdout. */
export function json<T = Record<string, unknown>>(r: Result): T {
  const lines = r.stdout.trim().split('\n').filter((l) => l.length > 0)
  if (lines.length !== 1) throw new Error(`expected one JSON document on stdout, got ${lines.length} lines: ${JSON.stringify(r.stdout)} (stderr ${r.stderr})`)
  try {
    return JSON.parse(lines[0] as string) as T
  } catch {
    throw new Error(`expected JSON on stdout, got ${JSON.stringify(r.stdout)} (stderr ${r.stderr})`)
  }
}

export interface Running {
  child: ChildProcess
  started: { did: string; authority: string; addrs: string[]; port: number; pid: number; policy: { task_min_trust: number }; saved: string[]; peers: number; peersKnown: number }
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
}

/** Starts `kos-mesh start --json` and waits (bounded) for its `started` line. */
export function startNode(dataDir: string, extra: string[] = [], track: Running[] = []): Promise<Running> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...CLI, 'start', '--json', '--data-dir', dataDir, '--log-level', 'warn', ...extra], {
      cwd: PKG,
      env: ENV,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    const timer = setTimeout(() => reject(new Error(`node in ${dataDir} did not start within ${WAIT_MS} ms\n${err}`)), WAIT_MS)
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.includes('"event":"started"'))
      if (line !== undefined) {
        clearTimeout(timer)
        const r: Running = { child, started: JSON.parse(line), stdout: () => out, stderr: () => err, exited }
        track.push(r)
        resolve(r)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`node in ${dataDir} exited with ${String(code)} before starting\n${err}`))
    })
  })
}

/** Ends the processes still running (SIGTERM, then SIGKILL after 5 s). */
export async function stopAll(running: Running[]): Promise<void> {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM')
  await Promise.all(
    running.map((r) =>
      Promise.race([
        r.exited,
        new Promise<void>((resolve) =>
          setTimeout(() => {
            r.child.kill('SIGKILL')
            resolve()
          }, 5000),
        ),
      ]),
    ),
  )
}

/** Calls the control API of the node of `dataDir` directly (faster than a CLI process per poll). */
export async function control(dataDir: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string; contentType: string }> {
  const info = JSON.parse(await readFile(join(dataDir, 'control.json'), 'utf8')) as { port: number }
  const token = (await readFile(join(dataDir, 'control.token'), 'utf8')).trim()
  const data = body === undefined ? undefined : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: info.port, method, path, headers: { authorization: `Bearer ${token}`, ...(data === undefined ? {} : { 'content-type': 'application/json' }) } },
      (res) => {
        let text = ''
        res.on('data', (d: Buffer) => (text += d.toString()))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, contentType: String(res.headers['content-type'] ?? '') }))
      },
    )
    req.on('error', reject)
    req.end(data)
  })
}

/** The DIDs a running node (its data dir) reports as connected in `GET /v1/peers`; [] when it does not answer. */
export async function connectedDids(dataDir: string): Promise<string[]> {
  const r = await control(dataDir, 'GET', '/v1/peers')
  if (r.status !== 200) return []
  return (JSON.parse(r.text) as { peers: Array<{ did: string; connected: boolean }> }).peers.filter((p) => p.connected).map((p) => p.did)
}

/** Polls `check` every 200 ms until it holds, at most `ms`. */
export async function eventually(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  let last: unknown
  while (Date.now() < end) {
    try {
      if (await check()) return
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`expected ${what} within ${ms} ms${last === undefined ? '' : ` (last error: ${String(last)})`}`)
}

/** Free TCP ports on 127.0.0.1 (bound then released; used at once). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer()
      s.once('error', reject)
      s.listen(0, '127.0.0.1', () => resolve(s))
    })),
  )
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
  return ports
}
