/**
 * `kos-mesh vectors`: the running node's vector collections (status, create, add, import with a
 * progress bar, search, sync with a progress bar). A client of the control API's vector endpoints
 * (control-vectors.ts); files and vectors are checked here first (vectors-input.ts), so a bad
 * line of an import file sends nothing.
 */
import { readFile, stat } from 'node:fs/promises'
import { controlCommand, ExitCode, GLOBAL_TEXT, intOption, list, needPositionals, print, str, table, usage, UsageError, type Command, type Control, type Ctx } from './cli-common.js'
import { MAX_CREATE_REPLICAS, MAX_CREATE_SHARDS, MAX_SEARCH_DEADLINE_MS, MAX_SEARCH_K, SYNC_TIMEOUT_MS } from './control-vectors.js'
import { MAX_ADD_ENTRIES, type CollectionView, type SyncView, type VectorsView } from './node-vectors.js'
import { checkMetadata, MAX_IMPORT_FILE_BYTES, parseImportFile, parseVectorText, type VectorEntry } from './vectors-input.js'

const COLLECTION_RE = /^[A-Za-z0-9._-]{1,64}$/
const PEER_RE = /^[A-Za-z0-9._:%-]{1,300}$/
/** Bytes of entries (as JSON) one add request of an import carries at most. */
const IMPORT_BATCH_BYTES = 512 * 1024
/** How often the sync progress bar asks the node, ms. */
const PROGRESS_POLL_MS = 200
const BAR_WIDTH = 30
/** Longest wait for one batch of an import, ms. */
const ADD_TIMEOUT_MS = 120_000

/** `vectors status <collection>` of a collection the node does not have (exit 1, as the control API's 404). */
export class UnknownCollectionError extends Error {
  override name = 'UnknownCollectionError'
  readonly code = 'ERR_UNKNOWN_COLLECTION'
}

interface SearchDoc {
  search: {
    collection: string
    k: number
    hits: Array<{ id: string; owner: string; key: string; distance: number; shard: number; metadata?: Record<string, unknown> }>
    shards: Array<{ shard: number; answeredBy?: string; failures: Array<{ did: string; error: string }> }>
    complete: boolean
  }
}

/** Only the options of one subcommand may be given. */
function only(ctx: Ctx, sub: string, allowed: readonly string[]): void {
  for (const [k, v] of Object.entries(ctx.values)) {
    if (v === undefined || ['data-dir', 'json', 'help'].includes(k) || allowed.includes(k)) continue
    throw new UsageError(`--${k}: not used by \`vectors ${sub}\``)
  }
}

function collectionArg(ctx: Ctx, i: number): string {
  const c = ctx.positionals[i] as string
  if (!COLLECTION_RE.test(c)) throw new UsageError(`<collection>: expected 1..64 characters [A-Za-z0-9._-], got ${JSON.stringify(c.slice(0, 80))}`)
  return c
}

function args(ctx: Ctx, n: number, what: string): void {
  needPositionals({ ...ctx, positionals: ctx.positionals.slice(1) }, n, what)
}

/** One frame of a progress bar: `[#####-----]  45%  450 of 1000 entries`. */
export function countLine(done: number, total: number, unit: string, width = BAR_WIDTH): string {
  const f = total > 0 ? Math.max(0, Math.min(1, done / total)) : 0
  const fill = Math.round(f * width)
  return `[${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${String(Math.floor(f * 100)).padStart(3)}%  ${done} of ${total} ${unit}`
}

function shardsText(c: CollectionView): string {
  const s = c.sharding
  return `${s.method}, ${s.shard_count} shard${s.shard_count === 1 ? '' : 's'} x ${s.replication_factor} replica${s.replication_factor === 1 ? '' : 's'}`
}

function syncText(v: SyncView): string {
  const failed = v.peers.filter((p) => p.status !== 'completed')
  return `${v.status}: ${v.vectors_synced} entr${v.vectors_synced === 1 ? 'y' : 'ies'} fetched, ${v.shards_done} of ${v.shards_total} shards, ${v.peers.length} peer${v.peers.length === 1 ? '' : 's'}${failed.length > 0 ? ` (${failed.length} failed)` : ''}`
}

