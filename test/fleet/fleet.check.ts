// `npm run test:fleet` (root, iproute2; installs aria2, python3-libtorrent and gnuplot with apt-get if
// missing): the fleet test bed in small, as a test. Named *.check.ts so `npm test` (no root) skips it.
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { test } from 'node:test'
import { runFleet, PHASES } from './fleet.ts'
import { namespacesWithPrefix } from './netns.ts'
import type { EveryPieceOut } from './phase-rookery.ts'
import { table, writeReport } from './report.ts'

const HOSTS = 6
const RATE_MBIT = 50
const SIZE = 8 * 2 ** 20
const PREFIX = 'rkfc'

test(`${HOSTS} namespaced hosts activate identical files, mostly from each other; the baselines complete`, { timeout: 240_000 }, async () => {
  const result = await runFleet({
    hosts: HOSTS,
    rateMbit: RATE_MBIT,
    sizeBytes: SIZE,
    delayMs: 0,
    queueMs: 50,
    mtu: 1500,
    phases: [...PHASES],
    schedule: '* * * * * *',
    // The origin may send at half the link rate (the documented way to make hosts trade), so whether
    // hosts fed each other does not hinge on a race this small a release could go either way.
    serverConfig: { origin_upload_limit: Math.round((RATE_MBIT * 1e6) / 8 / 2), announce_interval: '5s' },
    agentConfig: {},
    prefix: PREFIX,
    subnet: '10.77.0',
    // The bundle on the packaged runtime, as the .deb/.rpm run it.
    launch: 'package',
    keep: false,
    installTools: true,
    log: (line) => console.log(line),
  })
  const printed = table(result)
  console.log(printed)
  await mkdir('test-output/fleet-check', { recursive: true })
  await writeReport(result, 'test-output/fleet-check', printed)

  assert.deepEqual(namespacesWithPrefix(PREFIX), [], 'the test network was not torn down')
  const [rookery, ...baselines] = result.phases
  assert.equal(rookery?.name, 'rookery')
  const late = result.phases.flatMap((p) => p.seconds.flatMap((s, i) => (s === null ? [`${p.name}: host ${i + 1}`] : [])))
  assert.deepEqual(late, [], 'hosts that never got the release (see the logs with --keep in npm run bench:fleet)')
  assert.deepEqual(rookery.extra.digests_identical, rookery.seconds.map(() => true), 'a host activated files that differ from the published directory')
  for (const b of baselines) {
    assert.ok(b.identical, `${b.name}: a host downloaded a tarball with another sha256`)
    // A standard client must be able to announce to rookery's tracker, or its "swarm" is only the webseed.
    const failed = ((b.extra.tracker_errors as number[] | undefined) ?? []).filter((n) => n > 0).length
    assert.equal(failed, 0, `${b.name}: announces to the rookery tracker failed on ${failed} hosts: ${String(b.extra.tracker_error_sample)}`)
  }

  // The origin seeder logs when every piece has gone out once (the hosts could then finish without it).
  const out = rookery.extra.origin_every_piece_out as EveryPieceOut | null
  assert.ok(out, 'the server never logged "origin sent every piece once"')
  assert.ok(out.uploaded !== null && out.uploaded > 0 && out.uploaded <= rookery.server_sent_bytes, `origin bytes at that point: ${out.uploaded}`)

  // The long-poll told every host that the release was uploading, and each started its swarm process then.
  assert.deepEqual(rookery.extra.early_swarm_start, rookery.seconds.map(() => true), 'hosts that did not start their swarm process during the upload')

  // Hosts received HOSTS x size in all. If the server (origin seeder + webseed) sent less than half of
  // that, peers sent the rest, so at least one host got most of its bytes from peers.
  const received = HOSTS * result.release.size
  assert.ok(rookery.server_sent_bytes < received / 2, `the server sent ${rookery.server_sent_bytes} of the ${received} bytes hosts received: peers did not carry most of the load`)
  // The same from the other side: what the agents say they uploaded to each other.
  const uploaded = (rookery.extra.uploaded as Array<number | null>).reduce<number>((a, u) => a + (u ?? 0), 0)
  assert.ok(uploaded > received / 2, `agents uploaded ${uploaded} bytes to each other, less than half of the ${received} received`)
})
