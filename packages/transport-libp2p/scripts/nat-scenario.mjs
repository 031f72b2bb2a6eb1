#!/usr/bin/env node
/**
 * NAT scenario in Linux network namespaces that this script creates and always removes:
 *
 *            pub (bridge br0, 11.0.0.10: relay / GATEWAY_NODE)
 *           /                                   \
 *   nat (wan 11.0.0.1, nftables masquerade)     peer (11.0.0.20, a public node)
 *           |
 *   priv (10.10.0.2 behind the NAT)
 *
 * The relay runs a circuit relay v2 server; the private node reserves a slot on it; the peer dials the
 * private node through the relay (`/p2p-circuit`), exchanges a KLP frame, then DCUtR upgrades to a
 * direct connection and a second KLP frame goes over it. Finally the private node's NetworkInfo
 * (nat_type, addresses) is printed. The 11.0.0.0/24 "public" net exists only inside the namespaces.
 *
 *   sudo node packages/transport-libp2p/scripts/nat-scenario.mjs [--nat masquerade|random|persistent|forward]
 *        [--require-direct] [--verbose]
 *
 * --nat: plain masquerade (expected: restricted -> nat_type strict), `fully-random` (symmetric),
 * `persistent` (restricted), or masquerade plus a port forward of 11.0.0.1:4001 (full_cone -> moderate).
 *
 * Exit codes: 0 ok, 1 failed, 77 skipped (not Linux, not root, netns not permitted, no nft/ip and
 * they could not be installed). Installs iproute2 / nftables with apt-get when missing (as root).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const pkgDir = join(here, '..')
const argv = process.argv.slice(2)
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : def }
const flag = (name) => argv.includes(`--${name}`)
const NAT_MODE = opt('nat', 'masquerade')
const REQUIRE_DIRECT = flag('require-direct')
const SKIP = 77
const t0 = Date.now()
const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`
const log = (...a) => console.log(stamp(), ...a)

function skip(reason) {
  console.log(`SKIP nat-scenario: ${reason}`)
  process.exit(SKIP)
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
}

function run(cmd, args, input) {
  return execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], input, encoding: 'utf8' })
}

// ------------------------------------------------------------------ preconditions

if (process.platform !== 'linux') skip(`needs Linux network namespaces, got ${process.platform}`)
if (process.getuid?.() !== 0) skip('needs root (ip netns, veth, nftables); run with sudo')
for (const [cmd, pkg] of [['ip', 'iproute2'], ['nft', 'nftables']]) {
  if (has(cmd)) continue
  if (!has('apt-get')) skip(`${cmd} is missing and there is no apt-get to install ${pkg}`)
  log(`installing ${pkg} (apt-get)`)
  const r = spawnSync('sh', ['-c', `apt-get install -y ${pkg} || (apt-get update && apt-get install -y ${pkg})`], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  if (r.status !== 0 || !has(cmd)) skip(`${cmd} is missing and apt-get install ${pkg} failed`)
}
const prefix = `kos${process.pid}`
const NS = { pub: `${prefix}-pub`, nat: `${prefix}-nat`, priv: `${prefix}-priv`, peer: `${prefix}-peer` }
try {
  run('ip', ['netns', 'add', `${prefix}-probe`])
  run('ip', ['netns', 'del', `${prefix}-probe`])
} catch (err) {
  skip(`ip netns is not permitted here (${String(err.stderr ?? err.message).trim().split('\n')[0]})`)
}
let tsxUrl
try {
  tsxUrl = pathToFileURL(createRequire(join(pkgDir, 'package.json')).resolve('tsx')).href
} catch {
  skip('tsx is not installed (pnpm install at the repository root)')
}

// ------------------------------------------------------------------ network

const children = []
const created = []
let cleaned = false
function cleanup() {
  if (cleaned) return
  cleaned = true
  for (const c of children) {
    try { c.proc.stdin.write('exit\n') } catch { /* gone */ }
  }
  const until = Date.now() + 2_000
  while (children.some((c) => c.proc.exitCode === null && c.proc.signalCode === null) && Date.now() < until) spawnSync('sleep', ['0.1'])
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) { try { c.proc.kill('SIGKILL') } catch { /* gone */ } }
  for (const ns of created.reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
}
process.on('exit', cleanup)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { cleanup(); process.exit(130) })

function ns(name, ...args) { return run('ip', ['-n', name, ...args]) }
function nsExec(name, cmd, args, input) { return run('ip', ['netns', 'exec', name, cmd, ...args], input) }

