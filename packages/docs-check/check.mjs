#!/usr/bin/env node
// The API docs check: typedoc with the root typedoc.json's settings over one public package at a
// time (validation on: broken {@link}s and relative links, referenced but unexported types, exported
// symbols without a doc comment), every warning a finding, nothing emitted. CHECKED packages must have no
// finding; PENDING ones are checked and their findings listed, without failing, until they are clean.
//
//   node packages/docs-check/check.mjs [--all] [package...]
//
// exits 1 when a checked package (or, with --all, any package) has a finding.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Packages whose API docs must be complete. */
export const CHECKED = ['interface', 'interface-compliance-tests', 'klp-codec', 'did-security', 'transport-memory', 'trust', 'agents', 'peer-discovery', 'transport-libp2p', 'agent-migration', 'vector-mesh', 'transport-tcp', 'klp-router', 'reference-node']

/** Packages not held to it yet, and why (move a package to CHECKED once it has no finding). */
export const PENDING = {
}

/** The per-package settings of the root typedoc.json (JSON with // comments). */
export function packageOptions() {
  const text = readFileSync(join(ROOT, 'typedoc.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')
  const { entryPoints: _ignored, ...rest } = JSON.parse(text).packageOptions ?? {}
  return rest
}

const require = createRequire(import.meta.url)
const TYPEDOC = join(dirname(require.resolve('typedoc/package.json')), 'bin', 'typedoc')
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g

/**
 * Runs typedoc over one package (`packages/<name>`, or `dir`) and resolves with its findings: every warning
 * and error line typedoc printed, but its closing count. `ok` is false when there are findings or
 * typedoc failed without saying why.
 */
export function checkPackage(name, { timeoutMs = 300_000, dir = join(ROOT, 'packages', name) } = {}) {
  return new Promise((resolve) => {
    // one package in typedoc's plain entry-point mode (its packages mode does not report broken
    // {@link}s), with the root typedoc.json's packageOptions and the package's own typedoc.json
    const options = join(tmpdir(), `kos-docs-check-${process.pid}-${name.replace(/[^a-z0-9-]/g, '_')}.json`)
    writeFileSync(options, JSON.stringify({
      ...(existsSync(join(dir, 'typedoc.json')) ? { extends: [join(dir, 'typedoc.json')] } : {}),
      ...packageOptions(),
      entryPoints: [join(dir, 'src', 'index.ts')],
      tsconfig: join(dir, 'tsconfig.json'),
      readme: join(dir, 'README.md'),
      emit: 'none',
      logLevel: 'Warn',
      // every warning is a finding here; typedoc's own treatWarningsAsErrors would stop before
      // validation at the first warning and hide the rest
      treatWarningsAsErrors: false,
    }))
    if (!existsSync(join(dir, 'package.json'))) {
      rmSync(options, { force: true })
      resolve({ name, ok: false, findings: [`[error] no package.json in ${dir}`] })
      return
    }
    const child = spawn(process.execPath, [TYPEDOC, '--options', options], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    child.on('error', (err) => {
      rmSync(options, { force: true })
      resolve({ name, ok: false, findings: [`[error] could not run typedoc: ${err.message}`] })
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      rmSync(options, { force: true })
      const lines = out.replace(ANSI, '').split('\n').map((l) => l.trim())
      const findings = lines.filter((l) => /\[(warning|error)\]/.test(l) && !/^\[(warning|error)\] Found \d+ errors? and \d+ warnings?$/.test(l))
      if (code !== 0 && findings.length === 0) findings.push(`[error] typedoc exited with ${code ?? 'a signal'}: ${lines.filter((l) => l.length > 0).slice(-3).join(' / ')}`)
      resolve({ name, ok: findings.length === 0, findings })
    })
  })
}

/** Checks `names`, at most `concurrency` at a time, in order. */
export async function checkAll(names, concurrency = 2) {
  const results = new Array(names.length)
  let next = 0
  const worker = async () => {
    while (next < names.length) {
      const i = next++
      results[i] = await checkPackage(names[i])
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker))
  return results
}

/** The report: findings of each package with any, then one line per package. */
export function report(results) {
  const lines = []
  for (const r of results) if (!r.ok) lines.push(`${r.name}: ${r.findings.length} finding(s)`, ...r.findings.map((f) => `  ${f}`))
  for (const r of results) lines.push(`${r.ok ? 'ok      ' : 'MISSING '} ${r.name}${r.name in PENDING ? ` (excluded from the check: ${PENDING[r.name]})` : ''}`)
  return lines.join('\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const all = process.argv.includes('--all')
  const named = process.argv.slice(2).filter((a) => !a.startsWith('--'))
  const names = named.length > 0 ? named : [...CHECKED, ...Object.keys(PENDING)]
  const results = await checkAll(names)
  console.log(report(results))
  const failed = results.filter((r) => !r.ok && (all || named.length > 0 || !(r.name in PENDING)))
  if (failed.length > 0) console.log(`API docs check failed: ${failed.map((r) => r.name).join(', ')}`)
  process.exit(failed.length > 0 ? 1 : 0)
}
