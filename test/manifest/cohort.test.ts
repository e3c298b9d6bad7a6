import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { addPin, addRelease, applyRetention, promoteRollout, removePin, setCurrent, setRollout } from '../../src/manifest/changes.ts'
import { bucketOf, desiredRelease, desiredTag, willDeploy } from '../../src/manifest/cohort.ts'
import type { Manifest } from '../../src/manifest/manifest.ts'
import { manifestWith, release } from './fixtures.ts'

const now = new Date('2026-01-01T00:00:00Z')
const hosts = Array.from({ length: 2000 }, (_, i) => `host-${i}`)

function withRollout(rollout: NonNullable<Manifest['apps'][string]['rollout']>, pins?: Manifest['apps'][string]['pins']): Manifest {
  const m = manifestWith(['v1', 'v2', 'v3'], 'v1')
  return { ...m, apps: { web: { ...m.apps.web!, rollout, ...(pins ? { pins } : {}) } } }
}

describe('cohort decision', () => {
  test('buckets are stable and spread evenly', () => {
    assert.equal(bucketOf('web', 'host-1'), bucketOf('web', 'host-1'))
    assert.notEqual(bucketOf('web', 'host-1'), bucketOf('api', 'host-1'))
    const under10 = hosts.filter((h) => bucketOf('web', h) < 10).length
    assert.ok(under10 > 140 && under10 < 260, `${under10} of 2000 hosts in a 10% cohort`)
  })

  test('a percentage rollout reaches about that share, and widening keeps the earlier hosts', () => {
    const at10 = new Set(hosts.filter((h) => desiredTag(withRollout({ tag: 'v2', percent: 10 }), 'web', { host: h, groups: [] })?.tag === 'v2'))
    const at50 = new Set(hosts.filter((h) => desiredTag(withRollout({ tag: 'v2', percent: 50 }), 'web', { host: h, groups: [] })?.tag === 'v2'))
    assert.ok(at10.size > 140 && at10.size < 260)
    assert.ok(at50.size > 900 && at50.size < 1100)
    for (const h of at10) assert.ok(at50.has(h), `${h} left the cohort when it widened`)
  })

  test('0% reaches nobody, 100% everybody', () => {
    for (const h of hosts.slice(0, 200)) {
      assert.equal(desiredTag(withRollout({ tag: 'v2', percent: 0 }), 'web', { host: h, groups: [] })?.tag, 'v1')
      assert.equal(desiredTag(withRollout({ tag: 'v2', percent: 100 }), 'web', { host: h, groups: [] })?.tag, 'v2')
    }
  })

  test('precedence: a pin, then the rollout cohort (share or group), then current', () => {
    const m = withRollout({ tag: 'v2', groups: ['canary'] }, [{ host: 'pinned-host', tag: 'v3' }, { group: 'frozen', tag: 'v1' }])
    const cases: Array<[string, string[], string, string]> = [
      ['plain', [], 'v1', 'current'],
      ['canary-host', ['canary'], 'v2', 'rollout'],
      ['pinned-host', ['canary'], 'v3', 'pinned'],
      ['frozen-canary', ['canary', 'frozen'], 'v1', 'pinned'],
    ]
    for (const [host, groups, tag, reason] of cases) assert.deepEqual(desiredTag(m, 'web', { host, groups }), { tag, reason }, host)
    assert.equal(desiredRelease(m, 'web', { host: 'canary-host', groups: ['canary'] })?.tag, 'v2')
    assert.equal(desiredTag(m, 'other', { host: 'x', groups: [] }), undefined)
  })
})

