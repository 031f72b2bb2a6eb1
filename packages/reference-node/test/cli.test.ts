/** The CLI in-process: parsing, help and exit codes that need no running node. */
import { chmod, mkdir, mkdtemp, rm, readdir, readFile, stat, truncate, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateIdentity } from '@kos-mesh/did-security'
import { ExitCode, helpText, runCli, type CliIo } from '../src/cli-app.js'
import { ensurePrivateDir, parseConfig, defaultConfig, resolveDataDir } from '../src/config.js'
import { levelStore } from '../src/storage/level.js'

const DID = generateIdentity().did

let root: string
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kos-cli-'))
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await runCli(args, { stdout: (s) => (out += s), stderr: (s) => (err += s), env })
  return { code, out, err }
}

describe('kos-mesh CLI parsing', () => {
  it('prints help for the tool and every command', async () => {
    const main = await run(['--help'])
    expect(main.code).toBe(ExitCode.OK)
    expect(main.out).toContain('Exit codes:')
    for (const cmd of ['init', 'start', 'stop', 'status', 'connect', 'peers', 'trust', 'untrust', 'attest', 'revoke', 'reputation', 'discover', 'dht', 'broadcast', 'task', 'config']) {
      const r = await run([cmd, '--help'])
      expect(r.code, cmd).toBe(0)
      expect(r.out, cmd).toMatch(new RegExp(`^Usage: kos-mesh ${cmd}`))
      expect(r.out).toBe(helpText(cmd))
    }
    expect((await run(['help', 'task'])).out).toBe(helpText('task'))
    expect((await run(['--version'])).out).toMatch(/^\d+\.\d+\.\d+\n$/)
  })

  it('exits 2 on usage errors, before looking for a node', async () => {
    const cases: string[][] = [
      [],
      ['nope'],
      ['peers', '--unknown'],
      ['trust', 'list', '--level', '3'],
      ['trust', 'not-a-did'],
      ['trust', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '11'],
      ['trust', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '5', '--level', '5'],
      ['attest'],
      ['attest', 'not-a-did'],
      ['attest', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '--claim', 'love'],
      ['attest', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '--claim', 'capability'],
      ['attest', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '--claim', 'key', '--level', '3'],
      ['attest', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '--ttl', '90'],
      ['attest', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '--ttl', '400d'],
      ['revoke'],
      ['revoke', '--self'],
      ['revoke', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '--key', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'],
      ['revoke', '--statement', 'NOT AN ID'],
      ['revoke', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '--yes'],
      ['reputation'],
      ['reputation', 'did:bad!'],
      ['trust', 'did:key:z6Mk', '--level', '11'],
      ['trust', 'did:key:z6Mk', '--level', 'high'],
      ['task', 'klp://a.kai/agents/math'],
      ['task', 'klp://a.kai', 'input'],
      ['task', 'not an address', 'input'],
      ['task', 'klp://a.kai/agents/x', 'in', '--params', '[1]'],
      ['task', 'klp://a.kai/agents/x', '{bad', '--input-json'],
      ['connect'],
      ['connect', 'nonsense'],
      ['config'],
      ['config', 'import'],
      ['init', '--name', 'Bad Name'],
      ['init', '--type', 'Mainframe'],
      ['init', '--agents', 'echo,teleport'],
      ['init', '--control-port', '70000'],
      ['init', '--log-level', 'loud'],
      ['init', '--task-min-trust', '11'],
      ['init', '--task-min-trust', 'high'],
      ['init', '--task-min-endorsements', '-1'],
      ['task', 'did:key:z6Mk', 'in'],
      ['task', 'did:bad!', 'in', '--capability', 'echo'],
      ['start', '--control-port', '-1'],
      // issue 8: malformed DIDs (W3C DID syntax; a did:key must decode to an Ed25519 key)
      ['trust', 'did:'],
      ['trust', 'did:key:!!!'],
      ['trust', 'did:key:z6Mk'],
      ['trust', 'did:web:'],
      ['trust', 'did:web:a%zz'],
      ['trust', `${DID}#frag`],
      ['task', 'did:key:!!!', 'in', '--capability', 'echo'],
      // issue 8: numbers are plain decimal integers
      ['trust', DID, '--level', '5.5'],
      ['trust', DID, '--level', '1e1'],
      ['trust', DID, '--level', '0x5'],
      ['trust', DID, '--level', ' 5'],
      ['task', 'klp://a.kai/agents/echo', 'in', '--timeout', '1e3'],
      ['connect', 'tcp://127.0.0.1:4001', '--timeout', '0x10'],
      ['init', '--control-port', '0x5'],
      ['init', '--task-min-trust', '1e0'],
      // issue 8: addresses the CLI's transport can never dial, checked before the node is asked
      ['connect', 'tcp://127.0.0.1:99999'],
      ['connect', 'tcp://127.0.0.1:0'],
      ['connect', 'tcp://127.0.0.1:-1'],
      ['connect', 'tcp://127.0.0.1:0x50'],
      ['connect', 'udp://127.0.0.1:4001'],
      ['connect', 'tcp://127.0.0.1:4001/did:key:!!!'],
      ['connect', `tcp://127.0.0.1:4001/${DID.slice(0, -3)}`],
      ['init', '--listen', 'tcp://127.0.0.1:abc'],
      ['init', '--listen', 'udp://127.0.0.1:1'],
      ['init', '--seed', 'tcp://127.0.0.1:0'],
      ['init', '--seed', 'tcp://127.0.0.1:4001/did:key:!!!'],
      // issue 8: over-limit input (codec limits: 256 KiB strings, 10,000 items)
      ['task', 'klp://a.kai/agents/echo', 'x'.repeat(300 * 1024)],
      ['task', 'klp://a.kai/agents/echo', JSON.stringify(Array.from({ length: 20_000 }, (_, i) => i)), '--input-json'],
      ['task', 'klp://a.kai/agents/echo', 'in', '--params', JSON.stringify(Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])))],
      ['task', 'klp://a.kai/agents/echo', 'in', '--capability', 'c'.repeat(300 * 1024)],
      ['trust', `did:key:z${'a'.repeat(300 * 1024)}`],
      ['connect', `tcp://127.0.0.1:4001/did:key:z${'a'.repeat(300 * 1024)}`],
    ]
    for (const args of cases) {
      const r = await run([...args, '--data-dir', join(root, 'empty')])
      expect(r.code, args.join(' ')).toBe(ExitCode.USAGE)
      expect(r.err.length, args.join(' ')).toBeGreaterThan(0)
    }
  })

  it('issue 8: a usage error names the typed error it wraps in --json mode', async () => {
    const dir = join(root, 'empty')
    const cases: Array<[string[], string]> = [
      [['trust', 'did:key:!!!'], 'ERR_INVALID_DID'],
      [['trust', 'did:'], 'ERR_INVALID_DID'],
      [['connect', 'udp://127.0.0.1:4001'], 'ERR_INVALID_ADDRESS'],
      [['connect', 'tcp://127.0.0.1:99999'], 'ERR_INVALID_ADDRESS'],
      [['connect', 'tcp://127.0.0.1:4001/did:key:!!!'], 'ERR_INVALID_DID'],
      [['task', 'klp://a.kai/agents/echo', 'x'.repeat(300 * 1024)], 'ERR_TASK_TOO_LARGE'],
      [['trust', DID, '--level', '1e1'], 'ERR_USAGE'],
    ]
    for (const [args, code] of cases) {
      const r = await run([...args, '--json', '--data-dir', dir])
      expect(r.code, args[0]).toBe(ExitCode.USAGE)
      expect(JSON.parse(r.out), args[0]).toMatchObject({ exitCode: 2, error: { name: 'UsageError', code } })
    }
  })

  it('exits 3 when no node runs and 6 when the data dir has no config', async () => {
    expect((await run(['peers', '--data-dir', join(root, 'empty')])).code).toBe(ExitCode.NOT_RUNNING)
    const j = await run(['status', '--json', '--data-dir', join(root, 'empty')])
    expect(JSON.parse(j.out)).toMatchObject({ exitCode: 3, error: { name: 'NodeNotRunningError', code: 'ERR_NODE_NOT_RUNNING' } })
    expect((await run(['config', 'export', '--data-dir', join(root, 'empty')])).code).toBe(ExitCode.CONFIG)
  })

  it('init writes a config that config export reads back; a second init needs --force', async () => {
    const d = join(root, 'n1')
    const env = { KOS_MESH_PASSPHRASE: 'pw', KOS_MESH_DATA_DIR: d }
    const r = await run(['init', '--json', '--name', 'alpha', '--seed', 'tcp://127.0.0.1:4001', '--agents', 'math'], env)
    expect(r.code, r.err).toBe(0)
    const out = JSON.parse(r.out) as { did: string; identityCreated: boolean }
    expect(out.did).toMatch(/^did:key:z6Mk/)
    expect(out.identityCreated).toBe(true)
    const exp = await run(['config', 'export'], env)
    expect(JSON.parse(exp.out)).toMatchObject({ node: { name: 'alpha', authority: 'alpha.mesh.kai' }, seeds: ['tcp://127.0.0.1:4001'], agents: ['math'] })
    expect((await run(['init'], env)).code).toBe(ExitCode.FAILURE)
    const again = await run(['init', '--force', '--json', '--name', 'beta'], env)
    expect(again.code, again.err).toBe(0)
    expect(JSON.parse(again.out)).toMatchObject({ did: out.did, identityCreated: false })
    // the passphrase came from the env, so no passphrase file was written
    await expect(readFile(join(d, 'passphrase'))).rejects.toMatchObject({ code: 'ENOENT' })
    expect(JSON.parse((await run(['config', 'export'], env)).out)).toMatchObject({ policy: { task_min_trust: 0 } })
    // a config written before `policy` existed still loads, as open
    expect(parseConfig({ ...defaultConfig('old'), policy: undefined }).policy).toEqual({ task_min_trust: 0 })
  })

  it('init makes an existing data dir private (0700) and stores --task-min-trust', async () => {
    const d = join(root, 'loose')
    await mkdir(d, { mode: 0o755 })
    await chmod(d, 0o755) // whatever the umask
    const r = await run(['init', '--json', '--name', 'closed', '--task-min-trust', '5', '--data-dir', d], { KOS_MESH_PASSPHRASE: 'pw' })
    expect(r.code, r.err).toBe(0)
    expect(((await stat(d)).mode & 0o777).toString(8)).toBe('700')
    expect(r.err).toContain('0700') // warned about the change
    expect(JSON.parse(r.out)).toMatchObject({ config: { policy: { task_min_trust: 5 } } })
    // already private: nothing to fix, no warning
    await expect(ensurePrivateDir(d)).resolves.toEqual({ modeBefore: 0o700, fixed: false, ownedByUser: true })
    const warnings: string[] = []
    await chmod(d, 0o750)
    await expect(ensurePrivateDir(d, (m) => warnings.push(m))).resolves.toMatchObject({ modeBefore: 0o750, fixed: true })
    expect(warnings).toHaveLength(1)
  })
})

