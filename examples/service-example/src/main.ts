/**
 * The notes service (src/notes.ts) run three ways, unchanged, because it only knows the
 * MessageRouter contract and the Clock it is given:
 *
 * 1. on three routers from klp-router's createTestnet (in-process memory transport, real time);
 * 2. over real TCP between two routers in this process (the authenticated, encrypted channel);
 * 3. on a createTestnet mesh in virtual time (20 ms links), where a request timeout and a note's
 *    expiry happen at exact clock times;
 * 4. as a service of @kos-mesh/reference-node's createNode(), next to its task service (both
 *    handle TASK_REQUEST: the task service without a path, notes on /notes).
 *
 * Run: npx -y pnpm@12.21.0 --filter @kos-mesh/example-service start
 */
import { createSignatureVerifier, generateIdentity } from '@kos-mesh/did-security'
import { KLPMessageType, ProcessingStatus } from '@kos-mesh/interface'
import { createRouter, type Router } from '@kos-mesh/klp-router'
import { createTestnet, type Testnet } from '@kos-mesh/klp-router/testnet'
import { createNode, defineService, echoAgent, memory } from '@kos-mesh/reference-node'
import { createMemoryNetwork } from '@kos-mesh/transport-memory'
import { tcp } from '@kos-mesh/transport-tcp'
import { notes, type HeardNote, type Note, type NotesService } from './notes.js'

const quiet = process.argv.includes('--quiet')
const say = (s = ''): void => { if (!quiet) console.log(s) }
let passed = 0
let failed = 0
function check(what: string, ok: boolean, detail = ''): void {
  if (ok) passed++; else failed++
  say(`  [${ok ? 'ok' : 'FAIL'}] ${what}${detail === '' ? '' : `: ${detail}`}`)
}

/** What a rejected promise says: `name` or `name:reason`. */
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(() => 'ok', (e: { name?: string; reason?: string }) => (e.reason === undefined ? String(e.name) : `${e.name}:${e.reason}`))

/**
 * The first `heard` event of `service` that matches. The wall-clock bound only turns a lost
 * message into a failure instead of a hang; nothing is measured with it.
 */
function nextHeard(service: NotesService, match: (h: HeardNote) => boolean): Promise<HeardNote> {
  return new Promise((resolve, reject) => {
    const bound = AbortSignal.timeout(10_000)
    const listener = (evt: CustomEvent<HeardNote>): void => {
      if (!match(evt.detail)) return
      service.removeEventListener('heard', listener)
      resolve(evt.detail)
    }
    service.addEventListener('heard', listener, { signal: bound })
    bound.addEventListener('abort', () => reject(new Error('expected a heard event, got none')), { once: true })
  })
}

// ------------------------------------------------------------------ 1. createTestnet

