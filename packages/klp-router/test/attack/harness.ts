/**
 * Attack harness on real TCP (loopback): a target router with an echo TASK_REQUEST handler in this
 * process, and peers in processes of their own (`flooder.ts`): attackers that flood the target with
 * pre-signed tasks or stop reading, and an honest peer that sends sequential requests and reports
 * their latency. Used by the attack regression tests and by `bench/attack.ts`.
 */
import { createSignatureVerifier, generateIdentity, type Identity } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus, type TrustEngine } from '@kos-mesh/interface'
import { tcp, type TcpInit } from '@kos-mesh/transport-tcp'
import { createRouter, type CreateRouterOptions, type Router } from '../../src/index.js'
import type { Tracer } from './trace.js'

export interface Mesh {
  target: Router
  targetId: Identity
  stop(): Promise<void>
}

const verifier = createSignatureVerifier()

/** The target: authority `target.mesh.kai`, listening on loopback, answering TASK_REQUEST with an echo. */
export async function startTarget(init: Partial<CreateRouterOptions> = {}, trustEngine?: TrustEngine, tcpInit: TcpInit = {}, tracer?: Tracer): Promise<Mesh> {
  const targetId = generateIdentity()
  const transport = tcp(tcpInit)({ identity: targetId })
  const target = await createRouter({
    authority: 'target.mesh.kai',
    identity: targetId,
    signatureVerifier: tracer === undefined ? verifier : tracer.verifier(verifier),
    transports: [tracer === undefined ? transport : tracer.transport(transport)],
    listen: ['tcp://127.0.0.1:0'],
    ...(trustEngine === undefined ? {} : { trustEngine }),
    ...init,
  })
  target.handle(KLPMessageType.TASK_REQUEST, async (msg, ctx) => {
    tracer?.handler(msg.metadata.message_id, ctx.fromPeer, 0)
    const response = await target.createResponse(msg, { echo: msg.payload.data })
    tracer?.handler(msg.metadata.message_id, ctx.fromPeer, 1)
    return { status: ProcessingStatus.PROCESSED, response }
  })
  return { target, targetId, stop: async () => { await target.stop() } }
}

export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!
}

import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

export interface FlooderOptions {
  mode: 'flood' | 'noread' | 'honest'
  count: number
  /** Payload bytes per task (0: a short string). */
  bytes?: number
  ttl?: number
  /** Throw-away DIDs signing the tasks (one connection). */
  dids?: number
  /** CPU list for `taskset -c` (the child then runs only there). Default: not pinned. */
  cpus?: string
  /** Runs the child under `nice -n <nice>` (lower CPU priority). Default: not niced. */
  nice?: number
  /**
   * Runs the child in the SCHED_IDLE class (`chrt -i 0`): on a CPU it shares with another client,
   * it runs only while that one does not want the CPU, and gives it up as soon as it does (an
   * attacker on a machine of its own delays the honest client not at all). Default: normal class.
   */
  idle?: boolean
}

export interface HonestResult {
  /** Latency of each completed request, ms. */
  lat: number[]
  failed: number
  /** Per completed request: message id, wall-clock ms (timeOrigin + now) when sent and when answered. */
  trace: Array<[string, number, number]>
}

export interface Flooder {
  /** Starts the flood; resolves when the attacker sent everything it could. */
  go(): Promise<number>
  /** Mode `honest`: runs `n` sequential requests in the child; their latencies (ms) and failures. */
  requests(n: number): Promise<HonestResult>
  kill(): void
  readonly process: ChildProcess
  /** The DID of the child's first signer (its connection's peer DID). */
  readonly did: string
}

const FLOODER = fileURLToPath(new URL('./flooder.ts', import.meta.url))

/** Spawns an attacker process; resolves once it is connected and has pre-signed its tasks. */
export async function spawnFlooder(targetAddr: string, targetDid: string, o: FlooderOptions): Promise<Flooder> {
  const args = ['--import', 'tsx', FLOODER, o.mode, targetAddr, targetDid, String(o.count), String(o.bytes ?? 0), String(o.ttl ?? 60), String(o.dids ?? 1)]
  // `cpus` (e.g. '1'): the child runs pinned to those CPUs (taskset), away from the target's
  const cmd = [...(o.idle === true ? ['chrt', '-i', '0'] : []), ...(o.nice === undefined ? [] : ['nice', '-n', String(o.nice)]), ...(o.cpus === undefined ? [] : ['taskset', '-c', o.cpus]), process.execPath, ...args]
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })
  let killed = false
  const next = (): Promise<string> => new Promise((resolve, reject) => {
    // a child killed by the test ends its pending exchange quietly
    const onExit = (code: number | null): void => (killed ? resolve('done -1') : reject(new Error(`flooder exited with ${code}`)))
    child.once('exit', onExit)
    lines.once('line', (l) => {
      child.off('exit', onExit)
      resolve(l)
    })
  })
  const ready = await next()
  if (!ready.startsWith('ready ')) throw new Error(`expected ready from the flooder, got ${ready}`)
  return {
    process: child,
    did: ready.slice(6),
    go: async () => {
      const done = next()
      child.stdin!.write('go\n')
      const l = await done
      return Number(l.split(' ')[1])
    },
    requests: async (n) => {
      const done = next()
      child.stdin!.write(`${n}\n`)
      const l = await done
      if (l === 'done -1') return { lat: [], failed: n, trace: [] }
      return JSON.parse(l.slice(5)) as HonestResult
    },
    kill: () => {
      killed = true
      child.kill('SIGKILL')
    },
  }
}
