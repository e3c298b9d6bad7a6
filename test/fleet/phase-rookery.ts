import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { treeDigest } from '../helpers/trees.ts'
import type { FleetContext, PhaseResult } from './fleet.ts'
import { clientUsage, exitedError, getJsonInNs, NsProcess, runInNs, waitFor } from './procs.ts'

const digestOf = async (dir: string) => createHash('sha256').update(JSON.stringify(await treeDigest(dir))).digest('hex')
/** Extra Node flags for every agent, e.g. FLEET_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile them. */
const NODE_ARGS = (process.env.FLEET_NODE_ARGS ?? '').split(' ').filter(Boolean)
const seconds = (ms: number) => Math.round(ms) / 1000

interface Options {
  token: string
  app: string
  tag: string
  /** false: only publish (the baselines need the release on the server), no agents. */
  withAgents: boolean
}

/** The rookery phase's `extra.origin_every_piece_out`: from the server's "origin sent every piece once" line. */
export interface EveryPieceOut {
  /** From the publish. */
  seconds: number
  /** What the origin had uploaded by then. */
  uploaded: number | null
}

/**
 * Starts one `rookery agent` per host (they poll an empty manifest), publishes with `rookery publish`
 * from the server's namespace, and reads from each agent's JSON log when it switched `current`. Time 0
 * is the release's `created_at` in the manifest: the server sets it just before the manifest is written,
 * so no agent can have seen the release earlier.
 */