async function onTestnet(): Promise<void> {
  say('1. three routers from createTestnet (memory transport)')
  const net = await createTestnet(3)
  const [n0, n1, n2] = net.nodes as [Testnet['nodes'][0], Testnet['nodes'][0], Testnet['nodes'][0]]
  // another service on node-0 keeps TASK_REQUEST without a path (as the task service does)
  n0.router.handle(KLPMessageType.TASK_REQUEST, async (m) => ({ status: ProcessingStatus.PROCESSED, response: await n0.router.createResponse(m, { echo: m.payload.data }) }))
  const services = net.nodes.map((n) => notes({ maxNotes: 3 })({ router: n.router, clock: net.network.clock }))
  for (const s of services) s.start()
  const [s0, s1, s2] = services as [NotesService, NotesService, NotesService]
  try {
    // a local write, announced by a broadcast
    const heard1 = nextHeard(s1, (h) => h.key === 'greeting')
    const heard2 = nextHeard(s2, (h) => h.key === 'greeting')
    const note = await s0.put('greeting', 'hello mesh')
    check('node-0 writes "greeting": version 1, owned by its DID', note.version === 1 && note.owner === n0.did)
    const [h1, h2] = await Promise.all([heard1, heard2])
    check('the broadcast reaches node-1 and node-2', h1.authority === n0.authority && h2.authority === n0.authority && h2.version === 1)

    // request/response on the path
    const got = await s1.fetch(n0.authority, 'greeting')
    check('node-1 reads it from node-0 (request/response on /notes)', got?.text === 'hello mesh', JSON.stringify(got?.text))
    check('a note node-0 does not have is undefined', (await s1.fetch(n0.authority, 'missing')) === undefined)

    // a remote write: the writer's DID owns it; node-0 announces the change
    const heardTodo = nextHeard(s1, (h) => h.key === 'todo')
    const todo = await s2.putOn(n0.authority, 'todo', 'water the plants')
    check('node-2 writes "todo" on node-0 and owns it there', todo.owner === n2.did && s0.get('todo')?.owner === n2.did)
    check('node-1 hears of it from node-0', (await heardTodo).owner === n2.did)

    // trust: decisions rest on the authenticated signer, not on the payload
    check('node-1 may not change node-2\'s note', (await outcome(s1.putOn(n0.authority, 'todo', 'nothing'))) === 'NoteRejectedError:not_owner')
    check('node-2 may', (await s2.putOn(n0.authority, 'todo', 'water the plants twice')).version === 2)

    // bounded state
    await s0.put('third', '3')
    check('a 4th note is refused locally (maxNotes 3)', (await outcome(s0.put('fourth', '4'))) === 'NotesFullError')
    check('and on the wire', (await outcome(s1.putOn(n0.authority, 'fourth', '4'))) === 'NoteRejectedError:notes_full')

    // never trust input
    check('a bad key is refused before anything is sent', (await outcome(s1.fetch(n0.authority, 'Bad Key!'))) === 'InvalidNoteError')
    const raw = n1.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${n0.authority}/notes`, data: { op: 'drop' } })
    check('a malformed request is refused on the wire', (await outcome(raw)) === 'RemoteRejectedError:invalid_request')

    // one message type, two handlers: the path decides
    const echo = await n1.router.request({ type: KLPMessageType.TASK_REQUEST, target: `klp://${n0.authority}/agents/echo`, data: 'hi' })
    check('TASK_REQUEST outside /notes still reaches node-0\'s other handler', (echo.payload.data as { echo?: unknown }).echo === 'hi')

    // cancellation: a request to an unreachable node, cancelled by the caller
    net.network.isolate(n0.did)
    const controller = new AbortController()
    const pending = outcome(s1.fetch(n0.authority, 'greeting', { signal: controller.signal }))
    controller.abort()
    check('an aborted fetch rejects with AbortError', (await pending) === 'AbortError')
    net.network.heal()

    // stop() removes the handlers
    s2.stop()
    check('after stop() node-2 has no /notes handler', (await outcome(s1.fetch(n2.authority, 'greeting'))) === 'NoteRejectedError:unsupported_message_type')
  } finally {
    for (const s of services) s.stop()
    await net.stop()
  }
}

// ------------------------------------------------------------------ 2. TCP

async function overTcp(): Promise<void> {
  say('\n2. two routers over TCP in one process')
  const signatureVerifier = createSignatureVerifier()
  const start = async (name: string): Promise<Router> => {
    const identity = generateIdentity()
    return createRouter({ authority: `${name}.mesh.kai`, identity, signatureVerifier, transports: [tcp()({ identity })], listen: ['tcp://127.0.0.1:0'] })
  }
  const alice = await start('alice')
  const bob = await start('bob')
  const na = notes()({ router: alice })
  const nb = notes()({ router: bob })
  na.start()
  nb.start()
  try {
    await na.put('motd', 'welcome, bob') // nobody is connected: the broadcast reaches no one
    const caughtUp = nextHeard(nb, (h) => h.key === 'motd')
    await bob.dial(alice.addrs()[0]!, { remotePeer: alice.did })
    check('bob catches up when alice identifies (peer:identify)', (await caughtUp).version === 1)
    check('bob reads the note over TCP', (await nb.fetch('alice.mesh.kai', 'motd'))?.text === 'welcome, bob')
    const changed = nextHeard(nb, (h) => h.key === 'motd' && h.version === 2)
    await na.put('motd', 'welcome again')
    check('bob hears the change (broadcast over TCP)', (await changed).owner === alice.did)
  } finally {
    na.stop()
    nb.stop()
    await bob.stop()
    await alice.stop()
  }
}

// ------------------------------------------------------------------ 3. virtual time

