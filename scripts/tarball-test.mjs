#!/usr/bin/env node
// Installs the packages as a user would and runs README examples against them, so that a missing
// dependency, export or file in a tarball fails CI.
//
//   node scripts/tarball-test.mjs [--no-build] [--keep]
//
// 1. scripts/pack.mjs builds (turbo) and packs every public package into dist-tarballs/; every package
//    README's "## Install" section must name the @kos-mesh packages its examples import (and the peers
//    of an imported subpath such as @kos-mesh/klp-router/testnet).
// 2. A scratch project in a new temp directory OUTSIDE the workspace `npm install`s all the tarballs by
//    path (Node's own npm, not the workspace's pnpm; install scripts off); their third-party
//    dependencies, and the peers npm adds, come from the registry.
// 3. Checks there: package-lock.json holds only these tarballs and registry packages (nothing from git,
//    URLs or elsewhere); every @kos-mesh package is installed once (no duplicate copies); `npm ls`
//    is clean; every `exports` subpath imports; the `kos-mesh` bin runs.
// 4. README examples, extracted from the READMEs, written out as .mjs (types stripped by the workspace's
//    TypeScript) and run with node: klp-codec's Usage, klp-router's two routers over TCP, and
//    klp-router's `./testnet` mesh. The same examples as .ts are type-checked against the installed
//    .d.ts files (tsc, strict, NodeNext).
// Every child process has a time limit. Exits non-zero on the first failure and keeps the scratch
// project for a look (its path is printed); removes it on success unless --keep.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { isAbsolute, join, relative, resolve } from 'node:path'
import ts from 'typescript'
import { pack, root } from './pack.mjs'

const args = process.argv.slice(2)
const started = Date.now()
const log = (msg) => console.log(`[tarball-test] ${msg}`)

/** README code blocks to run: the `index`-th ```ts block of section `## <section>`. */
const EXAMPLES = [
  { name: 'klp-codec-usage', readme: 'packages/klp-codec/README.md', section: 'Usage', index: 0, expect: [/bafy\w+ \{ task: 'summarize', text: 'hello' \}/] },
  { name: 'klp-router-two-routers-tcp', readme: 'packages/klp-router/README.md', section: 'Usage', index: 0, expect: [/\{ answer: 42 \}/] },
  { name: 'klp-router-testnet', readme: 'packages/klp-router/README.md', section: 'Usage', index: 1, expect: [] },
]
const TIMEOUTS = { install: 10 * 60_000, tsc: 3 * 60_000, example: 60_000, small: 60_000 }

class Failure extends Error {}

