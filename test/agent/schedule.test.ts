import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseCron, scheduleCron } from '../../src/agent/schedule.ts'

/** Local time, as the schedule works in local time. */
const at = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) => new Date(y, mo - 1, d, h, mi, s)

/** The next `n` matches after `from`. */
function matches(expr: string, from: Date, n: number): Date[] {
  const schedule = parseCron(expr)
  const out: Date[] = []
  let t = from
  for (let i = 0; i < n; i++) out.push((t = schedule.next(t)))
  return out
}

test('six fields: seconds first; five fields run at second 0', () => {
  assert.deepEqual(matches('*/10 * * * * *', at(2026, 3, 1, 12, 0, 3), 3), [at(2026, 3, 1, 12, 0, 10), at(2026, 3, 1, 12, 0, 20), at(2026, 3, 1, 12, 0, 30)])
  assert.deepEqual(matches('*/5 * * * *', at(2026, 3, 1, 12, 3, 30), 2), [at(2026, 3, 1, 12, 5), at(2026, 3, 1, 12, 10)])
  assert.deepEqual(matches('* * * * * *', at(2026, 3, 1, 23, 59, 59), 1), [at(2026, 3, 2, 0, 0, 0)])
  // strictly after, from a time with milliseconds
  assert.deepEqual(matches('*/10 * * * * *', new Date(at(2026, 3, 1, 12, 0, 10).getTime() + 500), 1), [at(2026, 3, 1, 12, 0, 20)])
})

test('lists, ranges, steps, wrapping ranges and names', () => {
  assert.deepEqual(matches('0 0 9-17/4 * * *', at(2026, 3, 1, 10), 3), [at(2026, 3, 1, 13), at(2026, 3, 1, 17), at(2026, 3, 2, 9)])
  assert.deepEqual(matches('0 15,45 * * * *', at(2026, 3, 1, 10, 20), 2), [at(2026, 3, 1, 10, 45), at(2026, 3, 1, 11, 15)])
  assert.deepEqual(matches('0 5/20 * * * *', at(2026, 3, 1, 10, 0), 3), [at(2026, 3, 1, 10, 5), at(2026, 3, 1, 10, 25), at(2026, 3, 1, 10, 45)])
  // 2026-03-06 is a Friday: fri-mon wraps over the weekend
  assert.deepEqual(matches('0 0 * * fri-mon', at(2026, 3, 5, 1), 4), [at(2026, 3, 6), at(2026, 3, 7), at(2026, 3, 8), at(2026, 3, 9)])
  assert.deepEqual(matches('0 0 1 NOV-feb *', at(2026, 3, 1, 1), 2), [at(2026, 11, 1), at(2026, 12, 1)])
  assert.deepEqual(matches('0 12 * * Sunday', at(2026, 3, 1, 13), 1), [at(2026, 3, 8, 12)])
  // 7 is Sunday too
  assert.deepEqual(matches('0 12 * * 7', at(2026, 3, 1, 13), 1), [at(2026, 3, 8, 12)])
  assert.deepEqual(matches('0 0 ? * 1', at(2026, 3, 1), 1), [at(2026, 3, 2)])
})

test('day of month and day of week must both match, as in node-cron; nicknames', () => {
  // Fridays the 13th: March and November 2026
  assert.deepEqual(matches('0 0 13 * 5', at(2026, 3, 1), 2), [at(2026, 3, 13), at(2026, 11, 13)])
  assert.deepEqual(matches('@daily', at(2026, 3, 1, 5), 1), [at(2026, 3, 2)])
  assert.deepEqual(matches('@hourly', at(2026, 3, 1, 5, 1), 1), [at(2026, 3, 1, 6)])
  assert.deepEqual(matches('0 0 29 2 *', at(2026, 3, 1), 1), [at(2028, 2, 29)])
})

test('bad expressions are refused with the reason', () => {
  for (const [expr, reason] of [
    ['every minute', /2 fields, expected 5 or 6/],
    ['* * * *', /4 fields/],
    ['60 * * * * *', /second "60": 60 is out of range \(0-59\)/],
    ['* * 24 * * *', /hour "24"/],
    ['0 0 0 * *', /day of month "0": 0 is out of range/],
    ['0 0 * 13 *', /month "13"/],
    ['0 0 * * 8', /day of week "8"/],
    ['*/0 * * * * *', /step must be at least 1/],
    ['0 0 L * *', /L, W and # are not supported/],
    ['0 0 * * 5#2', /L, W and # are not supported/],
    ['0 0 * * funday', /not a number or name/],
    ['0 0 30 2 *', /never matches/],
  ] as const) {
    assert.throws(() => parseCron(expr), (err: Error) => reason.test(err.message), `${expr}: ${reason}`)
  }
})

test('scheduleCron ticks on matches, skips a tick while the previous one runs, and stops', async () => {
  let ticks = 0
  let release: () => void = () => {}
  const task = scheduleCron(parseCron('* * * * * *'), () => {
    ticks++
    return new Promise<void>((r) => (release = r))
  })
  await new Promise((r) => setTimeout(r, 2600))
  // the first tick is still running: later ones were skipped
  assert.equal(ticks, 1)
  release()
  await new Promise((r) => setTimeout(r, 1100))
  assert.equal(ticks, 2)
  task.stop()
  release()
  await new Promise((r) => setTimeout(r, 1100))
  assert.equal(ticks, 2)
})
