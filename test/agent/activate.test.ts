import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { lstat, mkdir, mkdtemp, readlink, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, test } from 'node:test'
import { pino } from 'pino'
import type { AgentConfig, AppConfig } from '../../src/agent/config.ts'
import { activateRelease } from '../../src/agent/deploy.ts'
import { AppLayout } from '../../src/agent/layout.ts'
import { noMetrics } from '../../src/agent/metrics.ts'
import type { ReportFields } from '../../src/agent/reporter.ts'
import { StateFile } from '../../src/agent/state.ts'

// An old release that cannot be removed: a file in it made immutable (chattr +i), which stops even root.
// That needs root and a filesystem with the attribute (ext4, xfs, btrfs; not tmpfs).

let tmp = ''
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rookery-activate-'))
})
after(() => rm(tmp, { recursive: true, force: true }))

const exists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false)

test('an old release that cannot be removed does not fail the activation: it is reported, logged and kept', { timeout: 30_000 }, async (t) => {
  const deployTo = join(tmp, 'srv', 'web')
  const layout = new AppLayout(deployTo)
  await layout.prepare()
  const tags = ['v1', 'v2', 'v3', 'v4']
  for (const [i, tag] of tags.entries()) {
    await mkdir(layout.releaseDir(tag))
    await writeFile(join(layout.releaseDir(tag), 'VERSION'), tag)
    const at = new Date(Date.parse('2024-01-01T00:00:00Z') + i * 60_000)
    await utimes(layout.releaseDir(tag), at, at)
  }
  const stuck = join(layout.releaseDir('v1'), 'VERSION')
  const chattr = spawnSync('chattr', ['+i', stuck], { encoding: 'utf8' })
  if (chattr.status !== 0) return t.skip(`cannot make a file immutable here: ${chattr.error?.message ?? chattr.stderr.trim()}`)
  try {
    await layout.switchCurrent('v3')
    const state = new StateFile(join(tmp, 'state'))
    await state.load()
    const lines: Array<Record<string, unknown>> = []
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
        done()
      },
    })
    const reports: ReportFields[] = []
    const app = { name: 'web', deploy_to: deployTo, keep_releases: 1, hook_timeout: 60_000 } as AppConfig
    await activateRelease({
      config: {} as AgentConfig,
      state,
      log: pino(sink),
      seedWindowMs: 0,
      signal: new AbortController().signal,
      report: (_app, fields) => reports.push(fields),
      metrics: noMetrics,
    }, app, 'v4')

    assert.equal(await readlink(layout.currentLink), layout.releaseDir('v4'))
    assert.deepEqual(reports.map((r) => r.phase), ['activated'])
    assert.equal(state.app('web').previous, 'v3')
    // keep 1, never current (v4) nor previous (v3): v2 goes, v1 cannot and stays, and says so
    assert.equal(await exists(layout.releaseDir('v2')), false)
    assert.equal(await exists(layout.releaseDir('v1')), true)
    const failed = lines.find((l) => l.msg === 'removing an old release failed; the next deploy tries again')
    assert.equal(failed?.release, 'v1')
    assert.match(String(failed?.err), /releases\/v1/, 'the error names the path it failed on')
    assert.deepEqual(lines.find((l) => l.msg === 'old releases removed')?.pruned, ['v2'])
    assert.ok(lines.findIndex((l) => l.msg === 'release activated') < lines.findIndex((l) => l.msg === 'old releases removed'))
  } finally {
    spawnSync('chattr', ['-i', stuck])
  }
})