function setupNetwork() {
  for (const n of Object.values(NS)) { run('ip', ['netns', 'add', n]); created.push(n); ns(n, 'link', 'set', 'lo', 'up') }
  // the "internet": a bridge in pub, with the relay's address on it
  ns(NS.pub, 'link', 'add', 'br0', 'type', 'bridge')
  ns(NS.pub, 'addr', 'add', '11.0.0.10/24', 'dev', 'br0')
  ns(NS.pub, 'link', 'set', 'br0', 'up')
  ns(NS.pub, 'link', 'add', 'to-nat', 'type', 'veth', 'peer', 'name', 'wan', 'netns', NS.nat)
  ns(NS.pub, 'link', 'add', 'to-peer', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.peer)
  for (const l of ['to-nat', 'to-peer']) { ns(NS.pub, 'link', 'set', l, 'master', 'br0'); ns(NS.pub, 'link', 'set', l, 'up') }
  ns(NS.peer, 'addr', 'add', '11.0.0.20/24', 'dev', 'eth0')
  ns(NS.peer, 'link', 'set', 'eth0', 'up')
  // the NAT router: wan on the internet, lan to the private subnet
  ns(NS.nat, 'addr', 'add', '11.0.0.1/24', 'dev', 'wan')
  ns(NS.nat, 'link', 'set', 'wan', 'up')
  ns(NS.nat, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.priv)
  ns(NS.nat, 'addr', 'add', '10.10.0.1/24', 'dev', 'lan')
  ns(NS.nat, 'link', 'set', 'lan', 'up')
  ns(NS.priv, 'addr', 'add', '10.10.0.2/24', 'dev', 'eth0')
  ns(NS.priv, 'link', 'set', 'eth0', 'up')
  ns(NS.priv, 'route', 'add', 'default', 'via', '10.10.0.1')
  nsExec(NS.nat, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1'])
  const masq = { masquerade: 'masquerade', random: 'masquerade fully-random', persistent: 'masquerade persistent', forward: 'masquerade' }[NAT_MODE]
  if (masq === undefined) throw new Error(`expected --nat masquerade|random|persistent|forward, got ${NAT_MODE}`)
  // forward: a port forward of 11.0.0.1:4001 to the private node (what UPnP/NAT-PMP would set up)
  const fwd = NAT_MODE === 'forward'
    ? `
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "wan" tcp dport 4001 dnat to 10.10.0.2:4001
  }`
    : ''
  const fwdAccept = NAT_MODE === 'forward' ? '\n    iifname "wan" oifname "lan" ct status dnat accept' : ''
  nsExec(NS.nat, 'nft', ['-f', '-'], `
table ip kosnat {${fwd}
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" ip saddr 10.10.0.0/24 ${masq}
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    iifname "lan" oifname "wan" accept
    iifname "wan" oifname "lan" ct state established,related accept${fwdAccept}
  }
}
`)
  log(`namespaces ${Object.values(NS).join(', ')}; NAT: nftables "${masq}" on ${NS.nat} (10.10.0.0/24 -> 11.0.0.1)`)
}

// ------------------------------------------------------------------ nodes

function startNode(nsName, role, args) {
  const proc = spawn('ip', ['netns', 'exec', nsName, process.execPath, '--import', tsxUrl, join(here, 'nat-node.ts'), role, ...args], { cwd: pkgDir, stdio: ['pipe', 'pipe', 'pipe'] })
  const node = { role, proc, events: [], waiters: [], stderr: '' }
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let e
    try { e = JSON.parse(line) } catch { node.stderr += `${line}\n`; return }
    node.events.push(e)
    if (flag('verbose')) log(`${role}:`, line)
    for (const w of [...node.waiters]) if (w.pred(e)) { node.waiters.splice(node.waiters.indexOf(w), 1); w.resolve(e) }
  })
  proc.stderr.on('data', (d) => { node.stderr = (node.stderr + d.toString()).slice(-8_000) })
  proc.on('exit', (code) => { for (const w of node.waiters.splice(0)) w.reject(new Error(`${role} exited (${code}) while waiting; stderr: ${node.stderr.slice(-2_000)}`)) })
  children.push(node)
  return node
}

