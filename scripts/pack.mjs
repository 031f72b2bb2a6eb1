#!/usr/bin/env node
// Builds every package (turbo) and packs each public package with `pnpm pack` into one folder,
// default dist-tarballs/ at the repository root (git-ignored by its own .gitignore), then prints the
// list. These are the files `pnpm publish` would upload: `workspace:^` dependencies become ^x.y.z.
//
//   node scripts/pack.mjs [--out <dir>] [--no-build]
//
// Each tarball is checked before it is listed: its package.json has no `workspace:` / `catalog:`
// specifier left, and every file its `exports`, `types` and `bin` name is inside, with README.md and
// LICENSE. Exits non-zero on any problem. scripts/tarball-test.mjs installs the result with npm.
import { spawnSync } from 'node:child_process'
import { builtinModules } from 'node:module'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const pnpmVersion = /^pnpm@(.+)$/.exec(rootManifest.packageManager ?? '')?.[1]

/** The workspace's pnpm: `pnpm` on PATH when it is the pinned version, else `npx -y pnpm@<pin>`. */
export function pnpmCommand() {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8', shell: process.platform === 'win32' })
  if (probe.status === 0 && (pnpmVersion === undefined || probe.stdout.trim() === pnpmVersion)) return ['pnpm']
  return ['npx', '-y', `pnpm@${pnpmVersion ?? 'latest'}`]
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], shell: process.platform === 'win32', ...opts })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${[cmd, ...args].join(' ')} exited with ${r.status ?? r.signal}`)
  return r
}

/** The files of a .tgz: Map<path inside the package, Buffer>. Plain ustar, as npm and pnpm write it. */
export function readTarball(file) {
  const tar = gunzipSync(readFileSync(file))
  const files = new Map()
  let longName
  for (let off = 0; off + 512 <= tar.length;) {
    const header = tar.subarray(off, off + 512)
    if (header.every((b) => b === 0)) break
    const str = (a, b) => header.subarray(a, b).toString('utf8').replace(/\0.*$/s, '')
    const size = parseInt(str(124, 136).trim() || '0', 8)
    const type = str(156, 157) || '0'
    const prefix = str(345, 500)
    let name = longName ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100))
    longName = undefined
    const body = tar.subarray(off + 512, off + 512 + size)
    if (type === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '')
    else if (type === '0' || type === '7') files.set(name.replace(/^package\//, ''), body)
    off += 512 + Math.ceil(size / 512) * 512
  }
  return files
}

/** Problems with one packed tarball (empty when it is fine). */
export function checkTarball(file) {
  const files = readTarball(file)
  const problems = []
  const manifestBytes = files.get('package.json')
  if (manifestBytes === undefined) return ['no package.json']
  const pkg = JSON.parse(manifestBytes.toString('utf8'))
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [dep, spec] of Object.entries(pkg[field] ?? {})) {
      if (/^(workspace|catalog|link|file):/.test(spec)) problems.push(`${field}.${dep} is "${spec}"`)
    }
  }
  const targets = new Set()
  const collect = (v) => {
    if (typeof v === 'string') targets.add(v)
    else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) collect(x)
  }
  collect(pkg.exports); collect(pkg.types); collect(pkg.main); collect(pkg.bin)
  for (const t of targets) if (!files.has(t.replace(/^\.\//, ''))) problems.push(`${t} is named in package.json but not in the tarball`)
  for (const f of ['README.md', 'LICENSE']) if (!files.has(f)) problems.push(`${f} is missing`)
  // every package the built code or its .d.ts imports must be declared (npm's flat node_modules would
  // hide a missing one whenever another package happens to bring it)
  const declared = new Set([pkg.name, ...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})])
  for (const [path, bytes] of files) {
    if (!/^dist\/.*\.(js|mjs|d\.ts)$/.test(path)) continue
    for (const m of bytes.toString('utf8').matchAll(/(?<![\w$.])(?:from\s*|import\s*\(\s*|import\s+)(['"])([^'"\n]+)\1/g)) {
      const spec = m[2]
      if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) continue
      if (!/^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/.*)?$/.test(spec)) continue
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]
      if (!declared.has(name)) problems.push(`${path} imports "${spec}", which is not in dependencies or peerDependencies`)
    }
  }
  return [...new Set(problems)]
}

export function publicPackages() {
  return readdirSync(join(root, 'packages'))
    .map((dir) => join(root, 'packages', dir))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
    .filter(({ manifest }) => manifest.private !== true)
    .sort((a, b) => a.manifest.name.localeCompare(b.manifest.name))
}

/** Builds (unless build: false) and packs; returns [{ name, version, file, size }]. */
export function pack({ out = join(root, 'dist-tarballs'), build = true, log = console.log } = {}) {
  const pnpm = pnpmCommand()
  if (build) {
    log(`building: ${pnpm.join(' ')} exec turbo run build --filter=./packages/*`)
    run(pnpm[0], [...pnpm.slice(1), 'exec', 'turbo', 'run', 'build', '--filter=./packages/*', '--output-logs=errors-only'], { cwd: root })
  }
  mkdirSync(out, { recursive: true })
  for (const f of readdirSync(out)) if (f.endsWith('.tgz')) rmSync(join(out, f))
  writeFileSync(join(out, '.gitignore'), '# written by scripts/pack.mjs\n*\n')
  const packed = []
  const problems = []
  for (const { dir, manifest } of publicPackages()) {
    const r = spawnSync(pnpm[0], [...pnpm.slice(1), 'pack', '--pack-destination', out, '--json'], {
      cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], shell: process.platform === 'win32',
    })
    if (r.status !== 0) throw new Error(`pnpm pack failed in ${relative(root, dir)} (exit ${r.status ?? r.signal})`)
    const info = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')))
    for (const p of checkTarball(info.filename)) problems.push(`${manifest.name}: ${p}`)
    packed.push({ name: info.name, version: info.version, file: info.filename, size: info.size, files: info.files.length })
  }
  if (problems.length > 0) throw new Error(`broken tarballs:\n  ${problems.join('\n  ')}`)
  return packed
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const outIndex = args.indexOf('--out')
  const out = outIndex >= 0 ? resolve(args[outIndex + 1]) : undefined
  try {
    const packed = pack({ out, build: !args.includes('--no-build') })
    console.log(`\n${packed.length} tarballs in ${relative(process.cwd(), dirname(packed[0].file)) || '.'}:`)
    const width = Math.max(...packed.map((p) => relative(process.cwd(), p.file).length))
    for (const p of packed) {
      console.log(`  ${relative(process.cwd(), p.file).padEnd(width)} ${(p.size / 1024).toFixed(0).padStart(5)} KiB ${String(p.files).padStart(4)} files`)
    }
  } catch (err) {
    console.error(`pack: ${err.message}`)
    process.exit(1)
  }
}
