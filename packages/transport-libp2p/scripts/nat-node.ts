/**
 * One node of the NAT scenario (scripts/nat-scenario.mjs runs it inside a network namespace with
 * `ip netns exec <ns> node --import tsx scripts/nat-node.ts <role> ...`). It prints one JSON object
 * per line on stdout (`{"event": ...}`) and reads commands from stdin, one per line:
 * `info` (print networkInfoOf(host)) and `exit`.
 *
 *   relay   --listen <ma>                        a GATEWAY_NODE: KLP + circuit relay v2 server
 *   private --listen <ma> --relay <relay ma>     behind the NAT: reserves a relay slot, echoes KLP frames
 *   peer    --listen <ma> --target <circuit ma> --did <did of private>
 *           dials the private node through the relay, exchanges a KLP frame, then lets DCUtR upgrade
 *           to a direct connection and exchanges another KLP frame over it
 */
import '../src/polyfill.js'
import { createInterface } from 'node:readline'
import { generateIdentity } from '@kos-mesh/did-security'
import type { Connection } from '@kos-mesh/interface'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
// transport.ts and reachability/ directly (not the package entry): the scenario depends on nothing else
import { Libp2pTransport } from '../src/transport.js'
import { networkInfoOf, reachabilityOptions } from '../src/reachability/index.js'
import { peerIdFromDid } from '../src/peer-id.js'

const [role, ...rest] = process.argv.slice(2)
const args = new Map<string, string>()
for (let i = 0; i + 1 < rest.length; i += 2) args.set(String(rest[i]).replace(/^--/, ''), String(rest[i + 1]))
const arg = (k: string): string => {
  const v = args.get(k)
  if (v === undefined) throw new Error(`expected --${k}`)
  return v
}

const enc = new TextEncoder()
const dec = new TextDecoder()
const t0 = Date.now()
function emit(event: string, data: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, role, ms: Date.now() - t0, ...data })}\n`)
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const isCircuit = (a: string): boolean => a.includes('/p2p-circuit')

const identity = generateIdentity()
/** The peer holds back direct inbound connections from the private node until the relayed exchange is done. */
let gate: PeerId | undefined
const transport = new Libp2pTransport({
  dialTimeoutMs: 15_000,
  libp2pOptions: {
    ...reachabilityOptions({ relay: role === 'relay' }),
    connectionGater: {
      denyInboundEncryptedConnection: (peer: PeerId) => gate !== undefined && peer.equals(gate),
      // the namespaces use private ranges on the NAT's inside only; allow dialing every address
      denyDialMultiaddr: () => false,
    },
  },
}, { identity })

async function echo(conn: Connection): Promise<void> {
  emit('klp-inbound', { from: conn.remotePeer, remoteAddr: conn.remoteAddr, relayed: isCircuit(conn.remoteAddr) })
  for await (const frame of conn) {
    const text = dec.decode(frame)
    emit('klp-frame', { text, relayed: isCircuit(conn.remoteAddr) })
    await conn.send(enc.encode(`echo: ${text}`))
  }
}

async function exchange(addr: string, did: string, text: string): Promise<{ reply: string; remoteAddr: string }> {
  const conn = await transport.dial(addr, { remotePeer: did, signal: AbortSignal.timeout(20_000) })
  try {
    await conn.send(enc.encode(text))
    for await (const f of conn) return { reply: dec.decode(f), remoteAddr: conn.remoteAddr }
    throw new Error('expected an echo, got the end of the connection')
  } finally {
    await conn.close().catch(() => {})
  }
}

function host(): Libp2p {
  const h = transport.libp2p
  if (h === undefined) throw new Error('expected a started host')
  return h
}

async function runPeer(): Promise<void> {
  const target = arg('target')
  const did = arg('did')
  const privId = peerIdFromDid(did)
  gate = privId
  // 1. through the relay
  try {
    const r = await exchange(`libp2p://${target}`, did, 'hello through the relay')
    emit('relay-klp', { ok: r.reply === 'echo: hello through the relay' && isCircuit(r.remoteAddr), reply: r.reply, remoteAddr: r.remoteAddr })
  } catch (err) {
    emit('relay-klp', { ok: false, error: String(err) })
  }
  // 2. let DCUtR upgrade a fresh relayed connection (the first upgrade attempt met the gate)
  gate = undefined
  await host().hangUp(privId).catch(() => {})
  const deadline = Date.now() + 20_000
  let direct: string | undefined
  let relayed = false
  try {
    await host().dial(multiaddr(target), { signal: AbortSignal.timeout(10_000) })
    relayed = true
  } catch (err) {
    emit('relay-redial', { ok: false, error: String(err) })
  }
  while (relayed && Date.now() < deadline) {
    const c = host().getConnections(privId).find((x) => !isCircuit(x.remoteAddr.toString()) && x.status === 'open')
    if (c !== undefined) { direct = c.remoteAddr.toString(); break }
    await sleep(100)
  }
  emit('direct', { ok: direct !== undefined, addr: direct, connections: host().getConnections(privId).map((c) => `${c.direction} ${c.remoteAddr.toString()}`) })
  if (direct !== undefined) {
    // DCUtR closes the relayed connection once the direct one is up; a KLP stream opened on the
    // relayed one in between would be reset, so wait for it to go (and close it after 3 s)
    const until = Date.now() + 3_000
    const relayedConns = (): ReturnType<Libp2p['getConnections']> => host().getConnections(privId).filter((x) => isCircuit(x.remoteAddr.toString()))
    while (relayedConns().length > 0 && Date.now() < until) await sleep(50)
    await Promise.all(relayedConns().map(async (c) => { await c.close().catch(() => {}) }))
    let last: unknown
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        const r = await exchange(`libp2p://${target}`, did, 'hello directly')
        emit('direct-klp', { ok: r.reply === 'echo: hello directly' && !isCircuit(r.remoteAddr), reply: r.reply, remoteAddr: r.remoteAddr, attempt })
        last = undefined
        break
      } catch (err) {
        last = err
      }
    }
    if (last !== undefined) emit('direct-klp', { ok: false, error: String(last) })
  }
  emit('done')
}

async function main(): Promise<void> {
  await transport.listen(`libp2p://${arg('listen')}`, (conn) => { void echo(conn).catch((err: unknown) => { emit('klp-error', { error: String(err) }) }) })
  if (role === 'private') {
    await transport.listen(`libp2p://${arg('relay')}/p2p-circuit`, () => {})
    const deadline = Date.now() + 15_000
    while (!host().getMultiaddrs().some((m) => isCircuit(m.toString())) && Date.now() < deadline) await sleep(50)
  }
  emit('ready', { did: transport.did, peerId: host().peerId.toString(), addrs: host().getMultiaddrs().map((m) => m.toString()) })
  if (role === 'peer') void runPeer().catch((err: unknown) => { emit('error', { error: String(err) }) })
  const rl = createInterface({ input: process.stdin })
  for await (const line of rl) {
    const cmd = line.trim()
    if (cmd === 'info') {
      emit('info', { info: networkInfoOf(host()) })
    } else if (cmd === 'exit') {
      break
    }
  }
  await transport.close()
  emit('closed')
  process.exit(0)
}

main().catch((err: unknown) => {
  emit('error', { error: String((err as Error)?.stack ?? err) })
  process.exit(1)
})