function collectionLines(c: CollectionView): string[] {
  const lines = [`${c.name}: ${c.dimensions} dimensions, ${c.metric}, ${c.quantization}, ${shardsText(c)}; ${c.entries} entr${c.entries === 1 ? 'y' : 'ies'} held here`]
  const rows = c.shards.map((s) => [String(s.shard), s.held ? 'yes' : 'no', s.held ? String(s.entries) : '-', s.held ? String(s.versions) : '-', s.holders.join(' ') || '-'])
  lines.push(...table(['SHARD', 'HELD', 'ENTRIES', 'VERSIONS', 'HOLDERS'], rows).split('\n').map((l) => `  ${l}`))
  if (c.last_sync !== null) lines.push(`  last sync: ${syncText(c.last_sync)}`)
  return lines
}

async function status(ctx: Ctx, c: Control, name: string | undefined): Promise<number> {
  const v = await c.call<VectorsView>('GET', '/v1/vectors')
  const cols = name === undefined ? v.collections : v.collections.filter((x) => x.name === name)
  if (name !== undefined && cols.length === 0) throw new UnknownCollectionError(`expected a collection of the node (${v.collections.map((x) => x.name).join(', ') || 'none'}), got ${JSON.stringify(name)}`)
  const lines = cols.length === 0 ? ['no collections (create one with `kos-mesh vectors create <name> --dimensions N`)'] : cols.flatMap(collectionLines)
  for (const s of v.syncs) lines.push(`syncing: ${s.collections.join(', ')}: ${syncText(s)}`)
  lines.push(`served: ${v.stats.requests} requests; received ${v.stats.entriesReceived} entries, refused ${v.stats.entriesRefused}`)
  print(ctx, lines.join('\n'), name === undefined ? v : { ...v, collections: cols })
  return ExitCode.OK
}

function create(ctx: Ctx): (c: Control) => Promise<number> {
  only(ctx, 'create', ['dimensions', 'metric', 'quantization', 'shards', 'replicas'])
  args(ctx, 1, '<name>')
  const name = collectionArg(ctx, 1)
  const dimensions = intOption('dimensions', ctx.values.dimensions, 1, 4096)
  if (dimensions === undefined) throw new UsageError('missing --dimensions <N> (the length of the vectors, 1..4096)')
  const metric = str(ctx.values.metric)
  if (metric !== undefined && !['cos', 'ip', 'l2sq'].includes(metric)) throw new UsageError(`--metric: expected cos, ip or l2sq, got ${JSON.stringify(metric.slice(0, 40))}`)
  const quantization = str(ctx.values.quantization)
  if (quantization !== undefined && !['f32', 'f16', 'i8'].includes(quantization)) throw new UsageError(`--quantization: expected f32, f16 or i8, got ${JSON.stringify(quantization.slice(0, 40))}`)
  const shards = intOption('shards', ctx.values.shards, 1, MAX_CREATE_SHARDS)
  const replicas = intOption('replicas', ctx.values.replicas, 1, MAX_CREATE_REPLICAS)
  const body = { name, dimensions, ...(metric === undefined ? {} : { metric }), ...(quantization === undefined ? {} : { quantization }), ...(shards === undefined ? {} : { shards }), ...(replicas === undefined ? {} : { replicas }) }
  return async (c) => {
    const r = await c.call<{ collection: CollectionView }>('POST', '/v1/vectors/create', body)
    print(ctx, `created ${collectionLines(r.collection).join('\n')}`, r.collection)
    return ExitCode.OK
  }
}