function sh(cmd, cmdArgs, { cwd, timeout = TIMEOUTS.small, quiet = false } = {}) {
  const r = spawnSync(cmd, cmdArgs, { cwd, timeout, encoding: 'utf8', shell: process.platform === 'win32', maxBuffer: 64 * 1024 * 1024 })
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`
  if (r.error || r.status !== 0) {
    const why = r.error?.code === 'ETIMEDOUT' ? `timed out after ${timeout / 1000} s` : r.error ? r.error.message : `exit ${r.status ?? r.signal}`
    throw new Failure(`${[cmd, ...cmdArgs].join(' ')} (in ${cwd}): ${why}\n${out.trim()}`)
  }
  if (!quiet && out.trim()) console.log(out.trimEnd().replace(/^/gm, '    '))
  return r.stdout
}

function extractBlock({ readme, section, index }) {
  const lines = readFileSync(join(root, readme), 'utf8').split('\n')
  const start = lines.findIndex((l) => l.trim() === `## ${section}`)
  if (start < 0) throw new Failure(`${readme}: no "## ${section}" section`)
  const blocks = []
  for (let i = start + 1; i < lines.length && !lines[i].startsWith('## '); i++) {
    if (/^```(ts|typescript)\s*$/.test(lines[i])) {
      const body = []
      for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(lines[i])
      blocks.push(body.join('\n') + '\n')
    }
  }
  if (blocks[index] === undefined) throw new Failure(`${readme}: "## ${section}" has no ts block #${index + 1}`)
  return blocks[index]
}

function findNested(dir, found = []) {
  // every installed package directory below dir: [{ name, path }]
  const nm = join(dir, 'node_modules')
  if (!existsSync(nm)) return found
  for (const entry of readdirSync(nm)) {
    if (entry.startsWith('.')) continue
    const scoped = entry.startsWith('@') ? readdirSync(join(nm, entry)).map((e) => `${entry}/${e}`) : [entry]
    for (const name of scoped) {
      const path = join(nm, name)
      found.push({ name, path })
      findNested(path, found)
    }
  }
  return found
}

/**
 * Each package README's "## Install" section must name every @kos-mesh package its ts examples import,
 * and for a subpath import (`@kos-mesh/klp-router/testnet`) also that package's peer dependencies.
 */
function checkInstallSections(packed) {
  const problems = []
  for (const dir of readdirSync(join(root, 'packages'))) {
    const readme = join(root, 'packages', dir, 'README.md')
    const manifest = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8'))
    if (manifest.private === true || !existsSync(readme)) continue
    const text = readFileSync(readme, 'utf8')
    const install = /^## Install\n([\s\S]*?)(?=^## )/m.exec(text)?.[1]
    if (install === undefined) { problems.push(`packages/${dir}/README.md has no "## Install" section`); continue }
    const listed = new Set()
    for (const line of install.split('\n').filter((l) => /npm install/.test(l))) for (const m of line.matchAll(/@kos-mesh\/[a-z0-9-]+/g)) listed.add(m[0])
    for (const m of install.matchAll(/`npm install[^`]*`/g)) for (const n of m[0].matchAll(/@kos-mesh\/[a-z0-9-]+/g)) listed.add(n[0])
    if (!listed.has(manifest.name)) problems.push(`packages/${dir}/README.md: Install does not name ${manifest.name}`)
    const code = [...text.matchAll(/^```(?:ts|typescript)\n([\s\S]*?)^```/gm)].map((m) => m[1]).join('\n')
    const needed = new Set()
    for (const m of code.matchAll(/from '(@kos-mesh\/[a-z0-9-]+)(\/[a-z-]+)?'/g)) {
      needed.add(m[1])
      if (m[2] !== undefined) {
        const dep = packed.find((p) => p.name === m[1])
        const peers = dep === undefined ? {} : JSON.parse(readFileSync(join(root, 'packages', m[1].slice('@kos-mesh/'.length), 'package.json'), 'utf8')).peerDependencies ?? {}
        for (const peer of Object.keys(peers)) if (peer.startsWith('@kos-mesh/')) needed.add(peer)
      }
    }
    const lacking = [...needed].filter((n) => !listed.has(n))
    if (lacking.length > 0) problems.push(`packages/${dir}/README.md: its examples need ${lacking.join(', ')}, which its Install section does not name`)
  }
  if (problems.length > 0) throw new Failure(`README Install sections:\n  ${problems.join('\n  ')}`)
}

let scratch
try {
  // 1. pack
  const packed = pack({ build: !args.includes('--no-build'), log })
  log(`${packed.length} tarballs: ${packed.map((p) => `${p.name}@${p.version}`).join(', ')}`)
  checkInstallSections(packed)
  log('every package README\'s Install section names the @kos-mesh packages its examples import')

  // 2. scratch project outside the workspace
  scratch = realpathSync(mkdtempSync(join(tmpdir(), 'kos-mesh-tarball-test-')))
  const rel = relative(root, scratch)
  if (!rel.startsWith('..') && !isAbsolute(rel)) throw new Failure(`scratch dir ${scratch} is inside the workspace ${root}`)
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'kos-mesh-tarball-test', version: '0.0.0', private: true, type: 'module' }, null, 2))
  // project .npmrc: record registry URLs in the lockfile (checked below), never run install scripts
  writeFileSync(join(scratch, '.npmrc'), 'omit-lockfile-registry-resolved=false\nignore-scripts=true\naudit=false\nfund=false\nupdate-notifier=false\n')
  const npmVersion = sh('npm', ['--version'], { cwd: scratch, quiet: true }).trim()
  const registry = sh('npm', ['config', 'get', 'registry'], { cwd: scratch, quiet: true }).trim().replace(/\/?$/, '/')
  log(`scratch project ${scratch}; npm ${npmVersion}, registry ${registry}`)
  log('npm install <all tarballs> @types/node@20 (for the type check)')
  sh('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', ...packed.map((p) => p.file), '@types/node@20'],
    { cwd: scratch, timeout: TIMEOUTS.install })

  // 3. what got installed, from where
  const lock = JSON.parse(readFileSync(join(scratch, 'package-lock.json'), 'utf8'))
  const tarballs = new Set(packed.map((p) => p.file))
  const bad = []
  let fromRegistry = 0
  for (const [path, entry] of Object.entries(lock.packages ?? {})) {
    if (path === '' || entry.link) continue
    const name = entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)
    const resolved = entry.resolved ?? ''
    if (name.startsWith('@kos-mesh/')) {
      const file = resolved.startsWith('file:') ? resolve(scratch, resolved.slice(5)) : ''
      if (!tarballs.has(file)) bad.push(`${path}: ${name} resolved to "${resolved}", not to one of the packed tarballs`)
    } else if (!resolved.startsWith(registry)) bad.push(`${path}: resolved to "${resolved}", not the registry ${registry}`)
    else if (!entry.integrity) bad.push(`${path}: no integrity`)
    else fromRegistry++
  }
  if (bad.length > 0) throw new Failure(`package-lock.json has packages from outside the tarballs and the registry:\n  ${bad.join('\n  ')}`)
  const copies = new Map()
  for (const { name, path } of findNested(scratch)) if (name.startsWith('@kos-mesh/')) copies.set(name, [...(copies.get(name) ?? []), relative(scratch, path)])
  const dupes = [...copies].filter(([, paths]) => paths.length > 1)
  if (dupes.length > 0) throw new Failure(`duplicate copies: ${dupes.map(([n, p]) => `${n} at ${p.join(', ')}`).join('; ')}`)
  const missing = packed.filter((p) => !copies.has(p.name))
  if (missing.length > 0) throw new Failure(`not installed: ${missing.map((p) => p.name).join(', ')}`)
  sh('npm', ['ls', '--all'], { cwd: scratch, quiet: true })
  log(`installed: ${packed.length} tarballs + ${fromRegistry} registry packages (package-lock.json entries); each @kos-mesh package once; npm ls clean`)

  // every exports subpath of every package imports (interface-compliance-tests too: it only calls
  // vitest's describe/it when a suite function runs, and its vitest peer got installed)
  const imports = []
  for (const p of packed) {
    const pkg = JSON.parse(readFileSync(join(scratch, 'node_modules', p.name, 'package.json'), 'utf8'))
    for (const sub of Object.keys(pkg.exports ?? { '.': null })) imports.push(sub === '.' ? p.name : `${p.name}/${sub.replace(/^\.\//, '')}`)
  }
  writeFileSync(join(scratch, 'imports.mjs'),
    `${imports.map((s, i) => `import * as m${i} from '${s}'`).join('\n')}\n` +
    `const mods = { ${imports.map((s, i) => `'${s}': m${i}`).join(', ')} }\n` +
    `for (const [name, mod] of Object.entries(mods)) if (Object.keys(mod).length === 0) throw new Error(name + ' exports nothing')\n` +
    `console.log('imported ' + Object.keys(mods).length + ' entry points')\n`)
  sh('node', ['imports.mjs'], { cwd: scratch, timeout: TIMEOUTS.example })

  const node = packed.find((p) => p.name === '@kos-mesh/reference-node')
  if (node !== undefined) {
    const bin = join(scratch, 'node_modules', '.bin', process.platform === 'win32' ? 'kos-mesh.cmd' : 'kos-mesh')
    const version = sh(bin, ['--version'], { cwd: scratch, quiet: true }).trim()
    if (version !== node.version) throw new Failure(`kos-mesh --version printed "${version}", expected ${node.version}`)
    sh(bin, ['--help'], { cwd: scratch, quiet: true })
    log(`bin: kos-mesh --version = ${version}, --help ok`)
  }

  // 4. README examples
  mkdirSync(join(scratch, 'examples'))
  for (const ex of EXAMPLES) {
    const code = extractBlock(ex)
    writeFileSync(join(scratch, 'examples', `${ex.name}.ts`), code)
    const js = ts.transpileModule(code, {
      fileName: `${ex.name}.ts`,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
    }).outputText
    writeFileSync(join(scratch, 'examples', `${ex.name}.mjs`), js)
  }
  writeFileSync(join(scratch, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', lib: ['ES2022'], module: 'NodeNext', moduleResolution: 'NodeNext', strict: true,
      noEmit: true, skipLibCheck: true, types: ['node'],
    },
    include: ['examples/*.ts'],
  }, null, 2))
  sh('node', [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: scratch, timeout: TIMEOUTS.tsc })
  log(`type check: ${EXAMPLES.length} README examples compile against the installed .d.ts files`)
  for (const ex of EXAMPLES) {
    const out = sh('node', [join('examples', `${ex.name}.mjs`)], { cwd: scratch, timeout: TIMEOUTS.example, quiet: true })
    for (const re of ex.expect) if (!re.test(out)) throw new Failure(`${ex.name} (${ex.readme}) ran, but its output lacks ${re}:\n${out}`)
    log(`ran ${ex.readme} "## ${ex.section}" example ${ex.index + 1} (${ex.name}.mjs): ok`)
  }

  if (!args.includes('--keep')) rmSync(scratch, { recursive: true, force: true })
  else log(`kept ${scratch}`)
  console.log(`tarball test: passed (${packed.length} packages from tarballs with npm ${npmVersion}, ${EXAMPLES.length} README examples) in ${((Date.now() - started) / 1000).toFixed(0)} s`)
} catch (err) {
  console.error(err instanceof Failure ? err.message : err)
  if (scratch !== undefined) console.error(`scratch project kept for a look: ${scratch}`)
  console.log(`tarball test: FAILED after ${((Date.now() - started) / 1000).toFixed(0)} s`)
  process.exit(1)
}
