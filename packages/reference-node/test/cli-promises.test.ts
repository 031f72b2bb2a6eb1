/**
 * Issue 10, "a CLI that keeps its word": every promise of docs/cli.md checked in-process against
 * real nodes on loopback TCP and their control API: JSON error documents for every error, the
 * documented exit codes, identity errors, `trust list` / `untrust`, task input from stdin, the
 * peers table, `stop` waiting for the process, and a note when a peer's DID was not pinned.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { tcp } from '@kos-mesh/transport-tcp'
import { ExitCode, runCli, table, type CliIo } from '../src/cli-app.js'
import { startControlServer, writeControlFiles, type ControlServer } from '../src/control.js'
import { createNode, echoAgent, mathAgent, type KosMeshNode } from '../src/index.js'

const OTHER = generateIdentity().did

let root: string
let dir: string
let a: KosMeshNode
let b: KosMeshNode
let server: ControlServer
let stopRequests = 0

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-promise-'))
  dir = join(root, 'a')
  await mkdir(dir, { mode: 0o700 })
  a = createNode({ authority: 'a.mesh.kai', transports: [tcp()], listen: ['tcp://127.0.0.1:0'], agents: [echoAgent()] })
  b = createNode({ authority: 'b.mesh.kai', transports: [tcp()], listen: ['tcp://127.0.0.1:0'], agents: [mathAgent()] })
  await Promise.all([a.start(), b.start()])
  server = await startControlServer({ node: a, onStop: () => void stopRequests++ })
  const s = a.status()
  await writeControlFiles(dir, { pid: 999_999, host: '127.0.0.1', port: server.port, did: s.did, authority: s.authority, addrs: s.addrs, startedAt: 0 }, server.token)
})

afterAll(async () => {
  await server?.close()
  await Promise.allSettled([a?.stop(), b?.stop()])
  await rm(root, { recursive: true, force: true })
})

interface Run {
  code: number
  out: string
  err: string
}

async function run(args: string[], io: Partial<CliIo> = {}): Promise<Run> {
  let out = ''
  let err = ''
  const code = await runCli(args, { stdout: (s) => (out += s), stderr: (s) => (err += s), env: { KOS_MESH_PASSPHRASE: 'pw' }, ...io })
  return { code, out, err }
}

/** The one JSON document on stdout. */
function doc(r: Run): Record<string, any> {
  const lines = r.out.split('\n').filter((l) => l.length > 0)
  expect(lines, r.out).toHaveLength(1)
  return JSON.parse(lines[0] as string) as Record<string, any>
}

const bAddr = (): string => b.addrs()[0] as string // tcp://127.0.0.1:<port>/did:key:...
const bBase = (): string => bAddr().slice(0, bAddr().indexOf('/did:'))

describe('--json: one JSON document on stdout, for errors too', () => {
  it('every kind of error is {"error": {name, code, message}, "exitCode": N} with the process exit code', async () => {
    const initialized = join(root, 'init-twice')
    expect((await run(['init', '--data-dir', initialized, '--listen', 'tcp://127.0.0.1:0'])).code).toBe(0)
    const cases: Array<[string[], number, string]> = [
      [[], ExitCode.USAGE, 'ERR_USAGE'],
      [['frobnicate'], ExitCode.USAGE, 'ERR_USAGE'],
      [['peers', '--bogus'], ExitCode.USAGE, 'ERR_USAGE'],
      [['task', '--timeout'], ExitCode.USAGE, 'ERR_USAGE'],
      [['trust', 'did:key:bogus'], ExitCode.USAGE, 'ERR_INVALID_DID'],
      [['connect', 'klp://b.mesh.kai'], ExitCode.USAGE, 'ERR_INVALID_ADDRESS'],
      [['init', '--data-dir', initialized], ExitCode.FAILURE, 'ERR_ALREADY_INITIALIZED'],
      [['status', '--data-dir', join(root, 'none')], ExitCode.NOT_RUNNING, 'ERR_NODE_NOT_RUNNING'],
      [['start', '--data-dir', join(root, 'none')], ExitCode.CONFIG, 'ERR_NOT_INITIALIZED'],
      [['trust', '--data-dir', dir, 'klp://nobody.mesh.kai'], ExitCode.USAGE, 'ERR_UNPINNED_AUTHORITY'],
      [['connect', '--data-dir', dir, `${bBase()}/${OTHER}`], ExitCode.IDENTITY, 'ERR_PEER_MISMATCH'],
      [['task', '--data-dir', dir, 'klp://a.mesh.kai', 'x', '--capability', 'translate'], ExitCode.REJECTED, 'ERR_REMOTE_REJECTED'],
    ]
    for (const [args, code, errCode] of cases) {
      const r = await run([...args, '--json'])
      expect(r.code, args.join(' ')).toBe(code)
      const d = doc(r)
      expect(d, args.join(' ')).toEqual({ error: expect.objectContaining({ name: expect.any(String), code: errCode, message: expect.any(String) }), exitCode: code })
      expect(r.err.length, args.join(' ')).toBeGreaterThan(0) // people still get the message on stderr
    }
  })

  it('--version --json is a JSON document too', async () => {
    const r = await run(['--version', '--json'])
    expect(r.code).toBe(0)
    expect(doc(r)).toEqual({ version: expect.stringMatching(/^\d+\.\d+\.\d+$/) })
  })
})

