import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { formatBytes, parseDuration, parseSize } from '../../src/config/units.ts'

describe('parseDuration', () => {
  const cases: Array<[string, number | undefined]> = [
    ['0', 0],
    ['0s', 0],
    ['250ms', 250],
    ['90s', 90_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1m30s500ms', 90_500],
    ['1.5s', 1500],
    ['0.5ms', 1], // rounded to whole milliseconds
    ['  10s  ', 10_000],
    ['', undefined],
    ['   ', undefined],
    ['5', undefined], // a bare number other than 0 has no unit
    ['5 minutes', undefined],
    ['5min', undefined],
    ['5 m', undefined],
    ['5M', undefined],
    ['-5s', undefined],
    ['5m30', undefined],
    ['1h 30m', undefined],
    ['s', undefined],
    ['1e3ms', undefined],
  ]
  for (const [text, expected] of cases) {
    test(`${JSON.stringify(text)} -> ${expected}`, () => assert.equal(parseDuration(text), expected))
  }
})

describe('parseSize', () => {
  const cases: Array<[string, number | undefined]> = [
    ['0', 0],
    ['1024', 1024],
    ['10b', 10],
    ['1kb', 1000],
    ['1KiB', 1024],
    ['64MiB', 64 * 1024 ** 2],
    ['512mib', 512 * 1024 ** 2],
    ['10GB', 10e9],
    ['20GiB', 20 * 1024 ** 3],
    ['1TiB', 1024 ** 4],
    ['2TB', 2e12],
    ['1.5 GiB', 1.5 * 1024 ** 3],
    [' 3 MB ', 3e6],
    ['1.5KiB', 1536],
    ['', undefined],
    ['MiB', undefined],
    ['-1', undefined],
    ['10 XB', undefined],
    ['10 megabytes', undefined],
    ['1e3', undefined],
    ['1,000', undefined],
  ]
  for (const [text, expected] of cases) {
    test(`${JSON.stringify(text)} -> ${expected}`, () => assert.equal(parseSize(text), expected))
  }
})

describe('formatBytes', () => {
  const cases: Array<[number, string]> = [
    [0, '0 B'],
    [1, '1 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [1024 ** 2, '1.0 MiB'],
    [5.25 * 1024 ** 2, '5.3 MiB'],
    [1.5 * 1024 ** 3, '1.5 GiB'],
    [2 * 1024 ** 4, '2.0 TiB'],
    [2048 * 1024 ** 4, '2048.0 TiB'], // TiB is the largest unit
  ]
  for (const [bytes, expected] of cases) {
    test(`${bytes} -> ${expected}`, () => assert.equal(formatBytes(bytes), expected))
  }

  test('round-trips with parseSize for whole binary units', () => {
    for (const text of ['1 KiB', '7 MiB', '3 GiB', '2 TiB']) {
      const bytes = parseSize(text)
      assert.ok(bytes !== undefined)
      assert.equal(formatBytes(bytes), text.replace(' ', '.0 '))
    }
  })
})
