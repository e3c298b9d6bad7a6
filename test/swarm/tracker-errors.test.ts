import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

const FIXTURE = fileURLToPath(new URL('./fixtures/stalled-tracker.ts', import.meta.url))

test('a tracker that stalls its answer body gives a warning and a clean stop, not a crash (src/swarm/tracker-errors.ts)', async () => {
  const child = spawn(process.execPath, [FIXTURE], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d))
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  clearTimeout(timer)
  assert.equal(code, 0, `the process ended on the stalled tracker:\n${stderr}`)
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { requests: number; warnings: string[] }
  assert.ok(result.requests >= 2, `expected the timed-out announce and the one in flight at destroy: ${stdout}`)
  assert.ok(result.warnings.some((w) => /abort/i.test(w)), `expected the timed-out announce as a warning: ${stdout}`)
})