describe('config file', () => {
  it('validates every field and rejects unknown keys', () => {
    const ok = defaultConfig('x1')
    expect(parseConfig(JSON.parse(JSON.stringify(ok)))).toEqual(ok)
    const bad: unknown[] = [
      null,
      [],
      { ...ok, version: 2 },
      { ...ok, extra: 1 },
      { ...ok, node: { ...ok.node, authority: 'UPPER.kai' } },
      { ...ok, node: { ...ok.node, type: 'Other' } },
      { ...ok, node: { ...ok.node, capabilities: { teleport: true } } },
      { ...ok, node: { ...ok.node, capabilities: { storage_gb: -1 } } },
      { ...ok, listen: ['not an address'] },
      { ...ok, seeds: 'tcp://x:1' },
      { ...ok, agents: ['nope'] },
      { ...ok, control: { port: 65536 } },
      { ...ok, logLevel: 'trace' },
      { ...ok, policy: { task_min_trust: 11 } },
      { ...ok, policy: { task_min_trust: 2.5 } },
      { ...ok, policy: { min_trust: 1 } },
      { ...ok, policy: 5 },
    ]
    for (const b of bad) expect(() => parseConfig(b), JSON.stringify(b)).toThrow(expect.objectContaining({ name: 'InvalidConfigError' }))
  })

  it('resolves the data dir from flag, env, then home', () => {
    expect(resolveDataDir('/x/y', { KOS_MESH_DATA_DIR: '/env' })).toBe('/x/y')
    expect(resolveDataDir(undefined, { KOS_MESH_DATA_DIR: '/env' })).toBe('/env')
    expect(resolveDataDir(undefined, {})).toMatch(/\.kos-mesh$/)
  })
})