describe('rollout and pin changes', () => {
  test('publishing as a rollout keeps current; promote makes it current and ends the rollout', () => {
    const m = addRelease(manifestWith(['v1'], 'v1'), 'web', release('v2'), { activate: true, keep: 5, now, rollout: { percent: 10 } }).manifest
    assert.equal(m.apps.web?.current, 'v1')
    assert.deepEqual(m.apps.web?.rollout, { tag: 'v2', percent: 10 })
    const promoted = promoteRollout(m, 'web', now)!
    assert.equal(promoted.apps.web?.current, 'v2')
    assert.equal(promoted.apps.web?.rollout, undefined)
    assert.equal(promoted.serial, m.serial + 1)
    assert.equal(promoteRollout(promoted, 'web', now), undefined)
  })

  test('a rollback ends a rollout; publishing a new current ends it too', () => {
    const m = setRollout(manifestWith(['v1', 'v2'], 'v1'), 'web', { tag: 'v2', percent: 5 }, now)
    assert.equal(setCurrent(m, 'web', 'v1', now).apps.web?.rollout, undefined)
    assert.equal(addRelease(m, 'web', release('v3'), { activate: true, keep: 5, now }).manifest.apps.web?.rollout, undefined)
  })

  test('pins replace a pin of the same host or group, and unpin removes it', () => {
    let m = addPin(manifestWith(['v1', 'v2'], 'v2'), 'web', { host: 'h1', tag: 'v1' }, now)
    m = addPin(m, 'web', { host: 'h1', tag: 'v2' }, now)
    m = addPin(m, 'web', { group: 'g', tag: 'v1' }, now)
    assert.deepEqual(m.apps.web?.pins, [{ host: 'h1', tag: 'v2' }, { group: 'g', tag: 'v1' }])
    m = removePin(m, 'web', { host: 'h1' }, now)!
    assert.deepEqual(m.apps.web?.pins, [{ group: 'g', tag: 'v1' }])
    assert.equal(removePin(m, 'web', { host: 'h1' }, now), undefined)
    assert.equal(removePin(m, 'web', { group: 'g' }, now)!.apps.web?.pins, undefined)
  })

  test('retention keeps releases a rollout or a pin uses, however old', () => {
    let m = addPin(manifestWith(['v1', 'v2', 'v3'], 'v3'), 'web', { group: 'frozen', tag: 'v1' }, now)
    m = setRollout(m, 'web', { tag: 'v2', percent: 1 }, now)
    const { manifest, removed } = applyRetention(addRelease(m, 'web', release('v4'), { activate: false, keep: 1, now }).manifest, 'web', 1)
    assert.deepEqual(manifest.apps.web?.releases.map((r) => r.tag), ['v1', 'v2', 'v3', 'v4'])
    assert.deepEqual(removed, [])
    const unpinned = removePin(manifest, 'web', { group: 'frozen' }, now)!
    assert.deepEqual(applyRetention(unpinned, 'web', 1).removed, [{ app: 'web', tag: 'v1' }])
  })
})

describe('willDeploy: is a release being uploaded for this host?', () => {
  const plain = manifestWith(['v1'], 'v1')
  const me = { host: 'host-1', groups: ['blue'] }

  test('a release that becomes current: every host of the app, also with no manifest yet', () => {
    assert.equal(willDeploy(plain, { app: 'web' }, me), true)
    assert.equal(willDeploy(undefined, { app: 'web' }, me), true)
    assert.equal(willDeploy(plain, { app: 'new-app' }, me), true)
  })

  test('a release made current ends a rollout: its cohort deploys it too', () => {
    assert.equal(willDeploy(withRollout({ tag: 'v3', groups: ['blue'] }), { app: 'web' }, me), true)
  })

  test('a pinned host stays where it is', () => {
    assert.equal(willDeploy(withRollout({ tag: 'v3', percent: 0 }, [{ host: 'host-1', tag: 'v1' }]), { app: 'web' }, me), false)
    assert.equal(willDeploy(withRollout({ tag: 'v3', percent: 0 }, [{ group: 'blue', tag: 'v1' }]), { app: 'web' }, me), false)
    assert.equal(willDeploy(withRollout({ tag: 'v3', percent: 0 }, [{ group: 'green', tag: 'v1' }]), { app: 'web' }, me), true)
  })

  test('a rollout takes its cohort only: the same hosts as desiredTag once it is in the manifest', () => {
    assert.equal(willDeploy(plain, { app: 'web', rollout: { groups: ['blue'] } }, me), true)
    assert.equal(willDeploy(plain, { app: 'web', rollout: { groups: ['green'] } }, me), false)
    const cohort = hosts.filter((h) => willDeploy(plain, { app: 'web', rollout: { percent: 10 } }, { host: h, groups: [] }))
    const expected = hosts.filter((h) => desiredTag(withRollout({ tag: 'v2', percent: 10 }), 'web', { host: h, groups: [] })?.tag === 'v2')
    assert.deepEqual(cohort, expected)
    assert.ok(cohort.length > 140 && cohort.length < 260)
  })
})
