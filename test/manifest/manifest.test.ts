import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  emptyManifest,
  manifestEtag,
  manifestSchema,
  releaseUrls,
  serializeManifest,
} from '../../src/manifest/manifest.ts'
import { formatPublishing, parsePublishing, type Manifest } from '../../src/manifest/manifest.ts'
import { desiredRelease } from '../../src/manifest/cohort.ts'
import { manifestWith, release } from './fixtures.ts'

describe('serializeManifest', () => {
  test('equal manifests give equal bytes: 2-space JSON with a final newline', () => {
    const a = serializeManifest(manifestWith(['v1', 'v2'], 'v2'))
    const b = serializeManifest(manifestWith(['v1', 'v2'], 'v2'))
    assert.ok(a.equals(b))
    const text = a.toString('utf8')
    assert.ok(text.endsWith('}\n') && !text.endsWith('\n\n'))
    assert.ok(text.startsWith('{\n  "version": 1,\n  "serial": 7,\n'))
    assert.deepEqual(JSON.parse(text), manifestWith(['v1', 'v2'], 'v2'))
  })

  test('bytes survive a read through the schema and a write (what a restarted server does)', () => {
    const manifest = manifestWith(['v1', 'v2', 'v3'], 'v2')
    const bytes = serializeManifest(manifest)
    const reread = manifestSchema.parse(JSON.parse(bytes.toString('utf8')))
    assert.ok(serializeManifest(reread).equals(bytes))
  })

  test('the empty manifest is valid', () => {
    const empty = emptyManifest()
    assert.deepEqual(manifestSchema.parse(JSON.parse(serializeManifest(empty).toString('utf8'))), empty)
    assert.equal(empty.serial, 0)
    assert.deepEqual(empty.apps, {})
  })
})

describe('manifestEtag', () => {
  test('is a quoted 32-hex strong ETag', () => {
    assert.match(manifestEtag(serializeManifest(emptyManifest())), /^"[0-9a-f]{32}"$/)
  })

  test('equal bytes give equal tags', () => {
    const a = serializeManifest(manifestWith(['v1'], 'v1'))
    const b = Buffer.from(a) // a copy, not the same buffer
    assert.equal(manifestEtag(a), manifestEtag(b))
  })

  const variants: Array<[string, Manifest]> = [
    ['another serial', manifestWith(['v1'], 'v1', 8)],
    ['another current', manifestWith(['v1'], null)],
    ['another release', manifestWith(['v2'], 'v2')],
    ['an extra release', manifestWith(['v1', 'v2'], 'v1')],
  ]
  for (const [name, other] of variants) {
    test(`different bytes give different tags: ${name}`, () => {
      const base = serializeManifest(manifestWith(['v1'], 'v1'))
      const changed = serializeManifest(other)
      assert.ok(!base.equals(changed))
      assert.notEqual(manifestEtag(base), manifestEtag(changed))
    })
  }

  test('a single changed byte changes the tag', () => {
    const bytes = serializeManifest(manifestWith(['v1'], 'v1'))
    const flipped = Buffer.from(bytes)
    flipped[flipped.length - 1] = 0x20 // final newline -> space
    assert.notEqual(manifestEtag(flipped), manifestEtag(bytes))
  })
})

describe('desiredRelease without rollout or pins: the current release', () => {
  const manifest: Manifest = {
    ...manifestWith(['v1', 'v2', 'v3'], 'v2'),
    apps: {
      web: { current: 'v2', releases: [release('v1'), release('v2'), release('v3')] },
      api: { current: null, releases: [release('v1', 'v1', 'api')] },
      ghost: { current: 'v9', releases: [release('v1', 'v1', 'ghost')] },
    },
  }
  const cases: Array<[string, string | undefined]> = [
    ['web', 'v2'], // the current one, not the newest
    ['api', undefined], // current null
    ['ghost', undefined], // current names a tag the app does not list
    ['missing', undefined],
  ]
  for (const [app, tag] of cases) {
    test(`${app} -> ${tag}`, () => {
      const entry = desiredRelease(manifest, app, { host: 'h1', groups: [] })
      assert.equal(entry?.tag, tag)
      if (tag) assert.deepEqual(entry, release(tag))
    })
  }
})

describe('releaseUrls', () => {
  test('builds absolute URLs under the public URL, escaping segments', () => {
    assert.deepEqual(releaseUrls('http://seed.example:8998//', 'web', 'v1+b', 'web-v1+b.tar.gz'), {
      torrent: 'http://seed.example:8998/torrents/web/v1%2Bb.torrent',
      tarball: 'http://seed.example:8998/releases/web/v1%2Bb/web-v1%2Bb.tar.gz',
    })
  })
})

describe('the publishing hint (PUBLISHING_HEADER)', () => {
  test('round-trips the app and a rollout cohort', () => {
    for (const upload of [{ app: 'web' }, { app: 'web', rollout: { percent: 10 } }, { app: 'api', rollout: { groups: ['canary', 'blue'] } }, { app: 'web', rollout: { percent: 2.5, groups: ['a'] } }]) {
      assert.deepEqual(parsePublishing(formatPublishing(upload)), upload)
    }
    assert.equal(formatPublishing({ app: 'web', rollout: { percent: 10, groups: ['canary'] } }), 'web; percent=10; groups=canary')
  })

  test('a value it does not know is no hint', () => {
    for (const value of ['', ' ; percent=10', 'web; percent=110', 'web; percent=ten', 'web; color=red', 'we b', 'web; groups=']) {
      assert.equal(parsePublishing(value), undefined, value)
    }
  })
})