function add(ctx: Ctx): (c: Control) => Promise<number> {
  only(ctx, 'add', ['metadata'])
  args(ctx, 3, '<collection> <id> <vector>')
  const collection = collectionArg(ctx, 1)
  const raw = str(ctx.values.metadata)
  let metadata: unknown
  if (raw !== undefined) {
    try {
      metadata = JSON.parse(raw)
    } catch {
      throw new UsageError(`--metadata: expected a JSON object, got ${JSON.stringify(raw.slice(0, 80))}`)
    }
  }
  const entry: VectorEntry = usage('<vector>', () => ({
    id: ctx.positionals[2] as string,
    vector: parseVectorText(ctx.positionals[3] as string),
    ...(metadata === undefined ? {} : { metadata: checkMetadata(metadata) }),
  }))
  if (entry.id.length < 1 || entry.id.length > 256) throw new UsageError(`<id>: expected 1..256 characters, got ${entry.id.length}`)
  return async (c) => {
    const r = await c.call<{ collection: string; added: number }>('POST', '/v1/vectors/add', { collection, entries: [entry] })
    print(ctx, `added ${entry.id} to ${collection} (signed by this node)`, { collection, id: entry.id, added: r.added })
    return ExitCode.OK
  }
}

async function importFile(ctx: Ctx): Promise<(c: Control) => Promise<number>> {
  only(ctx, 'import', [])
  args(ctx, 2, '<collection> <file> (JSON lines: {"id", "vector", "metadata"?})')
  const collection = collectionArg(ctx, 1)
  const file = ctx.positionals[2] as string
  const size = await stat(file).then((s) => (s.isFile() ? s.size : -1), () => -2)
  if (size === -2) throw new UsageError(`<file>: no such file ${JSON.stringify(file.slice(0, 200))}`)
  if (size < 1 || size > MAX_IMPORT_FILE_BYTES) throw new UsageError(`<file>: expected a file of 1..${MAX_IMPORT_FILE_BYTES} bytes, got ${size < 0 ? 'not a file' : `${size} bytes`}`, 'ERR_INVALID_IMPORT_FILE')
  const text = await readFile(file, 'utf8')
  const entries = usage(file, () => parseImportFile(text))
  return async (c) => {
    // the vectors' length is checked against the collection before anything is sent
    const v = await c.call<VectorsView>('GET', '/v1/vectors')
    const col = v.collections.find((x) => x.name === collection)
    if (col !== undefined && entries.some((e) => e.vector.length !== col.dimensions)) usage(file, () => parseImportFile(text, col.dimensions))
    const bar = !ctx.json && ctx.io.stderrIsTTY === true
    let sent = 0
    let batch: VectorEntry[] = []
    let bytes = 0
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return
      const r = await c.call<{ added: number }>('POST', '/v1/vectors/add', { collection, entries: batch }, { timeoutMs: ADD_TIMEOUT_MS })
      sent += r.added
      batch = []
      bytes = 0
      if (bar) ctx.io.stderr(`\r${countLine(sent, entries.length, 'entries')}  `)
    }
    try {
      for (const e of entries) {
        const n = JSON.stringify(e).length + 1
        if (batch.length > 0 && (bytes + n > IMPORT_BATCH_BYTES || batch.length >= MAX_ADD_ENTRIES)) await flush()
        batch.push(e)
        bytes += n
      }
      await flush()
    } finally {
      if (bar && sent > 0) ctx.io.stderr('\n')
    }
    print(ctx, `imported ${sent} entr${sent === 1 ? 'y' : 'ies'} into ${collection} from ${file} (signed by this node)`, { collection, file, imported: sent })
    return ExitCode.OK
  }
}

