/** Error names as the reasons of operator events and metric labels. */

/** `ConnectionResetError` -> `connection_reset`. */
export function reasonOf(name: string): string {
  return name.replace(/Error$/, '').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase() || 'error'
}

/** The name of a thrown value: its `name` for an Error, else its type. */
export function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}
