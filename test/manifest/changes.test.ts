import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { addRelease, applyRetention, setCurrent } from '../../src/manifest/changes.ts'
import { emptyManifest, manifestSchema } from '../../src/manifest/manifest.ts'
import type { Manifest } from '../../src/manifest/manifest.ts'
import { manifestWith, release } from './fixtures.ts'

const NOW = new Date('2024-03-04T05:06:07.000Z')
const tags = (m: Manifest, app = 'web') => m.apps[app]?.releases.map((r) => r.tag)

describe('addRelease', () => {
  test('to an empty manifest, activated', () => {
    const before = emptyManifest()
    const { manifest, removed } = addRelease(before, 'web', release('v1'), { activate: true, keep: 5, now: NOW })
    assert.deepEqual(manifest.apps.web, { current: 'v1', releases: [release('v1')] })
    assert.equal(manifest.serial, 1)
    assert.equal(manifest.updated_at, NOW.toISOString())
    assert.deepEqual(removed, [])
    assert.deepEqual(before, emptyManifest(), 'the input is not modified')
    manifestSchema.parse(manifest)
  })

  test('to an empty manifest, not activated: no current yet', () => {
    const { manifest } = addRelease(emptyManifest(), 'web', release('v1'), { activate: false, keep: 5, now: NOW })
    assert.deepEqual(manifest.apps.web, { current: null, releases: [release('v1')] })
    assert.equal(manifest.serial, 1)
  })

  test('activate: false keeps the current release and appends the new one', () => {
    const before = manifestWith(['v1', 'v2'], 'v1')
    const { manifest } = addRelease(before, 'web', release('v3'), { activate: false, keep: 5, now: NOW })
    assert.equal(manifest.apps.web?.current, 'v1')
    assert.deepEqual(tags(manifest), ['v1', 'v2', 'v3'])
    assert.equal(manifest.serial, before.serial + 1)
  })

  test('activate: true makes the new release current', () => {
    const { manifest } = addRelease(manifestWith(['v1', 'v2'], 'v1'), 'web', release('v3'), { activate: true, keep: 5, now: NOW })
    assert.equal(manifest.apps.web?.current, 'v3')
    assert.deepEqual(tags(manifest), ['v1', 'v2', 'v3'])
  })

  test('other apps are untouched', () => {
    const before = manifestWith(['v1'], 'v1')
    const { manifest } = addRelease(before, 'api', release('v1', 'api-v1', 'api'), { activate: true, keep: 5, now: NOW })
    assert.deepEqual(manifest.apps.web, before.apps.web)
    assert.deepEqual(manifest.apps.api, { current: 'v1', releases: [release('v1', 'api-v1', 'api')] })
  })

  test('applies retention and reports what it dropped', () => {
    const { manifest, removed } = addRelease(manifestWith(['v1', 'v2', 'v3'], 'v3'), 'web', release('v4'), { activate: true, keep: 2, now: NOW })
    assert.deepEqual(tags(manifest), ['v3', 'v4'])
    assert.deepEqual(removed, [{ app: 'web', tag: 'v1' }, { app: 'web', tag: 'v2' }])
    assert.equal(manifest.serial, 8, 'one change, one serial bump')
  })

  test('retention keeps an old current when adding without activating', () => {
    const { manifest, removed } = addRelease(manifestWith(['v1', 'v2', 'v3'], 'v1'), 'web', release('v4'), { activate: false, keep: 2, now: NOW })
    assert.equal(manifest.apps.web?.current, 'v1')
    assert.deepEqual(tags(manifest), ['v1', 'v3', 'v4'])
    assert.deepEqual(removed, [{ app: 'web', tag: 'v2' }])
  })

  test('re-adding a listed tag replaces it rather than listing it twice', () => {
    const { manifest } = addRelease(manifestWith(['v1', 'v2'], 'v2'), 'web', release('v1'), { activate: false, keep: 5, now: NOW })
    assert.deepEqual(tags(manifest)?.filter((t) => t === 'v1'), ['v1'])
    assert.equal(manifest.apps.web?.releases.length, 2)
  })
})

