/**
 * The main help of `kos-mesh` (`kos-mesh --help`): the version, the command list and the exit codes.
 */
import { GLOBAL_TEXT } from './cli-common.js'

export const VERSION = '0.1.0'

export const EXIT_CODES_TEXT = `Exit codes:
  0  ok
  1  runtime failure (also: init on an initialized dir, start while a node
     runs or with its address in use, stop that timed out)
  2  usage error (unknown command or option, bad argument)
  3  node not running (no control API for this data dir)
  4  rejected by the peer (no_eligible_agents, insufficient_trust, ...)
  5  peer unreachable or no answer in time (also: dht find found no record)
  6  data dir problem: not initialized, invalid config, bad keystore or
     passphrase, or a datastore that lost its records (start --reset-store);
     also: a service the config turned off (dht, gossip)
  7  identity: the peer proved another DID than the address names, or the
     authority is pinned to another DID`

export const MAIN_HELP = `kos-mesh ${VERSION}: run and control a kOS federated mesh node (KLP)

Usage: kos-mesh <command> [options]

Commands:
  init                    create (or update) the data dir: config, identity keystore, passphrase
  start                   run the node in the foreground (Ctrl-C to stop)
  stop                    stop the node running for the data dir and wait for it to exit
  status                  show the running node: DID, addresses, peers, traffic, agents
  connect <address>       connect the running node to a peer
  peers                   list connected, known and discovered peers
  trust <did|address> N   trust a DID at level N (an anchor of this node's web of trust)
  trust [list]            list the trust decisions with their computed scores
  untrust <did|address>   remove a trust decision
  attest <did|address>    sign an endorsement (or another claim) and flood it to the mesh
  revoke <did|address>    revoke this node's attestations, a statement, a key, or its own DID
  reputation <did|address>
                          the score of a DID and the evidence behind it
  discover                find peers (--capability X) through peer tables, the DHT and gossip
  dht find <did>          look up a node's signed record in the DHT
  dht providers <name>    look up the providers of a name (capability:vector_storage) in the DHT
  broadcast <text>        send a broadcast to the whole mesh (--received lists those received)
  task <target> <input>   send a task to an agent on another node (<input> - reads stdin)
  agent list|deploy|migrate|restore|export|import
                          sandboxed agents of the node, and their migration to other nodes
  vectors status|create|add|import|search|sync
                          vector collections: sharded, replicated, synced and searched across nodes
  logs                    print the node's log (--follow to keep printing)
  config export           print the configuration as JSON

${GLOBAL_TEXT}
  -v, --version      print the version

Run \`kos-mesh <command> --help\` for the options of a command.

${EXIT_CODES_TEXT}
`
