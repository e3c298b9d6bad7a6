import { stat } from 'node:fs/promises'
import createTorrent from 'create-torrent'
import parseTorrent from 'parse-torrent'
import { RookeryError, VerifyError } from '../errors.ts'

const KiB = 1024
const MiB = 1024 * KiB

// Fixed, so that the server and a publisher compute the same infohash for the same tarball.
const CREATION_DATE = new Date('2000-01-01T00:00:00Z')

const PIECE_LENGTHS = [256 * KiB, 512 * KiB, 1 * MiB, 2 * MiB, 4 * MiB]
const MAX_PIECES = 1024
const MIN_PIECES = 128
const MIN_PIECE_LENGTH = 16 * KiB

/**
 * Piece length for a release of `size` bytes: the smallest of 256 KiB, 512 KiB, 1 MiB, 2 MiB, 4 MiB giving at
 * most 1024 pieces (up to 256 MiB -> 256 KiB, ..., over 2 GiB -> 4 MiB, beyond which the count grows).
 * Many pieces let peers that hold different parts trade early in a rollout; few enough keep the .torrent
 * (20 bytes of SHA-1 per piece) small and the per-piece overhead low.
 *
 * A release under 32 MiB gets shorter pieces, halved down to 16 KiB (one request) until there are at least
 * 128: a host can pass a piece on only once it is whole, so with a few large pieces most hosts wait for
 * whole pieces to cross link after link. 24 hosts at 2 Mbit/s, a 2 MiB release: 8 pieces of 256 KiB took
 * the median host 4.0 x F/C, 128 pieces of 16 KiB 2.25 x (docs/performance.md, twelfth session).
 */
export function pieceLengthFor(size: number): number {
  const length = PIECE_LENGTHS.find((candidate) => size <= candidate * MAX_PIECES) ?? (PIECE_LENGTHS[PIECE_LENGTHS.length - 1] as number)
  let shorter = length
  while (shorter > MIN_PIECE_LENGTH && size < shorter * MIN_PIECES) shorter /= 2
  return shorter
}

/** A release's .torrent and the facts about it the server records. */
export interface ReleaseTorrent {
  torrent: Buffer
  infoHash: string
  pieceLength: number
  length: number
  name: string
}

/** The fields of a parsed single-file .torrent that rookery uses. */
export interface TorrentInfo {
  infoHash: string
  name: string
  length: number
  pieceLength: number
  announce: string[]
  urlList: string[]
  private: boolean
}

/**
 * Builds the private, single-file .torrent of a release tarball: `name` becomes info.name whatever the file
 * is called on disk, `announce` the only tracker, `webseed` the only url-list entry. Deterministic: the same
 * file and options give the same bytes and infohash. `pieceLength` is for tests that need pieces of a given
 * size; the server and publishers leave it to pieceLengthFor, so that their infohashes agree.
 */
export async function makeTorrent(
  file: string,
  opts: { name: string; announce: string; webseed: string; pieceLength?: number },
): Promise<ReleaseTorrent> {
  let bytes: Uint8Array
  try {
    const pieceLength = opts.pieceLength ?? pieceLengthFor((await stat(file)).size)
    bytes = await new Promise<Uint8Array>((resolve, reject) => {
      createTorrent(
        file,
        {
          name: opts.name,
          private: true,
          announceList: [[opts.announce]],
          urlList: [opts.webseed],
          creationDate: CREATION_DATE,
          createdBy: 'rookery',
          pieceLength,
        },
        (err, torrent) => (err ? reject(err) : resolve(torrent)),
      )
    })
  } catch (err) {
    throw new RookeryError('ROOKERY_TORRENT_IO', `cannot create a torrent of ${file}: ${(err as Error).message}`, {
      cause: err,
    })
  }
  // create-torrent returns a Uint8Array (bencode 4), not a Buffer
  const torrent = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const info = await readTorrent(torrent)
  return { torrent, infoHash: info.infoHash, pieceLength: info.pieceLength, length: info.length, name: info.name }
}

/** Parses a .torrent; throws VerifyError ROOKERY_BAD_TORRENT if it is not a valid single-file torrent. */
export async function readTorrent(buf: Buffer): Promise<TorrentInfo> {
  const bad = (why: string, cause?: unknown): VerifyError =>
    new VerifyError('ROOKERY_BAD_TORRENT', `invalid .torrent: ${why}`, { cause })
  // parse-torrent reads a 20-byte buffer as a bare infohash, which has no info dictionary to check
  if (buf.length === 20) throw bad('20 bytes is an infohash, not a .torrent file')
  let parsed
  try {
    parsed = await parseTorrent(buf)
  } catch (err) {
    throw bad((err as Error).message, err)
  }
  if (!parsed.info) throw bad('no info dictionary')
  if (parsed.info.files !== undefined) throw bad('multi-file torrent; a release is a single file')
  const { name, length, pieceLength, pieces } = parsed
  if (!name || typeof length !== 'number' || !pieceLength || !pieces) throw bad('missing name, length or pieces')
  if (pieces.length !== Math.ceil(length / pieceLength)) {
    throw bad(`${pieces.length} piece hashes for ${length} bytes in pieces of ${pieceLength}`)
  }
  return {
    infoHash: parsed.infoHash,
    name,
    length,
    pieceLength,
    announce: parsed.announce ?? [],
    urlList: parsed.urlList ?? [],
    private: parsed.private ?? false,
  }
}