describe('errors name the real cause', () => {
  it('an unknown option or a missing value is one well-formed sentence', async () => {
    const r = await run(['peers', '--bogus'])
    expect(r.code).toBe(ExitCode.USAGE)
    expect(r.err).toBe('kos-mesh peers: unknown option --bogus [ERR_USAGE]\nRun `kos-mesh peers --help` for usage.\n')
    const m = await run(['task', '--timeout'])
    expect(m.err.split('\n')[0]).toBe('kos-mesh task: option --timeout needs a value [ERR_USAGE]')
  })

  it('the unpinned-authority error shows its code and what to do', async () => {
    const r = await run(['trust', '--data-dir', dir, 'klp://nobody.mesh.kai'])
    expect(r.code).toBe(ExitCode.USAGE)
    expect(r.err).toContain('[ERR_UNPINNED_AUTHORITY]')
    expect(r.err).toMatch(/hint: .*connect/)
  })

  it('a DID mismatch on connect is an identity error (exit 7), not "unreachable"', async () => {
    const r = await run(['connect', '--data-dir', dir, `${bBase()}/${OTHER}`])
    expect(r.code).toBe(ExitCode.IDENTITY)
    expect(r.err).toContain('[ERR_PEER_MISMATCH]')
    expect(r.err).toContain(OTHER)
    expect(r.err).toMatch(/hint: the node at that address is not the one you named/)
  })

  it('trust of a DID that does not parse is refused before the node is asked', async () => {
    const r = await run(['trust', '--json', '--data-dir', dir, 'did:key:bogus'])
    expect(doc(r)).toMatchObject({ exitCode: 2, error: { code: 'ERR_INVALID_DID', message: expect.stringContaining('did:key:bogus') } })
    expect(a.trustStore.list()).toEqual([])
  })
})

describe('connect, peers, trust list, untrust', () => {
  it('connecting without a DID says that the peer\'s identity was not pinned, and what to do', async () => {
    const r = await run(['connect', '--data-dir', dir, bBase()])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toBe(`connected to ${b.did} (b.mesh.kai)\n`)
    expect(r.err).toContain('not pinned')
    expect(r.err).toContain(`${bBase()}/${b.did}`) // the address to use from now on
    const j = await run(['connect', '--json', '--data-dir', dir, bBase()])
    expect(doc(j)).toMatchObject({ did: b.did, identityChecked: false })
    const checked = await run(['connect', '--json', '--data-dir', dir, bAddr()])
    expect(doc(checked)).toMatchObject({ did: b.did, identityChecked: true })
    expect(checked.err).toBe('')
  })

  it('the peers table has a header and its columns line up', async () => {
    const r = await run(['peers', '--data-dir', dir])
    expect(r.code, r.err).toBe(0)
    const lines = r.out.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^STATE +AUTHORITY +DID +TYPE +TRUST +ADDRESSES$/)
    const header = lines[0] as string
    for (const col of ['AUTHORITY', 'DID', 'TYPE', 'TRUST', 'ADDRESSES']) {
      const at = header.indexOf(col)
      for (const l of lines.slice(1)) {
        expect(l[at - 1], `${col} in ${l}`).toBe(' ')
        expect(l[at], `${col} in ${l}`).not.toBe(' ')
      }
    }
    expect(lines.find((l) => l.includes(b.did))).toMatch(/^connected +b\.mesh\.kai +did:key:\S+ +PeerNode +0 +tcp:\/\/127\.0\.0\.1:\d+$/)
    expect(table(['A', 'BB'], [['xxx', 'y'], ['z', 'w']])).toBe('A    BB\nxxx  y\nz    w')
  })

  it('trust list and untrust', async () => {
    expect((await run(['trust', '--data-dir', dir, 'klp://b.mesh.kai', '--level', '7'])).code).toBe(0)
    const list = await run(['trust', 'list', '--data-dir', dir])
    expect(list.code, list.err).toBe(0)
    const [head, row] = list.out.trimEnd().split('\n')
    expect(head).toMatch(/^DID +LEVEL +SCORE +VALIDATOR +UPDATED +NAMED AS$/)
    expect(row).toMatch(new RegExp(`^${b.did} +7 +7 +no +\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z +klp://b\\.mesh\\.kai$`))
    expect(doc(await run(['trust', 'list', '--json', '--data-dir', dir]))).toEqual([expect.objectContaining({ did: b.did, trust_score: 7 })])
    const u = await run(['untrust', '--json', '--data-dir', dir, b.did])
    expect(u.code, u.err).toBe(0)
    expect(doc(u)).toEqual({ did: b.did, removed: true })
    expect(a.trustStore.peerScore(b.did)).toBeUndefined()
    expect((await run(['untrust', '--data-dir', dir, 'klp://b.mesh.kai'])).out).toBe(`${b.did} had no trust decision\n`)
    expect((await run(['trust', 'list', '--data-dir', dir])).out).toBe('no trust decisions\n')
    expect((await run(['untrust', '--data-dir', dir, 'did:key:bogus'])).code).toBe(ExitCode.USAGE)
    expect((await run(['trust', 'list', 'extra', '--data-dir', dir])).code).toBe(ExitCode.USAGE)
  })

  it('status shows peers, traffic, rejects and memory', async () => {
    const r = await run(['status', '--data-dir', dir])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toMatch(/^peers: +1 connected, 1 known$/m)
    expect(r.out).toMatch(/^traffic: +in \d+ messages \([\d.]+ (B|KiB)\), out \d+ messages/m)
    expect(r.out).toMatch(/^rejects: +/m)
    expect(r.out).toMatch(/^memory: +[\d.]+ MiB resident$/m)
  })
})

