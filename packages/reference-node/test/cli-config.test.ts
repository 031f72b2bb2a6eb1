/**
 * Issue 10, the CLI side of "a mesh that survives restarts": a fixed default port, `init --force`
 * that keeps what it is not told to change, `--reset`, `--publish`, and `start` saving the
 * addresses given on its command line.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { ExitCode, runCli, type CliIo } from '../src/cli-app.js'
import { DEFAULT_LISTEN, DEFAULT_PORT } from '../src/config.js'

const SEED_DID = generateIdentity().did
const ENV = { KOS_MESH_PASSPHRASE: 'pw' }

let root: string
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-cfg-'))
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await runCli(args, { stdout: (s) => (out += s), stderr: (s) => (err += s), env: ENV })
  return { code, out, err }
}

async function config(dir: string): Promise<Record<string, any>> {
  return JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, any>
}

describe('init: the default port and --force / --reset', () => {
  it('listens on a fixed, documented default port', async () => {
    const dir = join(root, 'default')
    const r = await run(['init', '--json', '--data-dir', dir])
    expect(r.code, r.err).toBe(0)
    expect(DEFAULT_PORT).toBe(4747)
    expect(await config(dir)).toMatchObject({ listen: [DEFAULT_LISTEN], publish: [] })
    expect(DEFAULT_LISTEN).toBe('tcp://127.0.0.1:4747')
  })

  it('refuses an initialized dir without --force or --reset: exit 1, a typed JSON error', async () => {
    const dir = join(root, 'twice')
    expect((await run(['init', '--data-dir', dir, '--name', 'twice'])).code).toBe(0)
    const before = await readFile(join(dir, 'config.json'), 'utf8')
    const r = await run(['init', '--json', '--data-dir', dir, '--name', 'other'])
    expect(r.code).toBe(ExitCode.FAILURE)
    expect(JSON.parse(r.out)).toEqual({ error: expect.objectContaining({ name: 'AlreadyInitializedError', code: 'ERR_ALREADY_INITIALIZED' }), exitCode: 1 })
    expect(r.out.trim().split('\n')).toHaveLength(1)
    expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe(before)
  })

  it('--force changes only the options given and says what changed', async () => {
    const dir = join(root, 'force')
    const seed = `tcp://127.0.0.1:4801/${SEED_DID}`
    const first = await run(['init', '--json', '--data-dir', dir, '--name', 'alpha', '--seed', seed, '--task-min-trust', '5', '--agents', 'math', '--listen', 'tcp://127.0.0.1:4802', '--type', 'ArchiveNode'])
    expect(first.code, first.err).toBe(0)
    const did = JSON.parse(first.out).did as string
    const r = await run(['init', '--json', '--force', '--data-dir', dir, '--log-level', 'warn'])
    expect(r.code, r.err).toBe(0)
    expect(JSON.parse(r.out)).toMatchObject({ did, identityCreated: false, action: 'updated', changed: ['logLevel'] })
    expect(await config(dir)).toMatchObject({
      node: { name: 'alpha', authority: 'alpha.mesh.kai', type: 'ArchiveNode' },
      listen: ['tcp://127.0.0.1:4802'],
      seeds: [seed],
      agents: ['math'],
      policy: { task_min_trust: 5 },
      logLevel: 'warn',
    })
    // a new name carries an authority derived from the old name along; an explicit one stays
    const renamed = await run(['init', '--json', '--force', '--data-dir', dir, '--name', 'beta'])
    expect(JSON.parse(renamed.out).changed).toEqual(['node.name', 'node.authority'])
    expect(await config(dir)).toMatchObject({ node: { name: 'beta', authority: 'beta.mesh.kai' }, policy: { task_min_trust: 5 } })
    await run(['init', '--force', '--data-dir', dir, '--authority', 'custom.example.org'])
    await run(['init', '--force', '--data-dir', dir, '--name', 'gamma'])
    expect(await config(dir)).toMatchObject({ node: { name: 'gamma', authority: 'custom.example.org' } })
    // the human output names the changes too
    const human = await run(['init', '--force', '--data-dir', dir, '--task-min-trust', '7'])
    expect(human.out).toContain('changed:    policy.task_min_trust')
  })

  it('--reset starts again from the defaults and the options given (the identity is kept)', async () => {
    const dir = join(root, 'reset')
    const first = await run(['init', '--json', '--data-dir', dir, '--name', 'alpha', '--task-min-trust', '5', '--seed', `tcp://127.0.0.1:4801/${SEED_DID}`])
    const did = JSON.parse(first.out).did as string
    const r = await run(['init', '--json', '--reset', '--data-dir', dir, '--name', 'fresh'])
    expect(r.code, r.err).toBe(0)
    expect(JSON.parse(r.out)).toMatchObject({ did, identityCreated: false, action: 'reset' })
    expect(await config(dir)).toMatchObject({ node: { name: 'fresh' }, seeds: [], policy: { task_min_trust: 0 }, listen: [DEFAULT_LISTEN] })
  })

  it('--force on an invalid config.json is refused (exit 6) and tells about --reset', async () => {
    const dir = join(root, 'broken')
    await run(['init', '--data-dir', dir])
    const { writeFile } = await import('node:fs/promises')
    await writeFile(join(dir, 'config.json'), '{"version": 1, "oops": true}')
    const r = await run(['init', '--json', '--force', '--data-dir', dir])
    expect(r.code).toBe(ExitCode.CONFIG)
    expect(JSON.parse(r.out)).toMatchObject({ error: { code: 'ERR_INVALID_CONFIG', message: expect.stringContaining('--reset') } })
    expect((await run(['init', '--reset', '--data-dir', dir])).code).toBe(0)
  })
})

describe('published addresses and address checks', () => {
  it('--publish is stored and checked: a dialable host and port, no DID', async () => {
    const dir = join(root, 'pub')
    const r = await run(['init', '--json', '--data-dir', dir, '--listen', 'tcp://0.0.0.0:4803', '--publish', 'tcp://203.0.113.7:4747'])
    expect(r.code, r.err).toBe(0)
    expect(await config(dir)).toMatchObject({ listen: ['tcp://0.0.0.0:4803'], publish: ['tcp://203.0.113.7:4747'] })
    for (const bad of ['tcp://0.0.0.0:4747', 'tcp://[::]:4747', 'tcp://203.0.113.7:0', `tcp://203.0.113.7:4747/${SEED_DID}`, 'klp://x.mesh.kai']) {
      const b = await run(['init', '--json', '--force', '--data-dir', dir, '--publish', bad])
      expect(b.code, bad).toBe(ExitCode.USAGE)
      expect(JSON.parse(b.out), bad).toMatchObject({ exitCode: 2, error: { name: 'UsageError', message: expect.stringMatching(/^--publish/) } })
    }
    // listening on every interface without a published address: warned
    const warned = await run(['init', '--reset', '--data-dir', dir, '--listen', 'tcp://0.0.0.0:4803'])
    expect(warned.err).toContain('--publish')
  })

  it('a klp:// address given as a seed or to connect is a usage error at once, which says why', async () => {
    const dir = join(root, 'klp')
    for (const args of [
      ['init', '--data-dir', dir, '--seed', 'klp://seed.mesh.kai'],
      ['start', '--data-dir', join(root, 'default'), '--seed', 'klp://seed.mesh.kai'],
      ['connect', '--data-dir', dir, 'klp://seed.mesh.kai'],
    ]) {
      const r = await run([...args, '--json'])
      expect(r.code, args.join(' ')).toBe(ExitCode.USAGE)
      const doc = JSON.parse(r.out) as { error: { code: string; message: string } }
      expect(doc.error.code, args.join(' ')).toBe('ERR_INVALID_ADDRESS')
      expect(doc.error.message, args.join(' ')).toContain('klp://')
      expect(doc.error.message, args.join(' ')).toContain('tcp://')
    }
  })

  it('a seed without a DID is accepted with a warning that says what to do', async () => {
    const r = await run(['init', '--data-dir', join(root, 'nodid'), '--seed', 'tcp://127.0.0.1:4804'])
    expect(r.code, r.err).toBe(0)
    expect(r.err).toMatch(/seed tcp:\/\/127\.0\.0\.1:4804 names no DID.*\/did:key/)
  })
})

describe('start saves the addresses of its command line', () => {
  it('--seed (added), --listen and --publish end up in config.json once the node runs', async () => {
    const dir = join(root, 'saves')
    expect((await run(['init', '--data-dir', dir, '--name', 'saves', '--log-level', 'silent', '--listen', 'tcp://127.0.0.1:0'])).code).toBe(0)
    const seed = `tcp://127.0.0.1:1/${SEED_DID}` // nobody there: bootstrap fails, the node runs
    let out = ''
    let signal: (() => void) | undefined
    const io: CliIo = { stdout: (t) => (out += t), stderr: () => {}, env: ENV, onSignal: (h) => (signal = h) }
    const running = runCli(['start', '--json', '--data-dir', dir, '--seed', seed, '--publish', 'tcp://198.51.100.4:4747', '--listen', 'tcp://127.0.0.1:0', '--control-port', '0'], io)
    for (let i = 0; i < 2000 && !out.includes('"event":"started"'); i++) await new Promise((r) => setTimeout(r, 5))
    const started = JSON.parse(out.split('\n').find((l) => l.includes('"event":"started"')) ?? '{}') as Record<string, any>
    expect(started.saved).toEqual(['publish', 'seeds'])
    expect(started.published).toEqual([`tcp://198.51.100.4:4747/${started.did as string}`])
    expect(await config(dir)).toMatchObject({ seeds: [seed], publish: ['tcp://198.51.100.4:4747'], listen: ['tcp://127.0.0.1:0'] })
    signal?.()
    expect(await running).toBe(ExitCode.OK)
  })
})

describe('start on a port that is taken', () => {
  it('fails with exit 1 and AddressInUseError (ERR_ADDRESS_IN_USE), naming the address and what to do', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as { port: number }).port
    try {
      const dir = join(root, 'taken')
      expect((await run(['init', '--data-dir', dir, '--log-level', 'silent', '--listen', `tcp://127.0.0.1:${port}`])).code).toBe(0)
      const r = await run(['start', '--json', '--data-dir', dir])
      expect(r.code, r.err).toBe(ExitCode.FAILURE)
      expect(JSON.parse(r.out)).toMatchObject({ exitCode: 1, error: { name: 'AddressInUseError', code: 'ERR_ADDRESS_IN_USE', message: expect.stringContaining(`127.0.0.1:${port}`), hint: expect.stringContaining('--listen') } })
    } finally {
      server.close()
    }
  })
})