describe('issue 8: the data dir (start) fails with the documented exit codes', () => {
  /** An initialized data dir (its keystore uses the default KDF: one scrypt run per init and start). */
  async function initDir(name: string): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
    const dir = join(root, name)
    const env = { KOS_MESH_PASSPHRASE: 'pw' }
    // port 0: tests never take the default port (4747), which another node on this machine may use
    const r = await run(['init', '--json', '--name', name, '--log-level', 'silent', '--listen', 'tcp://127.0.0.1:0', '--data-dir', dir], env)
    expect(r.code, r.err).toBe(0)
    return { dir, env }
  }

  it('start --listen with a non-numeric port is a usage error (2), before anything runs', async () => {
    const { dir, env } = await initDir('badlisten')
    for (const listen of ['tcp://127.0.0.1:abc', 'tcp://127.0.0.1:70000', 'udp://127.0.0.1:4001', 'tcp://127.0.0.1:4001/did:key:!!!']) {
      const r = await run(['start', '--data-dir', dir, '--listen', listen], env)
      expect(r.code, `${listen}: ${r.err}`).toBe(ExitCode.USAGE)
    }
    expect(await readdir(dir)).not.toContain('db')
  })

  it('a keystore path that is a directory exits 6 (KeystoreFormatError), not 1 with EISDIR', async () => {
    const { dir, env } = await initDir('ksdir')
    await unlink(join(dir, 'keystore.json'))
    await mkdir(join(dir, 'keystore.json'))
    const r = await run(['start', '--json', '--data-dir', dir], env)
    expect(r.code, r.err).toBe(ExitCode.CONFIG)
    expect(JSON.parse(r.out)).toMatchObject({ exitCode: 6, error: { name: 'KeystoreFormatError', code: 'ERR_KEYSTORE_FORMAT' } })
    // a passphrase "file" that is a directory: also a data dir problem
    await mkdir(join(dir, 'passphrase'))
    expect((await run(['start', '--data-dir', dir], {})).code).toBe(ExitCode.CONFIG)
  })

  it('refuses to start on a LevelDB whose log was truncated to 0 bytes (exit 6); --reset-store starts it', async () => {
    const { dir, env } = await initDir('trunc')
    // what a first run leaves: trust decisions and pins in the database's log
    const db = levelStore({ path: join(dir, 'db') })
    await db.start()
    await db.put(`trust/${DID}`, new TextEncoder().encode('{}'))
    await db.put('pin/b.mesh.kai', new TextEncoder().encode(DID))
    await db.stop()
    const logs = (await readdir(join(dir, 'db'))).filter((f) => f.endsWith('.log'))
    expect(logs.length).toBeGreaterThan(0)
    for (const f of logs) await truncate(join(dir, 'db', f), 0)

    const refused = await run(['start', '--json', '--data-dir', dir], env)
    expect(refused.code, refused.err).toBe(ExitCode.CONFIG)
    expect(JSON.parse(refused.out)).toMatchObject({ exitCode: 6, error: { name: 'StoreIntegrityError', code: 'ERR_STORE_INTEGRITY' } })
    await expect(stat(join(dir, 'control.json'))).rejects.toMatchObject({ code: 'ENOENT' })

    // the escape hatch: starts (loopback only), then stops on the signal
    let out = ''
    let signal: (() => void) | undefined
    const io: CliIo = { stdout: (t) => (out += t), stderr: () => {}, env, onSignal: (h) => (signal = h) }
    const running = runCli(['start', '--json', '--reset-store', '--log-level', 'silent', '--data-dir', dir], io)
    for (let i = 0; i < 2000 && !out.includes('"event":"started"'); i++) await new Promise((r) => setTimeout(r, 5))
    expect(out).toContain('"event":"started"')
    signal?.()
    expect(await running).toBe(ExitCode.OK)
    // accepted once: the next start needs no flag (checked on the store directly, without sockets)
    const again = levelStore({ path: join(dir, 'db') })
    await again.start()
    expect(await again.get(`trust/${DID}`)).toBeUndefined()
    await again.stop()
  })
})
