import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { UsageError, VerifyError } from '../errors.ts'

/**
 * Ed25519 signatures over release metadata. The publisher signs what identifies a release's content
 * (app, tag, sha256, infohash, size) and when it was signed; agents holding the public key refuse any
 * manifest entry not signed by it, so a compromised server or manifest cannot make hosts run other bytes.
 */

/** The signed fields of a release, as they appear in the manifest. */
export interface SignedFields {
  app: string
  tag: string
  sha256: string
  infohash: string
  size: number
  signed_at: string
}

/** A signature as stored in a manifest entry. */
export interface ReleaseSignature {
  key_id: string
  signed_at: string
  value: string
}

const PUBLIC_PREFIX = 'ed25519:'
// DER prefix of an Ed25519 SubjectPublicKeyInfo: the 32 raw key bytes follow it.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** The exact bytes signed: one field a line, in a fixed order, under a versioned header. */
export function signedMessage(fields: SignedFields): Buffer {
  return Buffer.from(['rookery-release-v1', fields.app, fields.tag, fields.sha256, fields.infohash, String(fields.size), fields.signed_at].join('\n'))
}

/** A new key pair: the private key as PKCS#8 PEM, the public key as "ed25519:<base64>". */
export function generateSigningKey(): { privatePem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: formatPublicKey(publicKey) }
}

/** Reads a private key file's content (PKCS#8 PEM); the error names `source`. */
export function parsePrivateKey(pem: string, source: string): KeyObject {
  try {
    const key = createPrivateKey(pem)
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key`)
    return key
  } catch (err) {
    throw new UsageError(`${source} is not an Ed25519 private key (${(err as Error).message}): make one with \`rookery keygen\``)
  }
}

/** Parses "ed25519:<base64 of 32 bytes>"; undefined when malformed. */
export function parsePublicKey(text: string): KeyObject | undefined {
  if (!text.startsWith(PUBLIC_PREFIX)) return undefined
  const raw = Buffer.from(text.slice(PUBLIC_PREFIX.length), 'base64')
  if (raw.length !== 32) return undefined
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
}

export function formatPublicKey(key: KeyObject): string {
  const der = (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' })
  return PUBLIC_PREFIX + der.subarray(SPKI_PREFIX.length).toString('base64')
}

/** Short, stable name of a public key for logs and manifests: 16 hex digits of its SHA-256. */
export function keyId(key: KeyObject): string {
  return createHash('sha256').update(formatPublicKey(key)).digest('hex').slice(0, 16)
}

export function signRelease(fields: SignedFields, privateKey: KeyObject): ReleaseSignature {
  return {
    key_id: keyId(privateKey),
    signed_at: fields.signed_at,
    value: sign(null, signedMessage(fields), privateKey).toString('base64'),
  }
}

/**
 * Checks a release's signature against the trusted keys. Throws VerifyError ROOKERY_UNSIGNED or
 * ROOKERY_BAD_SIGNATURE, naming the release and the key it was signed with.
 */
export function verifyRelease(
  release: Omit<SignedFields, 'signed_at'>,
  signature: ReleaseSignature | undefined,
  trusted: readonly KeyObject[],
): void {
  const what = `${release.app} ${release.tag}`
  if (!signature) throw new VerifyError('ROOKERY_UNSIGNED', `${what} is not signed, and trusted_keys are configured: publish it with --sign`)
  const key = trusted.find((k) => keyId(k) === signature.key_id)
  if (!key) throw new VerifyError('ROOKERY_BAD_SIGNATURE', `${what} is signed by key ${signature.key_id}, which is not in trusted_keys`)
  const message = signedMessage({ ...release, signed_at: signature.signed_at })
  let ok = false
  try {
    ok = verify(null, message, key, Buffer.from(signature.value, 'base64'))
  } catch {
    ok = false
  }
  if (!ok) throw new VerifyError('ROOKERY_BAD_SIGNATURE', `${what}: the signature by key ${signature.key_id} does not match the release (sha256, infohash, size or time changed)`)
}
