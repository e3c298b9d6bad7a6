import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import type { Torrent, Wire } from 'webtorrent'
import { dropCorruptPeers } from '../../src/swarm/corrupt-peers.ts'

// A peer may hold two connections to a host (one it opened, one the host did). Both carry its peer id:
// a piece whose blocks came over both is still that peer's alone, and dropping it closes both.

class FakeWire extends EventEmitter {
  destroyed = false
  readonly peerId: string
  constructor(peerId: string) {
    super()
    this.peerId = peerId
  }
  destroy(): void {
    this.destroyed = true
  }
}

function setup() {
  const torrent = Object.assign(new EventEmitter(), { wires: [] as FakeWire[] })
  const drops: Array<[string, number]> = []
  dropCorruptPeers(torrent as unknown as Torrent, { maxStrikes: 2, onDrop: (peer, strikes) => drops.push([peer, strikes]) })
  const connect = (wire: FakeWire) => {
    torrent.wires.push(wire)
    torrent.emit('wire', wire as unknown as Wire)
    return wire
  }
  const fail = (piece: number) => torrent.emit('warning', new Error(`Piece ${piece} failed verification`))
  return { torrent, drops, connect, fail }
}

test('a peer whose bad pieces came over two connections is dropped, both connections closed, and refused after', () => {
  const { drops, connect, fail } = setup()
  const outgoing = connect(new FakeWire('bad'))
  const incoming = connect(new FakeWire('bad'))
  const good = connect(new FakeWire('good'))
  outgoing.emit('piece', 1)
  fail(1)
  outgoing.emit('piece', 2)
  incoming.emit('piece', 2)
  fail(2)
  assert.deepEqual(drops, [['bad', 2]])
  assert.ok(outgoing.destroyed && incoming.destroyed, 'a connection of the dropped peer stayed open')
  assert.ok(!good.destroyed)
  assert.ok(connect(new FakeWire('bad')).destroyed, 'the dropped peer was let in again')
})

test('a piece mixed from two peers blames neither', () => {
  const { drops, connect, fail } = setup()
  const a = connect(new FakeWire('a'))
  const b = connect(new FakeWire('b'))
  for (const piece of [1, 2, 3]) {
    a.emit('piece', piece)
    b.emit('piece', piece)
    fail(piece)
  }
  assert.deepEqual(drops, [])
  assert.ok(!a.destroyed && !b.destroyed)
})