export async function runRookery(ctx: FleetContext, o: Options): Promise<PhaseResult | undefined> {
  const { opts, workDir } = ctx
  const agents: NsProcess[] = []
  for (const host of o.withAgents ? ctx.agents : []) {
    const dir = join(workDir, host.ns)
    await mkdir(dir, { recursive: true })
    const config = join(dir, 'agent.yaml')
    await writeFile(
      config,
      stringify({
        server: ctx.serverUrl,
        state_dir: join(dir, 'state'),
        schedule: opts.schedule,
        // Longer than any phase: every host keeps seeding until the phase ends and the agents are stopped.
        seed_window: '30m',
        torrent_port: 6881,
        host_id: host.ns,
        ...opts.agentConfig,
        apps: [{ name: o.app, deploy_to: join(dir, 'srv', o.app) }],
      }),
    )
    const [node, ...rest] = ctx.launcher.agentCommand
    agents.push(new NsProcess(host.ns, [node!, ...NODE_ARGS, ...rest, 'agent', '--config', config], join(dir, 'agent.log'), ctx.launcher.env.agent))
  }
  await waitFor('every agent to start', async () => {
    const dead = agents.find((a) => !a.running)
    if (dead) throw exitedError(dead, 'rookery agent')
    const lines = await Promise.all(agents.map((a) => a.jsonLines()))
    return lines.every((l) => l.some((x) => x.msg === 'agent started'))
  }, 60_000)
  // Let every agent finish its first poll of the empty manifest, so the publish finds an idle fleet.
  await new Promise((r) => setTimeout(r, 1500))

  const sentBefore = await ctx.serverSent()
  const cpuBefore = agents.map((a) => a.usage())
  const serverCpuBefore = ctx.serverCpuSeconds()
  const publishStarted = Date.now()
  const pub = await runInNs(ctx.server.ns, [...ctx.launcher.command, 'publish', join(workDir, 'source'), '--app', o.app, '--tag', o.tag, '--server', ctx.serverUrl], 600_000, { ROOKERY_TOKEN: o.token })
  if (pub.code !== 0) throw new Error(`rookery publish failed (exit ${pub.code}): ${pub.stderr.trim()}`)
  const publishSeconds = seconds(Date.now() - publishStarted)
  const manifest = await getJsonInNs<{ apps: Record<string, { releases: Array<{ tag: string; size: number; sha256: string; infohash: string; created_at: string; tarball_url: string }> }> }>(ctx.server.ns, `${ctx.serverUrl}/manifest`)
  const entry = manifest.apps[o.app]?.releases.find((r) => r.tag === o.tag)
  if (!entry) throw new Error(`the manifest at ${ctx.serverUrl}/manifest has no ${o.app} ${o.tag} after a successful publish`)
  ctx.release = {
    app: o.app,
    tag: o.tag,
    size: entry.size,
    sha256: entry.sha256,
    infohash: entry.infohash,
    publish_seconds: publishSeconds,
    torrentFile: join(workDir, 'server', 'releases', o.app, o.tag, `${o.app}-${o.tag}.torrent`),
    tarballUrl: entry.tarball_url,
    sourceDir: join(workDir, 'source'),
  }
  opts.log(`# published ${entry.size} bytes in ${publishSeconds} s (pack, hash, upload over loopback in the server's namespace)`)
  if (!o.withAgents) return undefined

  const t0 = Date.parse(entry.created_at)
  const bound = (entry.size * 8) / (opts.rateMbit * 1e6)
  const deadline = t0 + (1.5 * opts.hosts * bound + 60) * 1000
  const switched: Array<number | null> = agents.map(() => null)
  for (;;) {
    await Promise.all(
      agents.map(async (a, i) => {
        a.usage() // keeps the last CPU figure should the agent exit
        if (switched[i] !== null) return
        const line = (await a.jsonLines()).find((l) => l.msg === 'current switched' && l.tag === o.tag)
        if (line) switched[i] = Date.parse(line.time as string)
      }),
    )
    if (switched.every((s) => s !== null) || agents.every((a, i) => switched[i] !== null || !a.running) || Date.now() > deadline) break
    await new Promise((r) => setTimeout(r, 500))
  }
  const end = Math.max(...switched.map((s) => s ?? Date.now()))
  const clients = clientUsage(agents, cpuBefore)
  const sentAfter = await ctx.serverSent()
  const serverCpu = ctx.serverCpuSeconds() - serverCpuBefore

  // Byte-identical activation: every host's current/ tree against the published directory.
  const expected = await digestOf(ctx.release.sourceDir)
  const digests = await Promise.all(ctx.agents.map((h, i) => (switched[i] === null ? null : digestOf(join(workDir, h.ns, 'srv', o.app, 'current')))))

  await Promise.all(agents.map((a) => a.stop(15_000)))
  const logs = await Promise.all(agents.map((a) => a.jsonLines()))
  const pick = (lines: Array<Record<string, unknown>>, msg: string) => lines.find((l) => l.msg === msg && l.tag === o.tag)
  const everyPieceOut = (await ctx.serverLog()).find((l) => l.msg === 'origin sent every piece once' && l.tag === o.tag)
  const missing = agents.map((_, i) => i).filter((i) => switched[i] === null)
  if (missing.length > 0) opts.log(`# rookery: ${missing.length} hosts did not switch: ${missing.map((i) => ctx.agents[i]!.ns).join(' ')}`)
  return {
    name: 'rookery',
    label: `rookery (${opts.schedule === '* * * * * *' ? 'polls 1/s' : opts.schedule})`,
    seconds: switched.map((s) => (s === null ? null : seconds(s - t0))),
    wall_seconds: seconds(end - t0),
    cpu: ctx.cpu.summary(t0, end),
    clients,
    server_cpu_seconds: Math.round(serverCpu * 10) / 10,
    server_sent_bytes: sentAfter - sentBefore,
    identical: digests.every((d) => d === null || d === expected) && digests.some((d) => d !== null),
    extra: {
      started_download_seconds: logs.map((l) => { const x = pick(l, 'download started'); return x ? seconds(Date.parse(x.time as string) - t0) : null }),
      downloaded_seconds: logs.map((l) => { const x = pick(l, 'download complete'); return x ? seconds(Date.parse(x.time as string) - t0) : null }),
      from_peers: logs.map((l) => (pick(l, 'download complete')?.from_peers as number | undefined) ?? null),
      from_webseed: logs.map((l) => (pick(l, 'download complete')?.from_webseed as number | undefined) ?? null),
      uploaded: logs.map((l) => (pick(l, 'seed window over')?.uploaded as number | undefined) ?? null),
      deploy_failures: logs.map((l) => l.filter((x) => x.msg === 'deploy failed').length),
      digests_identical: digests.map((d) => d === expected),
      // Hosts that started their swarm process when the long-poll said the upload had begun (before t0).
      early_swarm_start: logs.map((l) => l.some((x) => x.msg === 'a release is being published: starting the swarm process' && x.app === o.app)),
      // The table counts from the release entry; this is how long `rookery publish` ran before it.
      entry_after_publish_start_seconds: seconds(t0 - publishStarted),
      // When the origin's last first copy went out (its log): what comes after is the hosts' relay tail.
      origin_every_piece_out: (everyPieceOut ? { seconds: seconds(Date.parse(everyPieceOut.time as string) - t0), uploaded: everyPieceOut.uploaded as number | null } : null) satisfies EveryPieceOut | null,
    },
  }
}