async function inVirtualTime(): Promise<void> {
  say('\n3. createTestnet in virtual time (20 ms links)')
  // the network and every router run on the network's virtual clock; the services get it too
  const net = await createTestnet(3, { time: 'virtual', seed: 7, link: { latencyMs: 20 } })
  const clock = net.network.clock
  const ttlMs = 10 * 60_000
  const services = net.nodes.map((n) => notes({ ttlMs, requestTimeoutMs: 2000 })({ router: n.router, clock }))
  for (const s of services) s.start()
  const [s0, s1] = services as [NotesService, NotesService]
  const [n0] = net.nodes as [Testnet['nodes'][0]]
  // net.drive(p) advances virtual time until p settles: nothing waits for the wall clock. It
  // advances in steps, so a time is read where it happens: in a settle callback or a clock timer.
  const when = <T>(p: Promise<T>): Promise<{ value: string | T; at: number }> =>
    p.then((value) => ({ value, at: clock.now() }), (e: { name?: string }) => ({ value: String(e.name), at: clock.now() }))
  const at = <T>(time: number, read: () => T): Promise<T> => new Promise((resolve) => clock.setTimeout(() => resolve(read()), time - clock.now()))
  try {
    const note = await net.drive(s0.put('lease', 'held by node-0'))
    const t = clock.now()
    const got = await net.drive(when(s1.fetch(n0.authority, 'lease')))
    check('a fetch takes at least two link latencies of virtual time', (got.value as Note | undefined)?.text === 'held by node-0' && got.at - t >= 40, `${got.at - t} ms`)

    net.network.isolate(n0.did)
    const t0 = clock.now()
    const cut = await net.drive(when(s1.fetch(n0.authority, 'lease')))
    check('across a partition the request times out after exactly requestTimeoutMs', cut.value === 'RequestTimeoutError' && cut.at - t0 === 2000, `${String(cut.value)} after ${cut.at - t0} ms`)
    net.network.heal()

    const expiry = note.updated_at + ttlMs
    const [before, after] = await net.drive(Promise.all([at(expiry - 1, () => s0.get('lease')), at(expiry, () => s0.get('lease'))]), { stepMs: 1000 })
    check('1 ms before its ttl the note is there', before?.text === 'held by node-0')
    check('at its ttl it is gone, locally and for peers', after === undefined && (await net.drive(s1.fetch(n0.authority, 'lease'))) === undefined)
    say(`     (${Math.round((clock.now() - note.updated_at) / 60_000)} minutes of virtual time passed)`)
  } finally {
    for (const s of services) s.stop()
    await net.drive(net.stop())
  }
}

// ------------------------------------------------------------------ 4. reference-node

async function inReferenceNode(): Promise<void> {
  say('\n4. as a service of a reference node, next to its task service')
  const network = createMemoryNetwork()
  // the node hands every service its components; notes takes the three it needs
  const notesService = defineService(['router', 'clock', 'logger'], (c) => notes()({ router: c.router, clock: c.clock, logger: c.logger }))
  const worker = createNode({ authority: 'worker.mesh.kai', transports: [memory({ network })], listen: ['memory://worker'], agents: [echoAgent()], services: { notes: notesService } })
  await worker.start() // starts notes (Startable) after the router; stop() stops it first
  const client = createNode({ authority: 'client.mesh.kai', transports: [memory({ network })], listen: ['memory://client'], seeds: worker.addrs(), services: { notes: notesService } })
  await client.start()
  try {
    await worker.service<NotesService>('notes').put('motd', 'served by a reference node')
    const got = await client.service<NotesService>('notes').fetch('worker.mesh.kai', 'motd')
    check('notes answers on /notes', got?.text === 'served by a reference node')
    const task = await client.task('klp://worker.mesh.kai/agents/echo', { capability: 'echo', input: 'still here' })
    check('tasks still reach the task service', task.result === 'still here')
  } finally {
    await client.stop()
    await worker.stop()
  }
}

try {
  say('notes: a service written against the MessageRouter contract\n')
  await onTestnet()
  await overTcp()
  await inVirtualTime()
  await inReferenceNode()
} catch (err) {
  failed++
  console.error('service example failed:', err)
}
console.log(`service example: ${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
