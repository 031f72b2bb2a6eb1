/**
 * docs/cli.md says "every block below is the real --help output of the command": checked here,
 * with the exit codes it documents.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { ExitCode, helpText } from '../src/cli-app.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const CLI_MD = readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8')

describe('docs/cli.md', () => {
  it('shows the real --help output of every command', () => {
    const blocks = [...CLI_MD.matchAll(/```text\n\$ kos-mesh (?:(\w+) )?--help\n([\s\S]*?)```/g)]
    const shown = blocks.map((m) => m[1] ?? 'main')
    expect(shown).toEqual(['main', 'init', 'start', 'stop', 'status', 'connect', 'peers', 'trust', 'untrust', 'attest', 'revoke', 'reputation', 'discover', 'dht', 'broadcast', 'task', 'agent', 'vectors', 'logs', 'config'])
    for (const m of blocks) expect(m[2], `kos-mesh ${m[1] ?? ''} --help`).toBe(helpText(m[1]))
  })

  it('documents every exit code', () => {
    for (const [name, code] of Object.entries(ExitCode)) expect(CLI_MD, name).toMatch(new RegExp(`^\\| ${code} \\| `, 'm'))
  })
})
