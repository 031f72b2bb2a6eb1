/**
 * `Promise.withResolvers` for Node 20. libp2p 3.x (and noise, yamux, identify, ping, @libp2p/utils...)
 * call it; it only exists from Node 22. Without it every inbound upgrade fails with
 * `Promise.withResolvers is not a function`. Installed only when missing, never replaced. This module
 * is the first import of the package entry so it runs before any libp2p code can.
 */
interface Resolvers<T> {
  promise: Promise<T>
  resolve: (value: T | PromiseLike<T>) => void
  reject: (reason?: unknown) => void
}

const P = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> }

if (typeof P.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    value: function withResolvers<T>(this: PromiseConstructor): Resolvers<T> {
      let resolve!: Resolvers<T>['resolve']
      let reject!: Resolvers<T>['reject']
      // `this` keeps subclass semantics (Promise.withResolvers.call(MyPromise))
      const Ctor = typeof this === 'function' ? this : Promise
      const promise = new Ctor<T>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    },
    writable: true,
    configurable: true,
    enumerable: false,
  })
}

export {}
