import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'

const READ_BYTES = 1024 * 1024

/**
 * SHA-256 of a file's content as lowercase hex (release tarballs can be gigabytes), read into one reused
 * 1 MiB buffer. A read stream allocates a fresh Buffer per chunk, and V8 frees them only once their
 * garbage is large enough to trigger a GC: hashing 2 GiB that way raised the agent's RSS by 40 MB (64 KiB
 * chunks) or 147 MB (1 MiB chunks), against 7 MB here, and this is also faster (2.0 against 2.6 s).
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  const buffer = Buffer.allocUnsafe(READ_BYTES)
  const file = await open(path)
  try {
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null)
      if (bytesRead === 0) break
      hash.update(buffer.subarray(0, bytesRead))
    }
  } finally {
    await file.close()
  }
  return hash.digest('hex')
}
