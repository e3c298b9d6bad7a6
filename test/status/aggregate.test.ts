import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { aggregateStatus, type StoredReport } from '../../src/status/aggregate.ts'
import type { Manifest } from '../../src/manifest/manifest.ts'
import { ReportStore } from '../../src/server/reports.ts'
import { manifestWith } from '../manifest/fixtures.ts'

const NOW = 1_000_000_000
const STALE = 60_000

function report(host: string, fields: Partial<StoredReport>): StoredReport {
  return { host, groups: [], app: 'web', tag: 'v2', phase: 'activated', current: 'v2', received_at: NOW - 1000, ...fields }
}

describe('aggregateStatus', () => {
  const manifest: Manifest = manifestWith(['v1', 'v2'], 'v2')

  test('classifies hosts: activated, in progress, failed, stale', () => {
    const status = aggregateStatus(manifest, [
      report('a', {}),
      report('b', { phase: 'downloading', current: 'v1', progress: { done: 5, total: 10 } }),
      report('c', { phase: 'hook_failed', current: 'v1', error: 'post_install exited 1', hook_tail: ['boom'] }),
      report('d', { received_at: NOW - STALE - 1 }),
      report('e', { phase: 'failed', tag: 'v1', current: 'v1' }), // failed an older tag: still on its way to v2
      report('f', { phase: 'idle', current: 'v2' }),
    ], NOW, STALE)
    const web = status.apps.web!
    assert.deepEqual(web.counts, { activated: 2, in_progress: 2, failed: 1, stale: 1 })
    assert.deepEqual(web.tags, { v2: { activated: 2, in_progress: 2, failed: 1, stale: 1 } })
    assert.equal(web.complete, false)
    assert.deepEqual(web.hosts.map((h) => [h.host, h.state]), [['a', 'activated'], ['b', 'in_progress'], ['c', 'failed'], ['d', 'stale'], ['e', 'in_progress'], ['f', 'activated']])
    assert.deepEqual(web.hosts[2]!.hook_tail, ['boom'])
    assert.deepEqual(web.hosts[1]!.progress, { done: 5, total: 10 })
  })

  test('complete when every fresh host runs its desired release (stale ones do not block)', () => {
    const status = aggregateStatus(manifest, [report('a', {}), report('d', { received_at: NOW - STALE - 1, current: 'v1' })], NOW, STALE)
    assert.equal(status.apps.web!.complete, true)
  })

  test('judges each host against its own cohort', () => {
    const canary: Manifest = { ...manifest, apps: { web: { ...manifest.apps.web!, current: 'v1', rollout: { tag: 'v2', groups: ['canary'] } } } }
    const status = aggregateStatus(canary, [
      report('c1', { groups: ['canary'] }),
      report('p1', { current: 'v1', tag: 'v1' }),
      report('p2', { current: 'v2' }), // not in the cohort, but on v2: must go back to v1
    ], NOW, STALE)
    const web = status.apps.web!
    assert.deepEqual(web.hosts.map((h) => [h.host, h.desired, h.why, h.state]), [
      ['c1', 'v2', 'rollout', 'activated'],
      ['p1', 'v1', 'current', 'activated'],
      ['p2', 'v1', 'current', 'in_progress'],
    ])
    assert.deepEqual(web.rollout, { tag: 'v2', groups: ['canary'] })
  })

  test('lists apps of the manifest with no reports, and filters by app', () => {
    const status = aggregateStatus(manifest, [report('x', { app: 'api' })], NOW, STALE, 'web')
    assert.deepEqual(Object.keys(status.apps), ['web'])
    assert.equal(status.apps.web!.hosts.length, 0)
  })
})

describe('ReportStore', () => {
  const base = { groups: [], app: 'web', tag: 'v1', phase: 'activated' as const, current: 'v1' }

  test('keeps the latest report per host and app', () => {
    const store = new ReportStore({ maxHosts: 10, forgetAfterMs: 60_000 })
    store.accept({ ...base, host: 'h', phase: 'downloading' }, 1)
    store.accept({ ...base, host: 'h' }, 2)
    store.accept({ ...base, host: 'h', app: 'api' }, 3)
    const reports = [...store.reports(10)]
    assert.deepEqual(reports.map((r) => [r.app, r.phase, r.received_at]), [['web', 'activated', 2], ['api', 'activated', 3]])
  })

  test('forgets silent hosts and holds at most maxHosts, dropping the longest silent', () => {
    const store = new ReportStore({ maxHosts: 3, forgetAfterMs: 100 })
    for (const [i, host] of ['a', 'b', 'c', 'd'].entries()) store.accept({ ...base, host }, 1000 + i)
    store.accept({ ...base, host: 'b' }, 1010)
    assert.deepEqual([...store.reports(1011)].map((r) => r.host).sort(), ['b', 'c', 'd'])
    assert.deepEqual([...store.reports(1105)].map((r) => r.host), ['b'])
    assert.equal(store.hosts, 1)
  })
})
