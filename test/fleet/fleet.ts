import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { CpuSampler, type CpuSummary } from './cpu.ts'
import { createNetwork, destroyNamespaces, lockPrefix, type Host } from './netns.ts'
import { runAria2, runHttp, runLibtorrent } from './phase-baselines.ts'
import { runRookery } from './phase-rookery.ts'
import { SOURCE_LAUNCHER, stagePackage, type RookeryLauncher } from '../../scripts/staged-package.ts'
import { exitedError, getJsonInNs, killAllSync, NsProcess, waitFor } from './procs.ts'
import { ensureTools } from './tools.ts'

export const PHASES = ['rookery', 'http', 'aria2', 'libtorrent'] as const
export type Phase = (typeof PHASES)[number]

export interface FleetOptions {
  /** Agent hosts; the server gets a namespace of its own on top. */
  hosts: number
  rateMbit: number
  sizeBytes: number
  /** One-way delay added to each direction of each link (needs netem in the kernel); 0: none. */
  delayMs: number
  queueMs: number
  /** Link MTU (netns.ts NetOptions.mtu). */
  mtu: number
  phases: Phase[]
  /** Agent poll schedule (node-cron, six fields): the bench polls every second. */
  schedule: string
  /** Extra keys merged into the generated server.yaml and agent.yaml (the values under test). */
  serverConfig: Record<string, unknown>
  agentConfig: Record<string, unknown>
  /** Namespace name prefix, distinct for the bench and the CI check so they never delete each other's. */
  prefix: string
  subnet: string
  /**
   * What runs server, publish and agents: 'package', the esbuild bundle on the packaged runtime as the
   * .deb/.rpm install it (staged, not installed), or 'source', the TypeScript sources on the pinned Node.
   */
  launch: 'package' | 'source'
  /** Keep the work directory (configs, logs, downloads) instead of deleting it. */
  keep: boolean
  installTools: boolean
  log: (line: string) => void
}

export interface HostProcessUsage {
  cpu_seconds_total: number
  cpu_seconds_max: number
  peak_rss_mib_max: number
}

export interface PhaseResult {
  name: Phase
  label: string
  /** Per agent host (h1..hN): seconds from the phase's start to completion; null when it did not finish. */
  seconds: Array<number | null>
  wall_seconds: number
  cpu: CpuSummary
  clients: HostProcessUsage
  /** CPU seconds the rookery server used during the phase (tracker, origin seeder, webseed). */
  server_cpu_seconds: number
  /** What the server sent during the phase: origin seeder uploads plus webseed/HTTP bytes. */
  server_sent_bytes: number
  /** Every host that finished has exactly the published bytes (tarball sha256, or extracted tree). */
  identical: boolean
  extra: Record<string, unknown>
}

export interface FleetResult {
  started_at: string
  machine: { cores: number; cpu_model: string; memory_gib: number; kernel_node: string; load_avg_at_start: number[] }
  /** The code measured: commit, and src/ files that differed from it (the bench runs the working tree). */
  rookery: { commit: string; src_modified: string[] }
  options: Omit<FleetOptions, 'log' | 'keep' | 'installTools' | 'prefix'>
  release: { app: string; tag: string; size: number; sha256: string; infohash: string; publish_seconds: number }
  /** F/C: the tarball's bits over the link rate; no host can finish sooner. */
  lower_bound_seconds: number
  phases: PhaseResult[]
  work_dir: string
}

/** What the phase runners share. */
export interface FleetContext {
  opts: FleetOptions
  server: Host
  agents: Host[]
  workDir: string
  serverUrl: string
  cpu: CpuSampler
  launcher: RookeryLauncher
  release: FleetResult['release'] & { torrentFile: string; tarballUrl: string; sourceDir: string }
  /** Server's origin seeder + webseed byte counters now. */
  serverSent(): Promise<number>
  serverCpuSeconds(): number
  /** The server's JSON log lines so far. */
  serverLog(): Promise<Array<Record<string, unknown>>>
}

const TOKEN = 'fleet-bench-token-0123456789'
const APP = 'fleet'
const TAG = 'v1'

function codeVersion(): FleetResult['rookery'] {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: new URL('../..', import.meta.url), encoding: 'utf8', timeout: 10_000 }).trim()
  try {
    return { commit: git('rev-parse', 'HEAD'), src_modified: git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).map((l) => l.trim()) }
  } catch {
    return { commit: 'unknown (not a git checkout)', src_modified: [] }
  }
}

/** Writes `size` bytes of random (incompressible) data as a few files, like a build output. */
async function makeRelease(dir: string, size: number): Promise<void> {
  await mkdir(join(dir, 'lib'), { recursive: true })
  const shares = [0.5, 0.25, 0.125]
  const sizes = shares.map((s) => Math.floor(size * s))
  sizes.push(size - sizes.reduce((a, b) => a + b, 0))
  for (const [i, bytes] of sizes.entries()) {
    const chunks: Buffer[] = []
    for (let left = bytes; left > 0; left -= 1 << 24) chunks.push(randomBytes(Math.min(left, 1 << 24)))
    await writeFile(join(dir, i === 0 ? 'app.bin' : `lib/part-${i}.bin`), Buffer.concat(chunks))
  }
}

