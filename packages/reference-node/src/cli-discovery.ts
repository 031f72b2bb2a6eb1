/**
 * The discovery commands of `kos-mesh`: `discover` (ranked peers through the DHT and gossip),
 * `dht find` / `dht providers` (DHT lookups) and `broadcast` (send one, or list those received).
 * Each is a client of the running node's control API (see control-discovery.ts), and `status`
 * prints the lines of `meshStatusLines`.
 */
import type { NetworkInfo } from '@kos-mesh/interface'
import { CAPABILITY_FLAGS, MAX_PROVIDER_NAME_LENGTH } from '@kos-mesh/peer-discovery'
import { checkDid } from './did.js'
import { controlCommand, ExitCode, GLOBAL_TEXT, intOption, list, needPositionals, print, str, table, usage, UsageError, type Command } from './cli-common.js'
import { scoreText } from './cli-trust.js'
import { MAX_DISCOVER_CAPABILITIES, MAX_DISCOVER_PEERS, MAX_GOSSIP_HOPS } from './control-discovery.js'
import { MAX_BROADCAST_CHARS, type MeshDiscoverResult, type MeshProvider, type MeshRecord, type MeshSummary, type ReceivedBroadcast } from './node-mesh.js'

/** Time a discovery or DHT lookup may take through the control API, ms. */
const LOOKUP_TIMEOUT_MS = 60_000

function dateText(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms)
}

function capabilityOption(v: unknown): string[] {
  const caps = [...new Set(list(v).flatMap((c) => c.split(',')).map((c) => c.trim()).filter((c) => c.length > 0))]
  for (const c of caps) if (!(CAPABILITY_FLAGS as readonly string[]).includes(c)) throw new UsageError(`--capability: expected one of ${CAPABILITY_FLAGS.join(', ')}, got ${JSON.stringify(c.slice(0, 40))}`)
  if (caps.length > MAX_DISCOVER_CAPABILITIES) throw new UsageError(`--capability: expected at most ${MAX_DISCOVER_CAPABILITIES}, got ${caps.length}`)
  return caps
}

export const discover: Command = controlCommand(
  `Usage: kos-mesh discover [--capability <cap>]... [--max N] [--hops N] [--no-dht] [--no-gossip]

Asks the running node for peers, ranked best first (trust, latency, capabilities): what it knows
from peer tables, plus what the DHT (providers of capability:<cap>, else the closest contacts)
and the gossip overlay (a peer-list walk of --hops hops) return now. Every record is signed by
its node and verified here. One line per peer:
  DID           the peer's DID
  AUTHORITY     its KLP authority (- when not known)
  METHOD        how the node first learned of it: seed, direct, dht or gossip
  FOUND BY      the sources that returned it during this call (dht, gossip; - for none)
  TRUST         the trust score this node gives it (0..10)
  CAPABILITIES  its true capabilities
  ADDRESSES     transport addresses it can be dialled at

Options:
  --capability <cap>  a capability every peer must have, repeatable (or comma separated):
                      ${CAPABILITY_FLAGS.join(', ')}
  --max <N>           at most N peers, a decimal integer 1..${MAX_DISCOVER_PEERS} (default: all)
  --hops <N>          hops of the gossip peer-list walk, 1..${MAX_GOSSIP_HOPS} (default: 3)
  --no-dht            do not ask the DHT
  --no-gossip         do not ask the gossip overlay

With --json: {"peers": [...], "sources": {"dht": "asked" | "skipped" | "off", "gossip": ...}}.

${GLOBAL_TEXT}
`,
  { capability: { type: 'string', multiple: true }, max: { type: 'string' }, hops: { type: 'string' }, 'no-dht': { type: 'boolean' }, 'no-gossip': { type: 'boolean' } },
  (ctx) => {
    needPositionals(ctx, 0, '')
    const capabilities = capabilityOption(ctx.values.capability)
    const max = intOption('max', ctx.values.max, 1, MAX_DISCOVER_PEERS)
    const hops = intOption('hops', ctx.values.hops, 1, MAX_GOSSIP_HOPS)
    const body = {
      ...(capabilities.length === 0 ? {} : { capabilities }),
      ...(max === undefined ? {} : { max }),
      ...(hops === undefined ? {} : { hops }),
      ...(ctx.values['no-dht'] === true ? { dht: false } : {}),
      ...(ctx.values['no-gossip'] === true ? { gossip: false } : {}),
    }
    return async (c) => {
      const r = await c.call<MeshDiscoverResult>('POST', '/v1/discover', body, { timeoutMs: LOOKUP_TIMEOUT_MS })
      const rows = r.peers.map((p) => [p.peer_id, p.authority ?? '-', p.discovery_method, p.found_by.join(',') || '-', scoreText(p.trust_score), p.capabilities.join(',') || '-', p.addresses.join(' ') || '-'])
      const asked = `dht ${r.sources.dht}, gossip ${r.sources.gossip}`
      const human = rows.length === 0 ? `no peers found${capabilities.length === 0 ? '' : ` with ${capabilities.join(', ')}`} (${asked})` : `${table(['DID', 'AUTHORITY', 'METHOD', 'FOUND BY', 'TRUST', 'CAPABILITIES', 'ADDRESSES'], rows)}\n(${rows.length} peer${rows.length === 1 ? '' : 's'}; ${asked})`
      print(ctx, human, r)
      return ExitCode.OK
    }
  },
)

