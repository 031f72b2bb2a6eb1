/** Small helpers over an injected uniform random source (seeded in simulations). */

/** A random element of `items`, or undefined when empty. */
export function pick<T>(items: readonly T[], random: () => number): T | undefined {
  if (items.length === 0) return undefined
  return items[Math.floor(random() * items.length)]
}

/** Up to `n` distinct random elements of `items` (partial Fisher-Yates on a copy). */
export function sample<T>(items: Iterable<T>, n: number, random: () => number): T[] {
  const a = [...items]
  const k = Math.min(n, a.length)
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (a.length - i))
    const t = a[i] as T
    a[i] = a[j] as T
    a[j] = t
  }
  a.length = k
  return a
}

/** Checks that an option is an integer in [min, max] ("expected X, got Y"). */
export function checkInt(name: string, value: number, min: number, max: number, error: new (message: string) => Error): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new error(`expected ${name} to be an integer in ${min}..${max}, got ${String(value)}`)
  return value
}
