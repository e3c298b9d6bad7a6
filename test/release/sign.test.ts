import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { VerifyError } from '../../src/errors.ts'
import { formatPublicKey, generateSigningKey, keyId, parsePrivateKey, parsePublicKey, signRelease, verifyRelease } from '../../src/release/sign.ts'

const release = { app: 'web', tag: 'v1', sha256: 'a'.repeat(64), infohash: 'b'.repeat(40), size: 1234 }
const mine = generateSigningKey()
const other = generateSigningKey()
const privateKey = parsePrivateKey(mine.privatePem, 'mine.key')
const publicKey = parsePublicKey(mine.publicKey)!
const signature = signRelease({ ...release, signed_at: '2026-11-22T00:00:00.000Z' }, privateKey)

describe('keys', () => {
  test('public keys round-trip and have a stable id shared by the private key', () => {
    assert.equal(formatPublicKey(publicKey), mine.publicKey)
    assert.equal(keyId(privateKey), keyId(publicKey))
    assert.notEqual(keyId(publicKey), keyId(parsePublicKey(other.publicKey)!))
  })

  test('malformed keys are refused', () => {
    assert.equal(parsePublicKey('rsa:AAAA'), undefined)
    assert.equal(parsePublicKey('ed25519:AAAA'), undefined)
    assert.throws(() => parsePrivateKey('not a key', 'x.key'), /x.key is not an Ed25519 private key/)
  })
})

describe('verifyRelease', () => {
  test('accepts the signed release with its key among the trusted ones', () => {
    verifyRelease(release, signature, [parsePublicKey(other.publicKey)!, publicKey])
  })

  const refused: Array<[string, () => void, string]> = [
    ['unsigned', () => verifyRelease(release, undefined, [publicKey]), 'ROOKERY_UNSIGNED'],
    ['signed by an untrusted key', () => verifyRelease(release, signature, [parsePublicKey(other.publicKey)!]), 'ROOKERY_BAD_SIGNATURE'],
    ['another sha256', () => verifyRelease({ ...release, sha256: 'c'.repeat(64) }, signature, [publicKey]), 'ROOKERY_BAD_SIGNATURE'],
    ['another infohash', () => verifyRelease({ ...release, infohash: 'd'.repeat(40) }, signature, [publicKey]), 'ROOKERY_BAD_SIGNATURE'],
    ['another size', () => verifyRelease({ ...release, size: 1235 }, signature, [publicKey]), 'ROOKERY_BAD_SIGNATURE'],
    ['another tag', () => verifyRelease({ ...release, tag: 'v2' }, signature, [publicKey]), 'ROOKERY_BAD_SIGNATURE'],
    ['another app', () => verifyRelease({ ...release, app: 'api' }, signature, [publicKey]), 'ROOKERY_BAD_SIGNATURE'],
    ['another signing time', () => verifyRelease(release, { ...signature, signed_at: '2026-11-23T00:00:00.000Z' }, [publicKey]), 'ROOKERY_BAD_SIGNATURE'],
    ['a garbled signature', () => verifyRelease(release, { ...signature, value: 'AAAA' }, [publicKey]), 'ROOKERY_BAD_SIGNATURE'],
  ]
  for (const [name, check, code] of refused) {
    test(`refuses ${name}`, () => {
      assert.throws(check, (err: unknown) => err instanceof VerifyError && err.code === code)
    })
  }
})