/** A provider name: as given, or `capability:<flag>` for a bare capability flag. */
function providerName(v: string): string {
  const name = (CAPABILITY_FLAGS as readonly string[]).includes(v) ? `capability:${v}` : v
  if (name.length > MAX_PROVIDER_NAME_LENGTH || !/^[\x21-\x7e]+$/.test(name)) throw new UsageError(`<name>: expected 1..${MAX_PROVIDER_NAME_LENGTH} printable characters without spaces like capability:vector_storage, got ${JSON.stringify(v.slice(0, 80))}`)
  return name
}

export function recordText(r: MeshRecord): string {
  return [
    `did:           ${r.did}`,
    `authority:     ${r.authority ?? '-'}`,
    `role:          ${r.role}`,
    `capabilities:  ${r.capabilities.join(', ') || 'none'}`,
    ...(r.addresses.length === 0 ? ['addresses:     none'] : r.addresses.map((a) => `address:       ${a}`)),
    `signed:        ${dateText(r.timestamp)}`,
    `expires:       ${dateText(r.expires_at)}`,
  ].join('\n')
}

export const dht: Command = controlCommand(
  `Usage: kos-mesh dht find <did>
       kos-mesh dht providers <name> [--count N]

Looks up the DHT (Kademlia) from the running node.
  find <did>         the node's signed record, verified here: its authority, role (node
                     type), capabilities, addresses, and when it was signed and expires.
                     Exit 5 (ERR_NODE_NOT_FOUND) when no verified record of it is found.
  providers <name>   the nodes that provide <name> (capability:<cap>, agent:<kind>, ...; a bare
                     capability such as vector_storage means capability:vector_storage), each
                     provider record signed by its provider and verified here

Options:
  --count <N>        providers wanted at most, 1..${MAX_DISCOVER_PEERS} (default: the DHT's k)

${GLOBAL_TEXT}
`,
  { count: { type: 'string' } },
  (ctx) => {
    const sub = ctx.positionals[0]
    if (sub === undefined) throw new UsageError('missing subcommand: dht find <did> or dht providers <name>')
    if (sub === 'find') {
      if (ctx.values.count !== undefined) throw new UsageError('--count: only for `dht providers`')
      needPositionals({ ...ctx, positionals: ctx.positionals.slice(1) }, 1, '<did> (the DID to look up)')
      const did = ctx.positionals[1] as string
      usage('<did>', () => checkDid(did, 'a DID like did:key:z6Mk...'))
      return async (c) => {
        const r = await c.call<{ record: MeshRecord }>('GET', `/v1/dht/find?did=${encodeURIComponent(did)}`, undefined, { timeoutMs: LOOKUP_TIMEOUT_MS })
        print(ctx, recordText(r.record), r.record)
        return ExitCode.OK
      }
    }
    if (sub === 'providers') {
      needPositionals({ ...ctx, positionals: ctx.positionals.slice(1) }, 1, '<name> (e.g. capability:vector_storage)')
      const name = providerName(ctx.positionals[1] as string)
      const count = intOption('count', ctx.values.count, 1, MAX_DISCOVER_PEERS)
      return async (c) => {
        const r = await c.call<{ name: string; providers: MeshProvider[] }>('GET', `/v1/dht/providers?name=${encodeURIComponent(name)}${count === undefined ? '' : `&count=${count}`}`, undefined, { timeoutMs: LOOKUP_TIMEOUT_MS })
        const rows = r.providers.map((p) => [p.provider, p.authority ?? '-', dateText(p.expires_at), p.addresses.join(' ') || '-'])
        print(ctx, rows.length === 0 ? `no providers of ${name}` : table(['PROVIDER', 'AUTHORITY', 'EXPIRES', 'ADDRESSES'], rows), r)
        return ExitCode.OK
      }
    }
    throw new UsageError(`unknown subcommand "dht ${sub.slice(0, 40)}" (expected: dht find <did>, dht providers <name>)`)
  },
)