function search(ctx: Ctx): (c: Control) => Promise<number> {
  only(ctx, 'search', ['k', 'deadline'])
  args(ctx, 2, '<collection> <vector>')
  const collection = collectionArg(ctx, 1)
  const vector = usage('<vector>', () => parseVectorText(ctx.positionals[2] as string))
  const k = intOption('k', ctx.values.k, 1, MAX_SEARCH_K)
  const deadlineMs = intOption('deadline', ctx.values.deadline, 1, MAX_SEARCH_DEADLINE_MS)
  const body = { collection, vector, ...(k === undefined ? {} : { k }), ...(deadlineMs === undefined ? {} : { deadlineMs }) }
  return async (c) => {
    const r = await c.call<SearchDoc>('POST', '/v1/vectors/search', body)
    const s = r.search
    const lines = s.hits.length === 0 ? ['no hits'] : table(['ID', 'DISTANCE', 'SHARD', 'OWNER', 'METADATA'], s.hits.map((h) => [h.id, h.distance.toFixed(4), String(h.shard), h.owner, h.metadata === undefined ? '' : JSON.stringify(h.metadata)])).split('\n')
    const missing = s.shards.filter((x) => x.answeredBy === undefined).map((x) => x.shard)
    lines.push(s.complete ? `every shard answered (${s.shards.length})` : `incomplete: no answer for shard${missing.length === 1 ? '' : 's'} ${missing.join(', ')}`)
    print(ctx, lines.join('\n'), s)
    return ExitCode.OK
  }
}

function syncFrame(s: SyncView): string {
  return `\r${countLine(s.shards_done, s.shards_total, `shards, ${s.vectors_synced} entries fetched`)}  `
}

/** Draws the sync's progress on stderr (redrawn in place) while it runs; the caller draws the last frame. */
async function syncBar(ctx: Ctx, c: Control, done: { value: boolean }): Promise<void> {
  while (!done.value) {
    await ctx.clock.sleep(PROGRESS_POLL_MS)
    if (done.value) break
    const r = await c.call<{ syncs: SyncView[] }>('GET', '/v1/vectors/syncs').catch(() => undefined)
    const s = r?.syncs[r.syncs.length - 1]
    if (s === undefined || s.shards_total === 0 || done.value) continue
    ctx.io.stderr(syncFrame(s))
  }
}

function sync(ctx: Ctx): (c: Control) => Promise<number> {
  only(ctx, 'sync', ['peer'])
  const collections = ctx.positionals.slice(1).map((_, i) => collectionArg(ctx, i + 1))
  const peers = list(ctx.values.peer)
  for (const p of peers) if (!PEER_RE.test(p)) throw new UsageError(`--peer: expected a DID or an authority, got ${JSON.stringify(p.slice(0, 80))}`)
  const body = { ...(collections.length === 0 ? {} : { collections }), ...(peers.length === 0 ? {} : { peers }) }
  return async (c) => {
    const done = { value: false }
    const bar = !ctx.json && ctx.io.stderrIsTTY === true ? syncBar(ctx, c, done) : undefined
    let r: { sync: SyncView }
    try {
      r = await c.call<{ sync: SyncView }>('POST', '/v1/vectors/sync', body, { timeoutMs: SYNC_TIMEOUT_MS })
    } finally {
      done.value = true
      await bar
    }
    const s = r.sync
    if (bar !== undefined && s.shards_total > 0) ctx.io.stderr(`${syncFrame(s)}\n`)
    const lines = [`sync ${s.collections.join(', ') || '(no collections)'}: ${syncText(s)}`]
    if (s.peers.length === 0) lines.push('  no other holder of these shards is connected (`kos-mesh peers`; the peers must run vectors)')
    for (const p of s.peers) lines.push(`  ${p.peer_id}: ${p.status}, ${p.vectors_synced} entries${p.error === undefined ? '' : ` (${p.error})`}`)
    print(ctx, lines.join('\n'), s)
    if (s.status === 'completed') return ExitCode.OK
    const refused = s.peers.some((p) => /Rejected|insufficient_trust|not_holder|unknown_collection/.test(p.error ?? ''))
    return refused ? ExitCode.REJECTED : ExitCode.UNREACHABLE
  }
}

