// Builds tarballs byte by byte, for archives tar's own create() refuses to write (absolute paths, `..`,
// devices, setuid files, sizes it never saw).
import { writeFile } from 'node:fs/promises'
import { gzipSync } from 'node:zlib'

export interface RawEntry {
  path: string
  /** ustar typeflag: '0' file, '1' hardlink, '2' symlink, '3' char device, '5' directory, '6' fifo. */
  type?: string
  mode?: number
  body?: string | Buffer
  /** Declared size when it should differ from the body's (no body is written beyond `body`). */
  size?: number
  linkpath?: string
  /** Owner recorded in the header (0 unless set). */
  uid?: number
}

function field(block: Buffer, offset: number, length: number, value: string): void {
  block.write(value, offset, length, 'utf8')
}

function octal(block: Buffer, offset: number, length: number, value: number): void {
  if (value < 8 ** (length - 1)) {
    field(block, offset, length, value.toString(8).padStart(length - 1, '0') + '\0')
    return
  }
  // base-256 (GNU) for values the octal field cannot hold: high bit set, big-endian
  block[offset] = 0x80
  let v = BigInt(value)
  for (let i = offset + length - 1; i > offset; i--) {
    block[i] = Number(v & 0xffn)
    v >>= 8n
  }
}

/** One 512-byte ustar header with a correct checksum. */
export function header(entry: RawEntry, size: number): Buffer {
  const block = Buffer.alloc(512)
  field(block, 0, 100, entry.path)
  octal(block, 100, 8, entry.mode ?? 0o644)
  octal(block, 108, 8, entry.uid ?? 0)
  octal(block, 116, 8, entry.uid ?? 0)
  octal(block, 124, 12, size)
  octal(block, 136, 12, 946684800)
  field(block, 156, 1, entry.type ?? '0')
  field(block, 157, 100, entry.linkpath ?? '')
  field(block, 257, 6, 'ustar\0')
  field(block, 263, 2, '00')
  octal(block, 329, 8, 0)
  octal(block, 337, 8, 0)
  block.fill(' ', 148, 156)
  let sum = 0
  for (const byte of block) sum += byte
  field(block, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ')
  return block
}

/** An uncompressed tar stream: each header, its body padded to 512 bytes, then the two zero blocks. */
export function tarBuffer(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = []
  for (const entry of entries) {
    const body = Buffer.from(entry.body ?? '')
    parts.push(header(entry, entry.size ?? body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

/** Writes `entries` as a gzip tarball at `file`. */
export async function writeTgz(file: string, entries: RawEntry[]): Promise<void> {
  await writeFile(file, gzipSync(tarBuffer(entries)))
}