function waitFor(node, pred, timeoutMs, what) {
  const seen = node.events.find(pred)
  if (seen !== undefined) return Promise.resolve(seen)
  return new Promise((resolve, reject) => {
    const w = { pred, resolve: (e) => { clearTimeout(timer); resolve(e) }, reject: (err) => { clearTimeout(timer); reject(err) } }
    const timer = setTimeout(() => {
      node.waiters.splice(node.waiters.indexOf(w), 1)
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} from ${node.role}; stderr: ${node.stderr.slice(-2_000)}`))
    }, timeoutMs)
    node.waiters.push(w)
  })
}

async function infoOf(node) {
  const n = node.events.filter((e) => e.event === 'info').length
  node.proc.stdin.write('info\n')
  let i = 0
  return (await waitFor(node, (e) => e.event === 'info' && i++ >= n, 10_000, 'info')).info
}

function tcpProbe(nsName, host, port) {
  const code = `const s=require('net').connect(${port},'${host}');s.setTimeout(2000);s.on('connect',()=>{console.log('open');process.exit(0)});s.on('timeout',()=>{console.log('timeout');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)})`
  try { return nsExec(nsName, process.execPath, ['-e', code]).trim() } catch (err) { return String(err.message).split('\n')[0] }
}

function printAddresses(info) {
  for (const a of info.addresses) console.log(`      ${a.is_public ? 'public ' : 'private'} ${a.is_relay ? 'relay ' : 'direct'} ${a.protocol.padEnd(11)} ${a.address}`)
}

// ------------------------------------------------------------------ scenario

const result = { nat_mode: NAT_MODE, relay_reach: false, direct: false, direct_klp: false, nat_type: undefined, nat: undefined }
let failed = false
try {
  setupNetwork()
  const relay = startNode(NS.pub, 'relay', ['--listen', '/ip4/11.0.0.10/tcp/4001'])
  const r = await waitFor(relay, (e) => e.event === 'ready', 30_000, 'ready')
  const relayAddr = `/ip4/11.0.0.10/tcp/4001/p2p/${r.peerId}`
  log(`relay (GATEWAY_NODE) up in ${NS.pub}: ${relayAddr}`)

  const priv = startNode(NS.priv, 'private', ['--listen', '/ip4/0.0.0.0/tcp/4001', '--relay', relayAddr])
  const p = await waitFor(priv, (e) => e.event === 'ready', 30_000, 'ready')
  const circuit = p.addrs.find((a) => a.includes('/p2p-circuit'))
  log(`private node up in ${NS.priv} (10.10.0.2, behind the NAT): ${circuit === undefined ? 'NO relay reservation' : `relay reservation ok, ${circuit}`}`)
  if (circuit === undefined) throw new Error('expected the private node to hold a relay reservation')
  log(`direct TCP from ${NS.peer} to the NAT's public address 11.0.0.1:4001: ${tcpProbe(NS.peer, '11.0.0.1', 4001)}; to 10.10.0.2:4001: ${tcpProbe(NS.peer, '10.10.0.2', 4001)} (no way in without the relay)`)

  const target = `${relayAddr}/p2p-circuit/p2p/${p.peerId}`
  const peer = startNode(NS.peer, 'peer', ['--listen', '/ip4/11.0.0.20/tcp/4001', '--target', target, '--did', p.did])
  await waitFor(peer, (e) => e.event === 'done' || e.event === 'error', 60_000, 'done')
  const ev = (name) => peer.events.find((e) => e.event === name)
  const rk = ev('relay-klp')
  result.relay_reach = rk?.ok === true
  log(`peer -> private through the relay: ${rk?.ok === true ? `KLP frame echoed ("${rk.reply}") over ${rk.remoteAddr}` : `FAILED ${rk?.error ?? ''}`}`)
  const d = ev('direct')
  result.direct = d?.ok === true
  log(`DCUtR upgrade to a direct connection: ${d?.ok === true ? `yes, peer sees ${d.addr}` : `NO (connections: ${(d?.connections ?? []).join('; ') || 'none'})`}`)
  const dk = ev('direct-klp')
  result.direct_klp = dk?.ok === true
  if (d?.ok === true) log(`KLP over the direct connection: ${dk?.ok === true ? `echoed ("${dk.reply}") over ${dk.remoteAddr}${dk.attempt > 1 ? ` (attempt ${dk.attempt}: the first stream met the relayed connection DCUtR was closing)` : ''}` : `FAILED ${dk?.error ?? ''}`}`)
  const upgrades = priv.events.filter((e) => e.event === 'klp-frame').map((e) => (e.relayed ? 'relayed' : 'direct'))
  log(`private node received KLP frames: ${upgrades.join(', ') || 'none'}`)

  // AutoNAT runs on connect; give its dial-backs a moment to settle
  let info = await infoOf(priv)
  for (let i = 0; i < 30 && info.nat.reasons.some((x) => /no autonat/.test(x)); i++) {
    await new Promise((res) => setTimeout(res, 200))
    info = await infoOf(priv)
  }
  result.nat_type = info.nat_type
  result.nat = info.nat.nat
  log(`private node NetworkInfo: nat_type=${info.nat_type} (behaviour ${info.nat.nat}), connectivity_status=${info.connectivity_status}`)
  for (const reason of info.nat.reasons) console.log(`      - ${reason}`)
  for (const o of info.observed) console.log(`      observed ${o}`)
  printAddresses(info)
  const ri = await infoOf(relay)
  log(`relay NetworkInfo: nat_type=${ri.nat_type} (behaviour ${ri.nat.nat}); ${ri.nat.reasons.join('; ')}`)
  printAddresses(ri)
  const pi = await infoOf(peer)
  log(`peer NetworkInfo: nat_type=${pi.nat_type} (behaviour ${pi.nat.nat}); ${pi.nat.reasons.join('; ')}`)

  if (!result.relay_reach) failed = true
  if (REQUIRE_DIRECT && !(result.direct && result.direct_klp)) failed = true
} catch (err) {
  failed = true
  console.log(stamp(), `ERROR ${err?.stack ?? err}`)
  for (const c of children) if (c.stderr.trim() !== '') console.log(`--- ${c.role} stderr (tail) ---\n${c.stderr.slice(-3_000)}`)
} finally {
  cleanup()
  const left = run('ip', ['netns', 'list']).split('\n').filter((l) => l.startsWith(prefix))
  log(`cleanup: namespaces removed${left.length > 0 ? ` EXCEPT ${left.join(', ')}` : ''}`)
}
console.log(`RESULT ${JSON.stringify(result)}`)
process.exit(failed ? 1 : 0)