export const vectors: Command = controlCommand(
  `Usage: kos-mesh vectors [status [<collection>]]
       kos-mesh vectors create <name> --dimensions <N> [--metric cos|ip|l2sq]
                               [--quantization f32|f16|i8] [--shards <N>] [--replicas <N>]
       kos-mesh vectors add <collection> <id> <vector> [--metadata <json>]
       kos-mesh vectors import <collection> <file>
       kos-mesh vectors search <collection> <vector> [--k <N>] [--deadline <ms>]
       kos-mesh vectors sync [<collection>...] [--peer <did|authority>]

Vector collections of the running node (it needs "vectors" in config.json: \`kos-mesh init
--force --vectors\`). Entries are signed by this node's DID; only it can change or delete them.
Each collection is split into shards (hash of the id) held by --replicas nodes among those that
advertise vector_storage; replicas reconcile their sets (only the differences travel), and a
search asks the shards' holders and merges the top k. Index files live in <data dir>/vectors
and are reloaded at start. Give every node of a collection the same create options; peers
serve syncs only to DIDs they trust at >= 6 (\`kos-mesh trust <did> 8\` on each side).
  status [<c>]       the collections: dimensions, metric, shards with their holders and entry
                     counts, the last sync; the syncs running
  create <name>      a new collection (the same options again: no change)
  add <c> <id> <v>   writes (or replaces) one entry; <v> is 0.1,0.2,0.3 or [0.1, 0.2, 0.3]
                     (a vector that starts with - goes after --: add docs a -- -0.1,0.2)
  import <c> <file>  adds the entries of a JSON-lines file, one per line:
                       {"id": "doc-1", "vector": [0.1, 0.2, 0.3], "metadata": {"title": "A"}}
                     id 1..256 characters; metadata at most 32 keys, values strings (up to
                     1024 characters), numbers or booleans; lines up to 256 KiB, files up to
                     64 MiB and 100000 entries. A bad line sends nothing (exit 2).
                     With a terminal on stderr, a progress bar shows the entries sent.
  search <c> <v>     the k nearest entries across the mesh, with the shards that answered
  sync [<c>...]      reconciles the shards held here with their other holders now (they also
                     sync every 30 s); a progress bar shows the shards done. Exit 4 when a peer
                     refused (insufficient_trust, ...), 5 when one did not answer.

Options:
  --dimensions <N>      create: the length of the vectors, 1..4096
  --metric <m>          create: cos (default), ip or l2sq
  --quantization <q>    create: the local index's scalars: f32 (default), f16 or i8
  --shards <N>          create: number of shards, 1..${MAX_CREATE_SHARDS} (default: 1)
  --replicas <N>        create: nodes holding each shard, 1..${MAX_CREATE_REPLICAS} (default: 1)
  --metadata <json>     add: a JSON object stored with the entry
  --k <N>               search: hits wanted, 1..${MAX_SEARCH_K} (default: 10)
  --deadline <ms>       search: the longest wait for the shards, ms (default: 5000)
  --peer <did|auth>     sync: only with this peer, repeatable (default: every holder)

${GLOBAL_TEXT}
`,
  {
    dimensions: { type: 'string' },
    metric: { type: 'string' },
    quantization: { type: 'string' },
    shards: { type: 'string' },
    replicas: { type: 'string' },
    metadata: { type: 'string' },
    k: { type: 'string' },
    deadline: { type: 'string' },
    peer: { type: 'string', multiple: true },
  },
  (ctx) => {
    const sub = ctx.positionals[0] ?? 'status'
    if (sub === 'status') {
      only(ctx, 'status', [])
      if (ctx.positionals.length > 2) throw new UsageError(`unexpected argument ${JSON.stringify(ctx.positionals[2])}`)
      const name = ctx.positionals.length > 1 ? collectionArg(ctx, 1) : undefined
      return (c) => status(ctx, c, name)
    }
    if (sub === 'create') return create(ctx)
    if (sub === 'add') return add(ctx)
    if (sub === 'import') return importFile(ctx)
    if (sub === 'search') return search(ctx)
    if (sub === 'sync') return sync(ctx)
    throw new UsageError(`unknown subcommand "vectors ${sub.slice(0, 40)}" (expected: status, create, add, import, search, sync)`)
  },
)

/** The vector commands, by name. */
export const VECTOR_COMMANDS: Record<string, Command> = { vectors }