function dataText(d: unknown): string {
  return typeof d === 'string' ? d : JSON.stringify(d)
}

export const broadcast: Command = controlCommand(
  `Usage: kos-mesh broadcast <text>
       kos-mesh broadcast --data <json>
       kos-mesh broadcast --received

Sends a BROADCAST_ANNOUNCE from the running node to the whole mesh: signed by this node, spread
by the gossip overlay (Plumtree: each node relays it to its eager peers once; flooded to every
neighbour when gossip is off), checked and delivered once at every node. Each node that
receives one logs it ("broadcast received", with the sender's DID) and counts it (\`kos-mesh
status\`); --received lists those this node received (the last 64).

Options:
  --data <json>       send this JSON value instead of <text>
  --received          list the broadcasts received: time, sender, data

The data is at most ${MAX_BROADCAST_CHARS} characters as JSON.

${GLOBAL_TEXT}
`,
  { data: { type: 'string' }, received: { type: 'boolean' } },
  (ctx) => {
    if (ctx.values.received === true) {
      if (ctx.positionals.length > 0 || ctx.values.data !== undefined) throw new UsageError('--received: takes no <text> or --data')
      return async (c) => {
        const r = await c.call<{ broadcasts: ReceivedBroadcast[]; sent: number; received: number }>('GET', '/v1/broadcasts')
        const rows = r.broadcasts.map((b) => [dateText(b.received_at), b.from, b.authority, dataText(b.data).slice(0, 120)])
        print(ctx, rows.length === 0 ? `no broadcasts received (${r.sent} sent)` : table(['RECEIVED', 'FROM', 'AUTHORITY', 'DATA'], rows), r)
        return ExitCode.OK
      }
    }
    const raw = str(ctx.values.data)
    let data: unknown
    if (raw !== undefined) {
      if (ctx.positionals.length > 0) throw new UsageError('expected <text> or --data, got both')
      try {
        data = JSON.parse(raw)
      } catch {
        throw new UsageError(`--data: expected JSON, got ${JSON.stringify(raw.slice(0, 80))}`)
      }
    } else {
      needPositionals(ctx, 1, '<text> (or --data <json>)')
      data = ctx.positionals[0] as string
    }
    const size = JSON.stringify(data).length
    if (size > MAX_BROADCAST_CHARS) throw new UsageError(`<text>: expected at most ${MAX_BROADCAST_CHARS} characters as JSON, got ${size}`)
    return async (c) => {
      const r = await c.call<{ broadcast: { message_id: string; strategy: string; neighbours: number } }>('POST', '/v1/broadcast', { data })
      const b = r.broadcast
      print(ctx, `broadcast ${b.message_id} sent (${b.strategy}, ${b.neighbours} neighbour${b.neighbours === 1 ? '' : 's'})`, b)
      return ExitCode.OK
    }
  },
)

/** The `status` lines of the DHT, gossip and broadcasts. */
export function meshStatusLines(m: MeshSummary | undefined): string[] {
  if (m === undefined) return []
  const d = m.dht
  const g = m.gossip
  return [
    `dht:        ${d === null ? 'off' : `${d.contacts} contact${d.contacts === 1 ? '' : 's'}${d.joined ? '' : ' (not joined yet)'}, ${d.providersStored} provider record${d.providersStored === 1 ? '' : 's'} held, provides ${d.provided.join(', ') || 'nothing'}`}`,
    `gossip:     ${g === null ? 'off' : `active view ${g.active}, passive view ${g.passive}`}`,
    `broadcasts: ${m.broadcasts.sent} sent, ${m.broadcasts.received} received`,
  ]
}

/** The `status` line of the libp2p host's NetworkInfo (nat type, connectivity, relay addresses). */
export function networkStatusLines(n: NetworkInfo | undefined): string[] {
  if (n === undefined) return []
  const relays = n.addresses.filter((a) => a.is_relay).length
  const publics = n.addresses.filter((a) => a.is_public && !a.is_relay).length
  return [`network:    nat ${n.nat_type}, ${n.connectivity_status}, ${publics} public address${publics === 1 ? '' : 'es'}, ${relays} relay address${relays === 1 ? '' : 'es'}`]
}

/** The discovery commands, by name. */
export const DISCOVERY_COMMANDS: Record<string, Command> = { discover, dht, broadcast }
