import assert from 'node:assert/strict'
import { test } from 'node:test'
import Protocol from 'bittorrent-protocol'
import { patchWireIo } from '../../src/swarm/wire-io.ts'

test('a piece message leaves the wire as one chunk holding header and block', () => {
  patchWireIo()
  const wire = new Protocol()
  const chunks: Buffer[] = []
  wire.on('data', (chunk: Uint8Array) => chunks.push(Buffer.from(chunk)))
  const block = Buffer.alloc(16 * 1024, 7)
  ;(wire as unknown as { piece(i: number, o: number, b: Uint8Array): void }).piece(3, 32768, block)
  return new Promise<void>((resolve) => setImmediate(() => {
    assert.equal(chunks.length, 1)
    const msg = chunks[0]!
    assert.equal(msg.readUInt32BE(0), 9 + block.length, 'length prefix')
    assert.equal(msg[4], 7, 'message id 7 (piece)')
    assert.equal(msg.readUInt32BE(5), 3, 'piece index')
    assert.equal(msg.readUInt32BE(9), 32768, 'offset')
    assert.ok(msg.subarray(13).equals(block), 'the block follows')
    resolve()
  }))
})

test('messages without payload are unchanged', () => {
  patchWireIo()
  const wire = new Protocol()
  const chunks: Buffer[] = []
  wire.on('data', (chunk: Uint8Array) => chunks.push(Buffer.from(chunk)))
  wire.have(5)
  return new Promise<void>((resolve) => setImmediate(() => {
    assert.deepEqual(chunks.map((c) => [...c]), [[0, 0, 0, 5, 4, 0, 0, 0, 5]])
    resolve()
  }))
})

test('messages read in many small chunks are parsed whole, joined once complete', async () => {
  patchWireIo()
  const sender = new Protocol()
  const sent: Buffer[] = []
  sender.on('data', (chunk: Uint8Array) => sent.push(Buffer.from(chunk)))
  const block = Buffer.from(Uint8Array.from({ length: 16 * 1024 }, (_, i) => i % 253))
  sender.handshake('aa'.repeat(20), 'bb'.repeat(20), { dht: false })
  sender.have(1)
  ;(sender as unknown as { piece(i: number, o: number, b: Uint8Array): void }).piece(2, 16384, block)
  sender.have(9)
  await new Promise((r) => setImmediate(r))
  const bytes = Buffer.concat(sent)

  const receiver = new Protocol()
  const events: string[] = []
  let got: Buffer | undefined
  receiver.on('handshake', () => events.push('handshake'))
  receiver.on('have', (i: number) => events.push(`have ${i}`))
  receiver.on('piece', (i: number, o: number, b: Uint8Array) => {
    events.push(`piece ${i} ${o}`)
    got = Buffer.from(b)
  })
  // Fed one TCP segment at a time; while the block is incomplete its segments wait unjoined (the wire's
  // private buffer list), where the original joined all of them into a new buffer on every segment.
  const pending = receiver as unknown as { _buffer: Uint8Array[] }
  let mostWaiting = 0
  for (let at = 0; at < bytes.length; at += 1448) {
    receiver.write(bytes.subarray(at, at + 1448))
    await new Promise((r) => setImmediate(r))
    mostWaiting = Math.max(mostWaiting, pending._buffer.length)
  }
  assert.ok(mostWaiting >= 5, `at most ${mostWaiting} segments waited unjoined`)
  assert.deepEqual(events, ['handshake', 'have 1', 'piece 2 16384', 'have 9'])
  assert.ok(got?.equals(block), 'the block arrives intact')
})
