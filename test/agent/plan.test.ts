import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { planApp, retryDelayMs } from '../../src/agent/plan.ts'
import type { Action, PlanInput } from '../../src/agent/plan.ts'
import type { Failure } from '../../src/agent/state.ts'
import { release } from '../manifest/fixtures.ts'

const NOW = new Date('2024-05-01T12:00:00.000Z')
const V2 = release('v2')
const V2_REPUBLISHED = release('v2', 'other bytes')

function failure(overrides: Partial<Failure>): Failure {
  return { sha256: V2.sha256, code: 'ROOKERY_TEST', reason: 'it broke', permanent: false, attempts: 2, at: '2024-05-01T11:59:00.000Z', ...overrides }
}

const inFuture = new Date(NOW.getTime() + 60_000).toISOString()
const inPast = new Date(NOW.getTime() - 1).toISOString()

describe('planApp', () => {
  const cases: Array<{ name: string; input: Partial<PlanInput>; kind: Action['kind']; reason?: RegExp }> = [
    { name: 'no desired release', input: { desired: undefined, current: 'v1' }, kind: 'none', reason: /no current release/ },
    { name: 'no desired release on a fresh host', input: { desired: undefined, current: null }, kind: 'none' },
    { name: 'already current', input: { current: 'v2', installed: new Set(['v1', 'v2']) }, kind: 'none', reason: /already on v2/ },
    {
      name: 'already current wins over a recorded failure',
      input: { current: 'v2', installed: new Set(['v2']), failures: { v2: failure({ permanent: true }) } },
      kind: 'none',
    },
    { name: 'not installed -> install', input: {}, kind: 'install' },
    { name: 'installed but not current -> activate', input: { installed: new Set(['v1', 'v2']) }, kind: 'activate' },
    {
      name: 'permanent failure for the same content -> skip',
      input: { failures: { v2: failure({ permanent: true, code: 'ROOKERY_CHECKSUM' }) } },
      kind: 'skip',
      reason: /v2 failed before \(ROOKERY_CHECKSUM: it broke\); not retried/,
    },
    {
      name: 'permanent failure also skips an installed release',
      input: { installed: new Set(['v2']), failures: { v2: failure({ permanent: true }) } },
      kind: 'skip',
    },
    {
      name: 'permanent failure with a retry_after in the past still skips',
      input: { failures: { v2: failure({ permanent: true, retry_after: inPast }) } },
      kind: 'skip',
    },
    {
      name: 'permanent failure for other content (tag republished) is ignored',
      input: { desired: V2_REPUBLISHED, failures: { v2: failure({ permanent: true }) } },
      kind: 'install',
    },
    {
      name: 'transient failure for other content is ignored',
      input: { desired: V2_REPUBLISHED, installed: new Set(['v2']), failures: { v2: failure({ retry_after: inFuture }) } },
      kind: 'activate',
    },
    {
      name: 'transient failure, retry_after in the future -> skip',
      input: { failures: { v2: failure({ retry_after: inFuture, attempts: 3 }) } },
      kind: 'skip',
      reason: new RegExp(`v2 failed 3 time\\(s\\); next try after ${inFuture.replace(/\./g, '\\.')}`),
    },
    {
      name: 'transient failure, retry_after in the past -> install',
      input: { failures: { v2: failure({ retry_after: inPast }) } },
      kind: 'install',
    },
    {
      name: 'transient failure, retry_after exactly now -> install',
      input: { failures: { v2: failure({ retry_after: NOW.toISOString() }) } },
      kind: 'install',
    },
    {
      name: 'transient failure, retry_after in the past, installed -> activate',
      input: { installed: new Set(['v2']), failures: { v2: failure({ retry_after: inPast }) } },
      kind: 'activate',
    },
    {
      name: 'transient failure without retry_after -> install',
      input: { failures: { v2: failure({}) } },
      kind: 'install',
    },
    {
      name: 'a failure of another tag does not matter',
      input: { failures: { v1: failure({ permanent: true }) } },
      kind: 'install',
    },
  ]
  for (const c of cases) {
    test(c.name, () => {
      const input: PlanInput = { desired: V2, current: 'v1', installed: new Set(['v1']), failures: {}, now: NOW, ...c.input }
      const action = planApp(input)
      assert.equal(action.kind, c.kind, JSON.stringify(action))
      if (action.kind === 'install' || action.kind === 'activate') assert.equal(action.release, input.desired)
      else if (c.reason) assert.match(action.reason, c.reason)
    })
  }
})

describe('retryDelayMs', () => {
  const cases: Array<[number, number]> = [
    [0, 15_000],
    [1, 15_000],
    [2, 30_000],
    [3, 60_000],
    [4, 120_000],
    [5, 240_000],
    [6, 480_000],
    [7, 600_000], // capped at 10 minutes
    [8, 600_000],
    [100, 600_000],
    [5000, 600_000], // 2 ** 4999 is Infinity: still capped
  ]
  for (const [attempts, ms] of cases) {
    test(`${attempts} attempt(s) -> ${ms} ms`, () => assert.equal(retryDelayMs(attempts), ms))
  }

  test('never decreases', () => {
    for (let a = 1; a < 50; a++) assert.ok(retryDelayMs(a + 1) >= retryDelayMs(a))
  })
})
