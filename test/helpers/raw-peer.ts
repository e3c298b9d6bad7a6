import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import Protocol from 'bittorrent-protocol'

/**
 * A bare BitTorrent peer (bittorrent-protocol, as webtorrent uses) connected to a seeder on loopback: it
 * records the seeder's first message about its pieces and every piece offered (HAVE), and asks only
 * for what a test makes it ask. It never unchokes, so it serves nothing; `options` can make it claim
 * pieces (a bitfield after the handshake) and add keys to its BEP 10 extended handshake.
 */
export interface RawPeerOptions {
  /** Pieces it claims to have, sent as its bitfield once the handshakes are done. */
  has?: (index: number) => boolean
  /** Extra keys for its extended handshake. */
  extendedHandshake?: Record<string, unknown>
  /**
   * Behave as a webtorrent host with nothing yet: say so (BEP 6 have-none) after the handshakes and
   * unchoke the seeder. Needs `fast`; not with `has`.
   */
  asEmptyHost?: boolean
}

export class RawPeer {
  readonly wire = new Protocol()
  readonly socket: Socket
  readonly offered: number[] = []
  initial: string | undefined

  constructor(port: number, infoHash: string, fast: boolean, pieces: number, options: RawPeerOptions = {}) {
    this.socket = connect(port, '127.0.0.1')
    Object.assign(this.wire.extendedHandshake, options.extendedHandshake)
    const has = options.has
    if (has) {
      this.wire.once('handshake', () => {
        const bits = new Uint8Array(Math.ceil(pieces / 8))
        for (let i = 0; i < pieces; i++) if (has(i)) bits[i >> 3]! |= 0x80 >> (i & 7)
        this.wire.bitfield(bits)
      })
    }
    if (options.asEmptyHost) {
      this.wire.once('handshake', () => {
        this.wire.haveNone()
        this.wire.unchoke()
      })
    }
    this.socket.pipe(this.wire).pipe(this.socket)
    this.wire.on('have-none', () => (this.initial ??= 'have-none'))
    this.wire.on('have-all', () => (this.initial ??= 'have-all'))
    this.wire.on('bitfield', (bits: { get(i: number): boolean }) => {
      const count = Array.from({ length: pieces }, (_, i) => bits.get(i)).filter(Boolean).length
      this.initial ??= `bitfield with ${count} pieces`
    })
    this.wire.on('have', (index: number) => this.offered.push(index))
    this.wire.handshake(infoHash, randomBytes(20), { dht: false, fast })
  }

  request(index: number, offset: number, length: number): Promise<Buffer> {
    return new Promise((resolve, reject) => this.wire.request(index, offset, length, (err: Error | null, block: Uint8Array) => (err ? reject(err) : resolve(Buffer.from(block)))))
  }

  close(): void {
    this.socket.destroy()
  }
}