describe('task input from stdin', () => {
  it('- reads the input from standard input (one trailing newline removed)', async () => {
    const stdin = (text: string) => ({ readStdin: async () => text })
    const r = await run(['task', '--json', '--data-dir', dir, 'klp://b.mesh.kai/agents/math', '-'], stdin('6 * 7\n'))
    expect(r.code, r.err).toBe(0)
    expect(doc(r)).toMatchObject({ result: { expression: '6 * 7', value: 42 } })
    const echo = await run(['task', '--json', '--data-dir', dir, 'klp://a.mesh.kai/agents/echo', '-', '--input-json'], stdin('{"x": [1, 2]}\n'))
    expect(doc(echo)).toMatchObject({ result: { x: [1, 2] } })
    const big = await run(['task', '--json', '--data-dir', dir, 'klp://a.mesh.kai/agents/echo', '-'], {
      readStdin: async (max) => {
        throw new RangeError(`more than ${max}`)
      },
    })
    expect(big.code).toBe(ExitCode.USAGE)
    expect(doc(big)).toMatchObject({ error: { code: 'ERR_TASK_TOO_LARGE' } })
    const none = await run(['task', '--json', '--data-dir', dir, 'klp://a.mesh.kai/agents/echo', '-'])
    expect(none.code).toBe(ExitCode.USAGE)
  })
})

describe('stop returns when the process has exited', () => {
  it('waits for the node\'s process to end; fails with ERR_STOP_TIMEOUT if it does not', async () => {
    let checks = 0
    // a node that does not go away
    const r = await run(['stop', '--json', '--data-dir', dir, '--timeout', '200'], { isProcessAlive: () => true })
    expect(r.code).toBe(ExitCode.FAILURE)
    expect(doc(r)).toMatchObject({ error: { name: 'StopTimeoutError', code: 'ERR_STOP_TIMEOUT' } })
    const before = stopRequests
    const d2 = join(root, 'gone')
    await mkdir(d2, { mode: 0o700 })
    const s = a.status()
    await writeControlFiles(d2, { pid: 999_998, host: '127.0.0.1', port: server.port, did: s.did, authority: s.authority, addrs: s.addrs, startedAt: 0 }, server.token)
    let alive = true
    const { rm: remove } = await import('node:fs/promises')
    const stopped = run(['stop', '--json', '--data-dir', d2, '--timeout', '20000'], {
      isProcessAlive: () => {
        checks++
        if (checks === 10) {
          // the node ends: its control files go, then its process
          void remove(join(d2, 'control.json')).then(() => (alive = false))
        }
        return alive
      },
    })
    const out = await stopped
    expect(out.code, out.err).toBe(0)
    expect(doc(out)).toMatchObject({ stopped: true, pid: 999_998, did: a.did })
    expect(alive).toBe(false)
    expect(stopRequests).toBe(before + 1)
  })
})
