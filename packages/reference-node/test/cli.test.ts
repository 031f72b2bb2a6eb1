/** The CLI in-process: parsing, help and exit codes that need no running node. */
import { chmod, mkdir, mkdtemp, rm, readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ExitCode, helpText, runCli } from '../src/cli-app.js'
import { ensurePrivateDir, parseConfig, defaultConfig, resolveDataDir } from '../src/config.js'

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
    for (const cmd of ['init', 'start', 'stop', 'status', 'connect', 'peers', 'trust', 'task', 'config']) {
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
      ['trust'],
      ['trust', 'not-a-did'],
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
      ['task', 'did:key:z6Mk', 'in'],
      ['task', 'did:bad!', 'in', '--capability', 'echo'],
      ['start', '--control-port', '-1'],
    ]
    for (const args of cases) {
      const r = await run([...args, '--data-dir', join(root, 'empty')])
      expect(r.code, args.join(' ')).toBe(ExitCode.USAGE)
      expect(r.err.length, args.join(' ')).toBeGreaterThan(0)
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
