import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Daemon, runRookery, waitFor } from '../helpers/processes.ts'
import { deployDir, publishRelease, startServerProcess, writeAgentConfig } from '../helpers/fleet.ts'

// A canary release reaches only its cohort, then everyone after promotion; a pin holds one host back;
// `rookery status --json` is checked at each step, and a host that stops reporting turns stale.

const TOKEN = 'rollout-token-0123456789abcdef'
const HOSTS = ['h0', 'h1', 'h2', 'h3']
let root: string
let url: string
let server: Daemon
const agents = new Map<string, Daemon>()
let source: string

interface Status {
  apps: Record<string, {
    current: string
    complete: boolean
    rollout: { tag: string; groups?: string[] } | null
    pins: Array<{ host?: string; tag: string }>
    counts: Record<string, number>
    hosts: Array<{ host: string; state: string; desired: string; current: string; why: string }>
  }>
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'rookery-rollout-'))
  ;({ server, url } = await startServerProcess(root, TOKEN, ['stale_after: 4s']))
  source = join(root, 'build')
  await mkdir(source)
})

after(async () => {
  await Promise.all([...agents.values()].map((a) => a.stop()))
  await server?.stop()
  await rm(root, { recursive: true, force: true })
})

const tagOf = (host: string) => readlink(join(deployDir(root, host), 'current')).then((t) => t.split('/').at(-1), () => undefined)
const tags = () => Promise.all(HOSTS.map(tagOf))
const rookery = (...args: string[]) => runRookery([...args, '--server', url], { ROOKERY_TOKEN: TOKEN })

async function status(): Promise<{ code: number | null; status: Status }> {
  const r = await rookery('status', '--app', 'web', '--json')
  return { code: r.code, status: JSON.parse(r.stdout) as Status }
}

async function release(tag: string, ...flags: string[]) {
  await writeFile(join(source, 'index.html'), tag)
  return publishRelease(url, TOKEN, source, tag, flags)
}

/** Waits until the server's status for web is complete with the hosts on these tags. */
async function settled(expected: Record<string, string>) {
  return waitFor(`status ${JSON.stringify(expected)}`, async () => {
    const { code, status: s } = await status()
    const web = s.apps.web
    const ok = code === 0 && web?.complete && web.hosts.length === HOSTS.length && web.hosts.every((h) => h.state === 'activated' && h.current === expected[h.host])
    return ok ? web : undefined
  }, 60_000, 300)
}

test('canary to a group, promote, pin and unpin, stale hosts: followed by the agents and by rookery status', { timeout: 240_000 }, async () => {
  await release('v1')
  for (const host of HOSTS) {
    const config = await writeAgentConfig(root, host, url, [`host_id: ${host}`, 'report_interval: 1s', ...(host === 'h0' ? ['groups: [canary]', 'metrics_listen: 127.0.0.1:0'] : [])])
    agents.set(host, new Daemon(['agent', '--config', config], join(root, `${host}.log`)))
  }
  let web = await settled({ h0: 'v1', h1: 'v1', h2: 'v1', h3: 'v1' })
  assert.equal(web.counts.activated, 4)

  // Canary: only the canary group gets v2; current stays v1.
  const out = await release('v2', '--group', 'canary')
  assert.match(out, /current v1, rollout to canary/)
  web = await settled({ h0: 'v2', h1: 'v1', h2: 'v1', h3: 'v1' })
  assert.deepEqual(web.rollout, { tag: 'v2', groups: ['canary'] })
  assert.deepEqual(web.hosts.map((h) => [h.host, h.desired, h.why]), [['h0', 'v2', 'rollout'], ['h1', 'v1', 'current'], ['h2', 'v1', 'current'], ['h3', 'v1', 'current']])
  await new Promise((r) => setTimeout(r, 2000)) // a few more polls: the others must stay on v1
  assert.deepEqual(await tags(), ['v2', 'v1', 'v1', 'v1'])
  for (const host of ['h1', 'h2', 'h3']) {
    assert.ok(!(await agents.get(host)!.logLines()).some((l) => l.msg === 'download started' && l.tag === 'v2'), `${host} downloaded the canary`)
  }

  // Promote: everyone goes to v2. `status --watch` follows until no host is in progress, exit 0.
  const promoted = await rookery('promote', '--app', 'web')
  assert.equal(promoted.code, 0, promoted.stderr)
  const watch = await runRookery(['status', '--app', 'web', '--watch', '--server', url], {}, 60_000)
  assert.equal(watch.code, 0, watch.stderr)
  assert.match(watch.stdout, /4 activated, 0 in progress, 0 failed, 0 stale - complete/)
  web = await settled({ h0: 'v2', h1: 'v2', h2: 'v2', h3: 'v2' })
  assert.equal(web.current, 'v2')
  assert.equal(web.rollout, null)

  // Pin h3 back to v1 (pause it), then release it.
  const pinned = await rookery('pin', '--app', 'web', '--host', 'h3', '--tag', 'v1')
  assert.equal(pinned.code, 0, pinned.stderr)
  assert.match(pinned.stdout, /pinned: h3->v1/)
  web = await settled({ h0: 'v2', h1: 'v2', h2: 'v2', h3: 'v1' })
  assert.equal(web.hosts.find((h) => h.host === 'h3')?.why, 'pinned')
  assert.equal((await rookery('unpin', '--app', 'web', '--host', 'h3')).code, 0)
  await settled({ h0: 'v2', h1: 'v2', h2: 'v2', h3: 'v2' })

  // Metrics: the canary agent's listener and the server's.
  const metricsLine = (await agents.get('h0')!.logLines()).find((l) => l.msg === 'metrics listening')
  const agentMetrics = await (await fetch(`http://${String(metricsLine?.metrics)}/metrics`)).text()
  assert.match(agentMetrics, /rookery_agent_current_release\{app="web",tag="v2"\} 1/)
  assert.match(agentMetrics, /rookery_agent_download_bytes_total\{app="web",source="(peer|webseed)"\} [1-9]/)
  assert.match(agentMetrics, /rookery_agent_last_poll_timestamp_seconds \d/)
  const serverMetrics = await (await fetch(`${url}/metrics`)).text()
  assert.match(serverMetrics, /rookery_hosts\{app="web",state="activated"\} 4/)
  assert.match(serverMetrics, /rookery_publishes_total\{app="web"\} 2/)
  assert.match(serverMetrics, /rookery_manifest_requests_total\{status="304"\} [1-9]/)

  // A host that stops reporting becomes stale; the rollout still counts as complete.
  assert.equal(await agents.get('h2')!.stop(), 0)
  agents.delete('h2')
  const stale = await waitFor('h2 stale', async () => {
    const { status: s } = await status()
    return s.apps.web?.hosts.find((h) => h.host === 'h2' && h.state === 'stale') ? s : undefined
  }, 20_000, 500)
  assert.equal(stale.apps.web?.counts.stale, 1)
  const human = await rookery('status', '--app', 'web')
  assert.equal(human.code, 0, human.stderr)
  assert.match(human.stdout, /h2 +stale +v2 -> v2/)
})