export async function runFleet(opts: FleetOptions): Promise<FleetResult> {
  ensureTools(opts.installTools)
  const unlock = lockPrefix(opts.prefix)
  destroyNamespaces(opts.prefix) // leftovers of a run that was killed before its teardown
  const workDir = await mkdtemp(join(process.env.FLEET_TMPDIR ?? '/tmp', 'rookery-fleet-'))
  const cleanup = () => {
    killAllSync()
    destroyNamespaces(opts.prefix)
    unlock()
  }
  const onSignal = (signal: NodeJS.Signals) => {
    opts.log(`# ${signal}: tearing down the test network`)
    cleanup()
    process.exit(130)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('SIGHUP', onSignal)
  process.on('exit', cleanup)
  const cpu = new CpuSampler()
  let server: NsProcess | undefined
  try {
    const t = Date.now()
    const hosts = createNetwork({ prefix: opts.prefix, hosts: opts.hosts, rateMbit: opts.rateMbit, delayMs: opts.delayMs, queueMs: opts.queueMs, mtu: opts.mtu, subnet: opts.subnet })
    const [serverHost, ...agents] = hosts as [Host, ...Host[]]
    opts.log(`# network: ${agents.length} hosts + server on ${opts.subnet}.0/24, ${opts.rateMbit} Mbit/s each way, made in ${Date.now() - t} ms`)

    const launcher = opts.launch === 'package' ? await stagePackage(workDir) : SOURCE_LAUNCHER
    const serverUrl = `http://${serverHost.addr}:8998`
    const serverYaml = join(workDir, 'server.yaml')
    await writeFile(
      serverYaml,
      stringify({
        listen: `${serverHost.addr}:8998`,
        public_url: serverUrl,
        data_dir: join(workDir, 'server'),
        publish_tokens: [TOKEN],
        torrent_port: 6881,
        ...opts.serverConfig,
      }),
    )
    server = new NsProcess(serverHost.ns, [...launcher.command, 'server', '--config', serverYaml], join(workDir, 'server.log'), launcher.env.server)
    const srv = server
    await waitFor('the rookery server to start', async () => {
      if (!srv.running) throw exitedError(srv, 'rookery server')
      return (await srv.jsonLines()).some((l) => l.msg === 'server started')
    }, 30_000)

    const sourceDir = join(workDir, 'source')
    await makeRelease(sourceDir, opts.sizeBytes)
    const ctx: FleetContext = {
      opts,
      server: serverHost,
      agents,
      workDir,
      serverUrl,
      cpu,
      launcher,
      release: undefined as unknown as FleetContext['release'],
      serverCpuSeconds: () => srv.usage()?.cpuSeconds ?? 0,
      serverLog: () => srv.jsonLines(),
      serverSent: async () => {
        const stats = await getJsonInNs<{ webseed_bytes: number; origin_seeder_uploaded_bytes: number }>(serverHost.ns, `${serverUrl}/api/v1/stats`)
        return stats.webseed_bytes + stats.origin_seeder_uploaded_bytes
      },
    }
    const result: FleetResult = {
      started_at: new Date().toISOString(),
      machine: { cores: cpus().length, cpu_model: cpus()[0]?.model ?? '?', memory_gib: Math.round(totalmem() / 2 ** 30), kernel_node: process.version, load_avg_at_start: loadavg() },
      rookery: codeVersion(),
      options: { hosts: opts.hosts, rateMbit: opts.rateMbit, sizeBytes: opts.sizeBytes, delayMs: opts.delayMs, queueMs: opts.queueMs, mtu: opts.mtu, phases: opts.phases, launch: opts.launch, schedule: opts.schedule, serverConfig: opts.serverConfig, agentConfig: opts.agentConfig, subnet: opts.subnet },
      release: undefined as unknown as FleetResult['release'],
      lower_bound_seconds: 0,
      phases: [],
      work_dir: workDir,
    }

    // The agents start (and poll) before the publish, as on a real fleet; publishing is part of that phase.
    const rookery = await runRookery(ctx, { token: TOKEN, app: APP, tag: TAG, withAgents: opts.phases.includes('rookery') })
    result.release = { app: ctx.release.app, tag: ctx.release.tag, size: ctx.release.size, sha256: ctx.release.sha256, infohash: ctx.release.infohash, publish_seconds: ctx.release.publish_seconds }
    result.lower_bound_seconds = (ctx.release.size * 8) / (opts.rateMbit * 1e6)
    if (rookery) result.phases.push(rookery)
    if (opts.phases.includes('http')) result.phases.push(await runHttp(ctx))
    if (opts.phases.includes('aria2')) result.phases.push(await runAria2(ctx))
    if (opts.phases.includes('libtorrent')) result.phases.push(await runLibtorrent(ctx))
    return result
  } finally {
    cpu.stop()
    await server?.stop()
    cleanup()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('SIGHUP', onSignal)
    process.off('exit', cleanup)
    if (opts.keep) opts.log(`# files kept in ${workDir}`)
    else await rm(workDir, { recursive: true, force: true })
  }
}
