import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

// The package's bundle makes node-cron read the local time from Date's getters instead of Intl
// (src/agent/cron-local-time.ts, patched in by scripts/package.ts). What node-cron matches against must
// not change: for each time zone, in its own process (node-cron caches its formatter), node-cron's own
// parts and ours agree at every checked instant, DST changes and half-hour offsets included.

const COMPARE = fileURLToPath(new URL('./fixtures/cron-parts-compare.mjs', import.meta.url))

for (const tz of ['UTC', 'Europe/Berlin', 'America/New_York', 'America/St_Johns', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham']) {
  test(`node-cron's date parts and the Date-based ones agree in ${tz}`, () => {
    const out = JSON.parse(execFileSync(process.execPath, [COMPARE], { env: { ...process.env, TZ: tz }, encoding: 'utf8' })) as { checked: number; count: number; mismatches: unknown[] }
    assert.ok(out.checked > 28_000, `only ${out.checked} instants checked`)
    assert.equal(out.count, 0, `mismatches in ${tz}: ${JSON.stringify(out.mismatches)}`)
  })
}
