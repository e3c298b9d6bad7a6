import assert from 'node:assert/strict'
import { test } from 'node:test'
import { announceProblem } from '../../src/server/tracker.ts'

const GOOD = '/announce?info_hash=%AA%BB&peer_id=-WW0300-%01%02&port=6881&uploaded=0&downloaded=0&left=100&compact=1'

const cases: Array<[string, string, RegExp | undefined]> = [
  ['a normal announce', GOOD, undefined],
  ['a normal announce with an event', `${GOOD}&event=started`, undefined],
  ['no query', '/announce', /missing query/],
  ['no port', '/announce?info_hash=%AA&peer_id=%BB', /missing port/],
  ['an unknown event', `${GOOD}&event=explode`, /unknown event "explode"/],
  ['a negative left', GOOD.replace('left=100', 'left=-1'), /left must be a non-negative integer/],
  ['a non-numeric port', GOOD.replace('port=6881', 'port=http'), /port must be/],
  ['a huge query', `${GOOD}&key=${'x'.repeat(3000)}`, /query over 2048 bytes/],
  ['bad percent-encoding in a checked field', `${GOOD}&event=%ZZ`, /bad encoding in event/],
  // aria2 sends raw bytes in `key` (BEP 7): not UTF-8, and not ours to check.
  ['a binary key, as aria2 sends it', `${GOOD}&key=%8A%AC%D1Y%FF`, undefined],
]

for (const [name, url, problem] of cases) {
  test(`announceProblem: ${name}`, () => {
    const found = announceProblem(url)
    if (problem) assert.match(found ?? '', problem)
    else assert.equal(found, undefined)
  })
}
