import type { Torrent } from 'webtorrent'
import Piece from 'torrent-piece'
import { withPieceStore } from './piece-store.ts'

/**
 * webtorrent keeps the blocks of a piece being downloaded as they arrive, views of the socket reads
 * they came in, and joins them into a new buffer once all are there. A socket read (up to 64 KiB) thus
 * lives as long as the piece it fed: through the collector's young-generation passes, into the old
 * generation, where it waits for a full GC, and that came only after tens of MB more of them (V8's
 * external-memory trigger). Each block is now copied on arrival into the piece's own buffer, allocated
 * with its first block, and that buffer is the finished piece: the same bytes copied (a block at a time
 * instead of the whole piece at the end), a socket read is garbage as soon as its messages are parsed,
 * and one piece-sized allocation instead of two. With releasePiecesOnceWritten: 2 GiB deploy, download
 * phase peak RSS about 203 -> 183-188 MB and download CPU 15-17 -> 11-13 s (bench:agent --packaged).
 * Applied once, to the class, when the swarm module loads.
 */
let patched = false

export function assemblePiecesInPlace(): void {
  if (patched) return
  patched = true
  const BLOCK = Piece.BLOCK_LENGTH
  const flush = Piece.prototype.flush
  Piece.prototype.set = function (this: AssembledPiece, i, data, source) {
    if (!this.init()) return false
    const blocks = Math.ceil(data.length / BLOCK)
    for (let j = 0; j < blocks; j++) {
      if (this._buffer![i + j]) continue
      const at = (i + j) * BLOCK
      const block = data.subarray(j * BLOCK, (j + 1) * BLOCK)
      if (at + block.length <= this.length) {
        // The bytes are fully overwritten before the piece is used: no need to zero them first.
        this._whole ??= Buffer.allocUnsafeSlow(this.length)
        this._whole.set(block, at)
        this._buffer![i + j] = this._whole.subarray(at, at + block.length)
      } else {
        // Not where a block can be (a broken peer): kept as is, and flush fails on it as before.
        this._buffer![i + j] = block
        this._odd = true
      }
      this._buffered++
      this.missing -= block.length
      if (!this.sources!.includes(source)) this.sources!.push(source)
    }
    return this._buffered === this._chunks
  }
  Piece.prototype.flush = function (this: AssembledPiece) {
    const whole = this._whole
    // Blocks of unexpected length leave holes or overlaps: webtorrent's own join handles those.
    if (!this._buffer || this._chunks !== this._buffered || !whole || this.missing !== 0 || this._odd) return flush.call(this)
    this._whole = undefined
    this._buffer = null
    this._cancellations = null
    this.sources = null
    this._flushed = true
    return whole
  }
}

interface AssembledPiece extends Piece {
  _whole?: Buffer
  _odd?: boolean
}

/**
 * Frees each downloaded piece's memory as soon as it is on disk, instead of when the garbage collector
 * gets to it: webtorrent hands every verified piece (4 MiB with a large release) to its store and drops it
 * once written, and V8 would free it at a later full GC. Detaching the buffer
 * (ArrayBuffer.prototype.transfer(0)) frees it at once, so the next piece can reuse the same memory. On
 * its own (without assemblePiecesInPlace) it did not lower a 2 GiB deploy's peak RSS; with it, the two
 * together took the download phase from about 203 to 183-188 MB.
 *
 * Only for a piece nobody else saw: a peer may ask for a block of the piece while it is being written,
 * and the store then hands out a view of the same memory; such a piece is left to the collector. A failed
 * write is left alone too (the store may still hold it). Applied to each downloading torrent's store.
 */
export function releasePiecesOnceWritten(torrent: Torrent): void {
  withPieceStore(torrent, (store) => {
    const writing = new Map<number, ArrayBuffer>() // piece index -> memory only the store holds
    const put = store.put
    const get = store.get
    store.put = function (index, buf, cb) {
      const memory = buf.buffer
      // A piece buffer of its own (webtorrent's is always), not a view into something larger.
      if (!(memory instanceof ArrayBuffer) || buf.byteOffset !== 0 || buf.byteLength !== memory.byteLength) return put.call(this, index, buf, cb)
      writing.set(index, memory)
      return put.call(this, index, buf, (err) => {
        const unshared = writing.get(index) === memory
        if (unshared) writing.delete(index)
        if (!err && unshared && !(memory as Detachable).detached) (memory as Detachable).transfer(0)
        cb?.(err)
      })
    }
    store.get = function (index, opts, cb) {
      writing.delete(index) // a view of the piece may now live elsewhere
      return get.call(this, index, opts, cb)
    }
  })
}

/** ES2024 ArrayBuffer methods (Node 24 has them; the project's TypeScript lib is older). */
type Detachable = ArrayBuffer & { readonly detached: boolean; transfer(length: number): ArrayBuffer }

