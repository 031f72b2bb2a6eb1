import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { KosMeshError } from '@kos-mesh/interface'
import { KeystoreNotFoundError, generateIdentity, loadKeystore, parseKeystore, saveKeystore } from '../src/index.js'
import { MAX_SCRYPT_COST_BYTES } from '../src/keystore.js'

const dir = mkdtempSync(join(tmpdir(), 'kos-keystore-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })
const kdf = { N: 1024, r: 8, p: 1 } // fast for tests; the default is N = 2^17

describe('keystore', () => {
  const id = generateIdentity()
  const path = join(dir, 'node.key')

  it('round-trips an identity and leaves no temporary files', async () => {
    await saveKeystore(path, id, 'correct horse', { kdf })
    const back = await loadKeystore(path, 'correct horse')
    expect(back.did).toBe(id.did)
    expect(back.exportSeed()).toEqual(id.exportSeed())
    expect(readdirSync(dir)).toEqual(['node.key'])
    const f = parseKeystore(readFileSync(path))
    expect(f.version).toBe(1)
    expect(f.kdf).toMatchObject({ name: 'scrypt', N: 1024, r: 8, p: 1 })
    expect(readFileSync(path, 'utf8')).not.toContain(Buffer.from(id.exportSeed()).toString('base64url'))
  })

  it('overwrites atomically', async () => {
    const other = generateIdentity()
    await saveKeystore(path, other, 'pw2', { kdf })
    expect((await loadKeystore(path, 'pw2')).did).toBe(other.did)
    await saveKeystore(path, id, 'correct horse', { kdf })
  })

  it('reports a wrong passphrase', async () => {
    await expect(loadKeystore(path, 'wrong')).rejects.toMatchObject({ name: 'KeystorePassphraseError', code: 'ERR_KEYSTORE_PASSPHRASE' })
  })

  it('reports damaged files: ciphertext, header fields, JSON, version, hostile KDF parameters', async () => {
    const good = JSON.parse(readFileSync(path, 'utf8'))
    const write = (o: unknown): string => { const p = join(dir, 'bad.key'); writeFileSync(p, typeof o === 'string' ? o : JSON.stringify(o)); return p }
    const ct = Buffer.from(good.ciphertext, 'base64url'); ct[3] = (ct[3] as number) ^ 1
    await expect(loadKeystore(write({ ...good, ciphertext: ct.toString('base64url') }), 'correct horse')).rejects.toMatchObject({ name: 'KeystorePassphraseError' })
    await expect(loadKeystore(write({ ...good, did: generateIdentity().did }), 'correct horse')).rejects.toMatchObject({ name: 'KeystorePassphraseError' })
    await expect(loadKeystore(write(readFileSync(path, 'utf8').slice(0, 50)), 'correct horse')).rejects.toMatchObject({ name: 'KeystoreFormatError' })
    await expect(loadKeystore(write({ ...good, version: 2 }), 'correct horse')).rejects.toMatchObject({ name: 'KeystoreFormatError' })
    await expect(loadKeystore(write({ ...good, kdf: { ...good.kdf, N: 2 ** 30 } }), 'correct horse')).rejects.toMatchObject({ name: 'KeystoreFormatError' })
    await expect(loadKeystore(write('x'.repeat(70_000)), 'correct horse')).rejects.toMatchObject({ name: 'KeystoreFormatError' })
  })

  it('reports a missing file as KeystoreNotFoundError (a KosMeshError), not a raw ENOENT', async () => {
    const missing = join(dir, 'does-not-exist.key')
    const err = await loadKeystore(missing, 'pw').then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(KeystoreNotFoundError)
    expect(err).toBeInstanceOf(KosMeshError)
    expect(err).toMatchObject({ name: 'KeystoreNotFoundError', code: 'ERR_KEYSTORE_NOT_FOUND' })
    expect((err as Error).cause).toMatchObject({ code: 'ENOENT' })
  })

  it('reports a directory at the keystore path as KeystoreFormatError, not a raw EISDIR', async () => {
    const err = await loadKeystore(dir, 'pw').then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ name: 'KeystoreFormatError', code: 'ERR_KEYSTORE_FORMAT' })
  })

  it('bounds the KDF parameters a keystore may ask for, before running the KDF', async () => {
    const good = JSON.parse(readFileSync(path, 'utf8'))
    const write = (kdfOver: Record<string, unknown>): string => {
      const p = join(dir, 'kdf.key')
      writeFileSync(p, JSON.stringify({ ...good, kdf: { ...good.kdf, ...kdfOver } }))
      return p
    }
    // each within its own range, together 4 GiB and ~20 s of scrypt: refused before any KDF work
    // (were the KDF run, the error would be KeystorePassphraseError after gigabytes and seconds)
    const hostile = [
      { N: 2 ** 20, r: 32, p: 1 },
      { N: 2 ** 20, r: 8, p: 1 },
      { N: 2 ** 17, r: 8, p: 16 },
      { N: 2 ** 21, r: 1, p: 1 },
      { N: 1000, r: 8, p: 1 },
      { N: 1024, r: 33, p: 1 },
      { N: 1024, r: 8, p: 17 },
      { N: 1024, r: 8.5, p: 1 },
      { N: '1024', r: 8, p: 1 },
    ]
    for (const k of hostile) {
      const err = await loadKeystore(write(k), 'correct horse').then(() => undefined, (e: unknown) => e)
      expect(err, JSON.stringify(k)).toMatchObject({ name: 'KeystoreFormatError', code: 'ERR_KEYSTORE_FORMAT' })
      expect(() => parseKeystore(readFileSync(join(dir, 'kdf.key'))), JSON.stringify(k)).toThrow(expect.objectContaining({ name: 'KeystoreFormatError' }))
    }
    // the same bounds apply to what the project writes; the default (2^17, 8, 1) is within them
    await expect(saveKeystore(join(dir, 'big.key'), id, 'pw', { kdf: { N: 2 ** 20, r: 32, p: 1 } })).rejects.toMatchObject({ name: 'InvalidParametersError' })
    expect(128 * 2 ** 17 * 8 * 1).toBeLessThanOrEqual(MAX_SCRYPT_COST_BYTES)
    // within the bound: accepted (N = 2^10 keeps parsing cheap; no KDF runs in parseKeystore)
    expect(parseKeystore(readFileSync(write({ N: 2 ** 10, r: 8, p: 16 }))).kdf).toMatchObject({ N: 1024, r: 8, p: 16 })
  })

  it('honours an aborted signal', async () => {
    const ac = new AbortController(); ac.abort()
    await expect(saveKeystore(join(dir, 'x.key'), id, 'p', { kdf, signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' })
  })
})
