/**
 * Test watchdog (vitest setupFiles). A test that blocks its process's main thread (a native
 * deadlock, an endless synchronous loop) cannot run vitest's own testTimeout, and vitest 4 then
 * waits for the fork forever. This starts one worker thread per test process. The main thread bumps
 * a heartbeat in shared memory every 200 ms. When that heartbeat stops for KOS_TEST_WATCHDOG_MS
 * (default 60 s; 0 disables), the worker thread writes a report (test file, test name, stall time,
 * native stack of the main thread when gdb is installed) to stderr and to
 * .test-results/watchdog-<pid>.txt. Then it SIGKILLs the process. Vitest reports the dead fork as
 * an error and the run exits non-zero instead of hanging.
 * The worker uses only fd writes and syscalls, so it works while the main thread is parked on a futex.
 */
import { Worker } from 'node:worker_threads'
import { beforeEach } from 'vitest'

const STALL_MS = Number(process.env.KOS_TEST_WATCHDOG_MS ?? 60_000)
const NAME_BYTES = 1024

interface WatchdogState { beat: Int32Array; name: Uint8Array }
const g = globalThis as { __kosTestWatchdog?: WatchdogState }

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads')
const { writeSync, mkdirSync, writeFileSync } = require('node:fs')
const { execFileSync } = require('node:child_process')
const { sab, nameSab, stallMs, pid, dir } = workerData
const beat = new Int32Array(sab)
const nameBytes = new Uint8Array(nameSab)
let last = Atomics.load(beat, 0)
let since = Date.now()
setInterval(() => {
  const now = Atomics.load(beat, 0)
  if (now !== last) { last = now; since = Date.now(); return }
  const stalled = Date.now() - since
  if (stalled < stallMs) return
  const end = nameBytes.indexOf(0)
  const name = Buffer.from(nameBytes.subarray(0, end < 0 ? nameBytes.length : end)).toString('utf8')
  let text = 'test watchdog: the main thread of test process ' + pid + ' has not run for ' + stalled + ' ms\\n' +
    'in: ' + (name || '(no test started yet)') + '\\n'
  try {
    text += execFileSync('gdb', ['-p', String(pid), '-batch', '-ex', 'thread apply 1 bt 40'], { encoding: 'utf8', timeout: 20000, stdio: ['ignore', 'pipe', 'ignore'] })
  } catch { text += '(no native stack: gdb unavailable or failed)\\n' }
  try { writeSync(2, '\\n' + text + '\\n') } catch {}
  try { mkdirSync(dir, { recursive: true }); writeFileSync(dir + '/watchdog-' + pid + '.txt', text) } catch {}
  process.kill(pid, 'SIGKILL')
}, 250)
`

if (STALL_MS > 0 && g.__kosTestWatchdog === undefined) {
  const sab = new SharedArrayBuffer(4)
  const nameSab = new SharedArrayBuffer(NAME_BYTES)
  const state: WatchdogState = { beat: new Int32Array(sab), name: new Uint8Array(nameSab) }
  g.__kosTestWatchdog = state
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { sab, nameSab, stallMs: STALL_MS, pid: process.pid, dir: `${process.cwd()}/.test-results` },
  })
  worker.unref()
  const timer = setInterval(() => { Atomics.add(state.beat, 0, 1) }, 200)
  timer.unref()
}

beforeEach((ctx) => {
  const state = g.__kosTestWatchdog
  if (state === undefined) return
  const text = new TextEncoder().encode(`${ctx.task.file?.name ?? '?'} > ${ctx.task.name}`).subarray(0, NAME_BYTES - 1)
  state.name.fill(0)
  state.name.set(text)
})
