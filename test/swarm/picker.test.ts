import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { inOrderPiece, rarestPiece, type PieceInstance } from '../../src/swarm/picker.ts'

/** A torrent-piece Piece of 16 blocks: untouched, started with blocks left to ask for, or all asked for. */
const untouched = (): PieceInstance => ({ _buffer: null, _reservations: 0, _chunks: 16, _cancellations: null })
const started = (asked = 4): PieceInstance => ({ _buffer: new Array(16), _reservations: asked, _chunks: 16, _cancellations: [] })
const allAsked = (): PieceInstance => started(16)

describe('rarestPiece', () => {
  test('takes the least available piece, even over a started one', () => {
    const pieces = [started(), untouched(), untouched()]
    assert.equal(rarestPiece(pieces, [2, 1, 3], () => true), 1)
  })

  test('between equally rare pieces, finishes a started one first', () => {
    const pieces = [untouched(), untouched(), started(), untouched()]
    for (let i = 0; i < 50; i++) assert.equal(rarestPiece(pieces, [1, 1, 1, 1], () => true), 2)
  })

  test('skips a piece whose blocks were all asked for, even a rarer one', () => {
    const pieces = [untouched(), allAsked(), untouched()]
    const seen = new Set<number>()
    for (let i = 0; i < 100; i++) seen.add(rarestPiece(pieces, [2, 1, 2], () => true))
    assert.deepEqual([...seen].sort(), [0, 2])
  })

  test('when every wanted piece is all asked for, returns the rarest of them (webtorrent may hotswap it)', () => {
    const pieces = [allAsked(), allAsked(), null]
    assert.equal(rarestPiece(pieces, [3, 2, 1], (i) => i !== 2), 1)
  })

  test('a cancelled block makes an all-asked piece started again', () => {
    const piece = allAsked()
    piece._cancellations = [3]
    assert.equal(rarestPiece([untouched(), piece], [1, 1], () => true), 1)
  })

  test('respects the filter and says -1 when nothing passes', () => {
    const pieces = [started(), untouched(), untouched()]
    assert.equal(rarestPiece(pieces, [1, 1, 1], (i) => i === 2), 2)
    assert.equal(rarestPiece(pieces, [1, 1, 1], () => false), -1)
  })
})

describe('inOrderPiece', () => {
  const fresh = (n: number) => Array.from({ length: n }, untouched)

  test('takes the rarest piece inside the window of first missing pieces over a rarer one beyond it', () => {
    // Pieces 0-1 are had (filtered out); the window is pieces 2-4; piece 6 is the rarest of all.
    const wanted = (i: number) => i >= 2
    assert.equal(inOrderPiece(fresh(8), [1, 1, 3, 2, 3, 3, 1, 3], wanted, 2, 3), 3)
  })

  test('inside the window, takes the first of equally rare pieces (a single source then delivers in order)', () => {
    for (let i = 0; i < 20; i++) assert.equal(inOrderPiece(fresh(8), [1, 1, 1, 1, 1, 1, 1, 1], (j) => j >= 2, 2, 4), 2)
    const pieces = [null, null, untouched(), untouched(), started(), untouched()]
    assert.equal(inOrderPiece(pieces, [1, 1, 1, 1, 1, 1], (j) => j >= 2, 2, 4), 4, 'a started piece still comes first')
  })

  test('looks beyond the window when this peer has nothing in it to give', () => {
    const wanted = (i: number) => i >= 5 // the peer has none of pieces 2-4
    assert.equal(inOrderPiece(fresh(8), [1, 1, 3, 2, 3, 3, 1, 3], wanted, 2, 3), 6)
  })

  test('looks beyond the window when every block inside it was asked for already', () => {
    const pieces = [null, null, allAsked(), allAsked(), allAsked(), untouched(), untouched(), untouched()]
    assert.equal(inOrderPiece(pieces, [1, 1, 1, 1, 1, 2, 1, 2], (i) => i >= 2, 2, 3), 6)
  })
})
