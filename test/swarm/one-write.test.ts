import assert from 'node:assert/strict'
import { test } from 'node:test'
import Protocol from 'bittorrent-protocol'
import { sendMessagesInOneWrite } from '../../src/swarm/one-write-per-message.ts'

test('a piece message leaves the wire as one chunk holding header and block', () => {
  sendMessagesInOneWrite()
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
  sendMessagesInOneWrite()
  const wire = new Protocol()
  const chunks: Buffer[] = []
  wire.on('data', (chunk: Uint8Array) => chunks.push(Buffer.from(chunk)))
  wire.have(5)
  return new Promise<void>((resolve) => setImmediate(() => {
    assert.deepEqual(chunks.map((c) => [...c]), [[0, 0, 0, 5, 4, 0, 0, 0, 5]])
    resolve()
  }))
})
