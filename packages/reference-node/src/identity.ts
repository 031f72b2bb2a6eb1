/** Where a node gets its identity: a ready Identity, or a keystore file created on first start. */
import { constants } from 'node:fs'
import { access, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { throwIfAborted, type AbortOptions } from '@kos-mesh/interface'
import { generateIdentity, loadKeystore, saveKeystore, type Identity, type ScryptParams } from '@kos-mesh/did-security'

/** Something that yields the node identity at `start()` (I/O allowed there). */
export interface IdentitySource {
  /**
   * Resolves with the node identity; called once by the node's `start()` (and again after a
   * failed start). Rejects with the source's error (e.g. KeystorePassphraseError,
   * KeystoreFormatError) or an AbortError of `options.signal`, which fails the start.
   */
  loadIdentity(options?: AbortOptions): Promise<Identity>
}

/** Where `keystoreIdentity()` keeps the node's key: an encrypted did-security keystore file. */
export interface KeystoreIdentityInit {
  /** Path of the keystore file. Required. */
  path: string
  /** The passphrase, or a function that returns it (called once per load). Required. */
  passphrase: string | (() => string | Promise<string>)
  /** scrypt parameters for a newly created keystore. Default: did-security's (N = 2^17). */
  kdf?: ScryptParams
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK)
    return true
  } catch {
    return false
  }
}

/**
 * An identity kept in a did-security keystore (encrypted at rest): loaded at start, created with a
 * fresh key on the first start. A wrong passphrase fails with did-security's KeystorePassphraseError.
 */
export function keystoreIdentity(init: KeystoreIdentityInit): IdentitySource & { readonly path: string; created: boolean } {
  return {
    path: init.path,
    created: false,
    async loadIdentity(options: AbortOptions = {}): Promise<Identity> {
      throwIfAborted(options.signal)
      const pass = typeof init.passphrase === 'function' ? await init.passphrase() : init.passphrase
      if (await exists(init.path)) return loadKeystore(init.path, pass, options)
      const identity = generateIdentity()
      await mkdir(dirname(init.path), { recursive: true, mode: 0o700 })
      await saveKeystore(init.path, identity, pass, { ...options, ...(init.kdf === undefined ? {} : { kdf: init.kdf }) })
      this.created = true
      return identity
    },
  }
}

export function isIdentitySource(v: unknown): v is IdentitySource {
  return typeof (v as IdentitySource | undefined)?.loadIdentity === 'function'
}