describe('setCurrent', () => {
  test('points current at a kept release and bumps the serial', () => {
    const before = manifestWith(['v1', 'v2', 'v3'], 'v3')
    const after = setCurrent(before, 'web', 'v1', NOW)
    assert.equal(after.apps.web?.current, 'v1')
    assert.deepEqual(after.apps.web?.releases, before.apps.web?.releases)
    assert.equal(after.serial, before.serial + 1)
    assert.equal(after.updated_at, NOW.toISOString())
    assert.equal(before.apps.web?.current, 'v3', 'the input is not modified')
  })

  test('an unknown app throws', () => {
    assert.throws(() => setCurrent(manifestWith(['v1'], 'v1'), 'api', 'v1', NOW), /unknown app api/)
  })
})

describe('applyRetention', () => {
  const cases: Array<{ name: string; tags: string[]; current: string | null; keep: number; kept: string[]; removed: string[] }> = [
    { name: 'fewer than keep', tags: ['v1', 'v2'], current: 'v2', keep: 5, kept: ['v1', 'v2'], removed: [] },
    { name: 'exactly keep', tags: ['v1', 'v2', 'v3'], current: 'v3', keep: 3, kept: ['v1', 'v2', 'v3'], removed: [] },
    { name: 'newest N by position', tags: ['v1', 'v2', 'v3', 'v4', 'v5'], current: 'v5', keep: 2, kept: ['v4', 'v5'], removed: ['v1', 'v2', 'v3'] },
    // position, not name order: v10 was published after v9
    { name: 'position beats name order', tags: ['v9', 'v10', 'a', 'b'], current: 'b', keep: 2, kept: ['a', 'b'], removed: ['v9', 'v10'] },
    { name: 'an old current is kept beyond N', tags: ['v1', 'v2', 'v3', 'v4'], current: 'v1', keep: 2, kept: ['v1', 'v3', 'v4'], removed: ['v2'] },
    { name: 'keep 1 with an old current', tags: ['v1', 'v2', 'v3'], current: 'v2', keep: 1, kept: ['v2', 'v3'], removed: ['v1'] },
    { name: 'no current', tags: ['v1', 'v2', 'v3'], current: null, keep: 1, kept: ['v3'], removed: ['v1', 'v2'] },
    { name: 'keep below 1 still keeps one', tags: ['v1', 'v2', 'v3'], current: null, keep: 0, kept: ['v3'], removed: ['v1', 'v2'] },
  ]
  for (const c of cases) {
    test(c.name, () => {
      const before = manifestWith(c.tags, c.current)
      const { manifest, removed } = applyRetention(before, 'web', c.keep)
      assert.deepEqual(tags(manifest), c.kept)
      assert.deepEqual(removed, c.removed.map((tag) => ({ app: 'web', tag })))
      assert.equal(manifest.apps.web?.current, c.current)
      assert.deepEqual(tags(before), c.tags, 'the input is not modified')
      assert.equal(manifest.serial, before.serial, 'retention alone does not bump the serial')
    })
  }

  test('an unknown app is a no-op', () => {
    const before = manifestWith(['v1'], 'v1')
    const { manifest, removed } = applyRetention(before, 'api', 1)
    assert.equal(manifest, before)
    assert.deepEqual(removed, [])
  })

  test('only the named app is pruned', () => {
    const before: Manifest = {
      ...manifestWith(['v1', 'v2'], 'v2'),
      apps: {
        web: { current: 'v2', releases: [release('v1'), release('v2')] },
        api: { current: 'v2', releases: [release('v1', 'a1', 'api'), release('v2', 'a2', 'api')] },
      },
    }
    const { manifest } = applyRetention(before, 'web', 1)
    assert.deepEqual(tags(manifest, 'web'), ['v2'])
    assert.deepEqual(tags(manifest, 'api'), ['v1', 'v2'])
  })
})
