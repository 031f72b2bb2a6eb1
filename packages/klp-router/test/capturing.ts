/** A transport wrapper that remembers every connection it makes or takes (tests and benches cut them). */
import type { Connection, Transport } from '@kos-mesh/interface'

export function capturing(t: Transport, conns: Connection[]): Transport {
  return {
    name: t.name,
    canDial: (a) => t.canDial(a),
    dial: async (a, o) => {
      const c = await t.dial(a, o)
      conns.push(c)
      return c
    },
    listen: (a, h, o) => t.listen(a, (c) => { conns.push(c); h(c) }, o),
    close: () => t.close(),
  }
}
