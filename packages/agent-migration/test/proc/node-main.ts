/**
 * A kos-mesh node in its own process for the process crash tests: a klp-router on loopback TCP,
 * the migration service over a durable file store, commands as JSON lines on stdin, answers as
 * JSON lines on stdout. With CRASH_AT=k and CRASH_WHEN=before|after, `arm` makes the process kill
 * itself with SIGKILL just before or just after its k-th store write from then on.
 */
import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'
import { createSignatureVerifier, identityFromSeed } from '@kos-mesh/did-security'
import { KLPMessageType, type KeyValueStore } from '@kos-mesh/interface'
import { bulkTransfer, createRouter } from '@kos-mesh/klp-router'
import { tcp } from '@kos-mesh/transport-tcp'
import { agentMigration } from '../../src/index.js'
import { COUNTER_CODE, PERMS } from '../helpers.js'
import { fileStore } from './file-store.js'

const [name = 'a', dir = '/tmp/x'] = process.argv.slice(2)
const identity = identityFromSeed(new Uint8Array(createHash('sha256').update(`proc-test ${name}`).digest()))
const authority = `${name}.proc.kai`
const inner = fileStore(dir)
let armed = false
let puts = 0
const at = Number(process.env.CRASH_AT ?? 0)
const when = process.env.CRASH_WHEN ?? 'after'
const store: KeyValueStore = {
  ...inner,
  query: (p, o) => inner.query(p, o),
  async put(k, v, o) {
    if (armed && ++puts === at && when === 'before') process.kill(process.pid, 'SIGKILL')
    await inner.put(k, v, o)
    if (armed && puts === at && when === 'after') process.kill(process.pid, 'SIGKILL')
  },
}
const router = await createRouter({ authority, identity, signatureVerifier: createSignatureVerifier(), transports: [tcp()({ identity })], listen: ['tcp://127.0.0.1:0'] })
const bulk = bulkTransfer({ type: KLPMessageType.AGENT_MIGRATION })({ router })
bulk.start()
const svc = agentMigration({ recoveryIntervalMs: 300, requestTimeoutMs: 1500, prepareTimeoutMs: 4000 })({ router, identity, store, bulk })
await svc.start()
const out = (v: unknown): void => void process.stdout.write(`${JSON.stringify(v)}\n`)
out({ ready: true, addr: router.addrs()[0], did: identity.did, authority })

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line) as { op: string; [k: string]: unknown }
  try {
    if (cmd.op === 'dial') { await router.dial(cmd.addr as string, { remotePeer: cmd.did as string }); out({ ok: true }) }
    else if (cmd.op === 'create') { await svc.create({ agent_id: 'agent-1', name: 'counter', code: COUNTER_CODE, capabilities: ['count'], permissions: PERMS, data: { count: 0 }, params: { greeting: 'hi' }, probes: [1] }); out({ ok: true }) }
    else if (cmd.op === 'run') out({ ok: true, value: await svc.run('agent-1', 'x') })
    else if (cmd.op === 'arm') { armed = true; puts = 0; out({ ok: true }) }
    else if (cmd.op === 'migrate') out({ ok: true, value: await svc.migrate('agent-1', { type: 'move', to: cmd.did as string, authority: cmd.authority as string }) })
    else if (cmd.op === 'recover') { await svc.recover(); out({ ok: true }) }
    else if (cmd.op === 'status') out({ ok: true, value: (await svc.list()).map((x) => ({ id: x.agent_id, status: x.status, epoch: x.epoch })) })
    else if (cmd.op === 'exit') { await svc.stop(); bulk.stop(); await router.stop(); out({ ok: true }); process.exit(0) }
  } catch (err) {
    out({ ok: false, error: (err as Error).name, reason: (err as { reason?: string }).reason })
  }
}
