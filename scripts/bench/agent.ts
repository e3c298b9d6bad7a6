/**
 * Agent footprint: (1) idle RSS and CPU of a `rookery agent` polling a local server every 10 s with the
 * long-poll on and nothing to deploy, over a minute (after a warm-up); (2) peak memory while it downloads,
 * verifies and extracts a 2 GiB release of random data, split by phase using the agent's own log lines;
 * (3) RSS after that deploy, once its seed window is over and its swarm process exited. Targets: idle
 * <= 60 MB RSS and < 0.5 % CPU; peak <= 200 MB.
 *
 * A deploy runs in the agent's swarm process (src/agent/swarm.ts), so the peak is sampled every 200 ms over
 * both processes: their RSS summed, which counts the pages of the node binary both map (40-50 MB) twice,
 * and their PSS summed, which shares those pages out: what the deploy takes from the host. Both are judged.
 * The server runs on one core, the agent on the other.
 *
 * The 2 GiB tarball is made with GNU tar and gzip -1 and uploaded with the publish API (PUT, as `rookery
 * publish` does), because gzip -6 of 2 GiB of random data takes minutes and changes nothing downstream.
 *
 * With --packaged the agent runs as the .deb and .rpm install it: scripts/package.ts stages the installed
 * tree (ROOKERY_PKG_STAGE_ONLY=1: the esbuild bundle and its chunks, the stripped runtime, /usr/bin/rookery)
 * in the bench's work directory, and the agent is started through that /usr/bin/rookery (its paths moved
 * into the staged tree) with the environment of packaging/systemd/rookery-agent.service (its Environment=
 * lines, if any), as systemd starts it. Without it, the agent runs from the TypeScript sources.
 *
 *   npm run bench:agent -- [--packaged] [--idle-seconds 60] [--release-mib 2048] [--skip-idle] [--skip-peak]
 *     [--keep-tarball FILE] [--tarball FILE] [--agent-env NAME=value]...
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { CORES, cpuSeconds, fmt, machineNote, mb, memory, MiB, printTable, Proc, run, runBench, sleep, startServer, TOKEN, treeCpuSeconds, treeMemory, waitFor, workDir } from './common.ts'
import { processTree } from '../../test/helpers/processes.ts'
import { assignments, SOURCE_LAUNCHER, stagePackage, type RookeryLauncher } from '../staged-package.ts'

const { values: args } = parseArgs({
  options: {
    'idle-seconds': { type: 'string', default: '60' },
    'warmup-seconds': { type: 'string', default: '10' },
    'release-mib': { type: 'string', default: '2048' },
    'skip-idle': { type: 'boolean', default: false },
    'skip-peak': { type: 'boolean', default: false },
    packaged: { type: 'boolean', default: false },
    // Reuse a .tar.gz (e.g. one kept with --keep-tarball) instead of making a new one: saves a minute or two per run.
    tarball: { type: 'string' },
    'keep-tarball': { type: 'string' },
    // To try runtime settings on the agent only, e.g. --agent-env MALLOC_ARENA_MAX=2 --agent-env NODE_OPTIONS=--max-semi-space-size=1
    'agent-env': { type: 'string', multiple: true, default: [] },
    // Peak run: have the agent write a Node diagnostic report at each new RSS high (20 MB steps) and print
    // the split of the highest one: V8 heap, external memory (Buffers), and the rest (native, allocator).
    diagnose: { type: 'boolean', default: false },
    // Peak run: keep /proc/<pid>/smaps of the agent and its swarm process at the highest RSS sample and
    // print each one's biggest mappings.
    smaps: { type: 'boolean', default: false },
  },
})

const TARGETS = { idleRss: 60e6, idleCpu: 0.5, peakRss: 200e6 }

/** The peak run's seed window: short, so the bench also sees the agent after it (swarm client closed). */
const SEED_WINDOW_S = 10

async function writeAgentConfig(dir: string, server: string, name: string): Promise<string> {
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, [
    `server: ${server}`,
    `state_dir: ${join(dir, name, 'state')}`,
    'schedule: "*/10 * * * * *"',
    'long_poll: 30s',
    `seed_window: ${SEED_WINDOW_S}s`,
    'torrent_port: 0',
    'apps:',
    '  - name: web',
    `    deploy_to: ${join(dir, name, 'srv', 'web')}`,
  ].join('\n'))
  return file
}

/** How the agent is started: the sources on the pinned Node, or the staged package's launcher. */
let launcher: RookeryLauncher = SOURCE_LAUNCHER

const startAgent = (dir: string, config: string, name: string) =>
  new Proc([...launcher.agentCommand, 'agent', '--config', config], join(dir, `${name}.log`), { core: CORES.load, env: agentEnv })

const agentEnv: Record<string, string> = {}

async function idle(dir: string, server: string): Promise<Array<Array<string | number>>> {
  const config = await writeAgentConfig(dir, server, 'idle')
  const agent = startAgent(dir, config, 'idle')
  await sleep(Number(args['warmup-seconds']) * 1000)
  const before = { mem: await memory(agent.pid), cpu: await cpuSeconds(agent.pid), at: performance.now() }
  const samples: number[] = []
  const end = before.at + Number(args['idle-seconds']) * 1000
  while (performance.now() < end) {
    samples.push((await memory(agent.pid)).rss)
    await sleep(1000)
  }
  const after = { mem: await memory(agent.pid), cpu: await cpuSeconds(agent.pid), at: performance.now() }
  await agent.stop()
  const log = await readFile(join(dir, 'idle.log'), 'utf8')
  const polls = log.split('\n').filter((l) => l.includes('"manifest')).length
  const cpuPct = ((after.cpu - before.cpu) / ((after.at - before.at) / 1000)) * 100
  const maxRss = Math.max(...samples, after.mem.rss)
  console.log(`# idle: ${args['idle-seconds']} s after a ${args['warmup-seconds']} s warm-up; CPU ${(after.cpu - before.cpu).toFixed(2)} s; RSS at start ${mb(before.mem.rss)}, at end ${mb(after.mem.rss)} (anonymous ${mb(after.mem.anon)}, file-backed ${mb(after.mem.file)}: mostly the node binary), VmHWM ${mb(after.mem.hwm)} (since process start); ${polls} manifest log lines`)
  return [
    ['idle RSS (max of 1 s samples)', mb(maxRss), '<= 60 MB', maxRss <= TARGETS.idleRss ? 'met' : 'NOT met'],
    ['idle CPU', `${cpuPct.toFixed(2)} %`, '< 0.5 %', cpuPct < TARGETS.idleCpu ? 'met' : 'NOT met'],
  ]
}

/** A tarball of `bytes` random bytes in 256 MiB files, made with GNU tar and gzip -1. */
async function makeTarball(dir: string, bytes: number): Promise<string> {
  const tree = join(dir, 'big')
  await mkdir(tree, { recursive: true })
  const names: string[] = []
  for (let i = 0, left = bytes; left > 0; i++, left -= 256 * MiB) {
    const name = `blob-${String(i).padStart(2, '0')}.bin`
    names.push(name)
    const out = createWriteStream(join(tree, name))
    for (let chunk = 0; chunk < Math.min(left, 256 * MiB); chunk += 4 * MiB) {
      if (!out.write(randomBytes(4 * MiB))) await new Promise<void>((r) => out.once('drain', () => r()))
    }
    await new Promise<void>((r) => out.end(() => r()))
  }
  const tarball = join(dir, 'big.tar.gz')
  run(['tar', '-I', 'gzip -1', '--owner=0', '--group=0', '--numeric-owner', '-cf', tarball, '-C', tree, ...names])
  await rm(tree, { recursive: true, force: true })
  return tarball
}

async function peak(dir: string, server: string): Promise<Array<Array<string | number>>> {
  const bytes = Number(args['release-mib']) * MiB
  let t = performance.now()
  const tarball = args.tarball ?? (await makeTarball(dir, bytes))
  const size = (await stat(tarball)).size
  const sha256 = run(['sha256sum', tarball]).stdout.split(' ')[0]!
  console.log(`# peak: release of ${fmt(bytes / MiB)} MiB random data, tarball ${mb(size)}, made in ${((performance.now() - t) / 1000).toFixed(0)} s`)
  t = performance.now()
  run(['curl', '-sSf', '-o', '/dev/null', '-T', tarball, '-H', `Authorization: Bearer ${TOKEN}`, '-H', `X-Rookery-Sha256: ${sha256}`, `${server}/api/v1/releases/web/v1`])
  if (args['keep-tarball']) await rename(tarball, args['keep-tarball'])
  else if (!args.tarball) await rm(tarball)
  console.log(`# published in ${((performance.now() - t) / 1000).toFixed(0)} s (upload, server hash and torrent)`)

  const config = await writeAgentConfig(dir, server, 'peak')
  const reports = join(dir, 'reports')
  if (args.diagnose) {
    await mkdir(reports)
    agentEnv.NODE_OPTIONS = `${agentEnv.NODE_OPTIONS ?? ''} --report-on-signal --report-signal=SIGUSR2 --report-directory=${reports}`.trim()
  }
  const agent = startAgent(dir, config, 'peak')
  let reportedAt = 0
  const started = Date.now()
  // The agent and its swarm process (src/agent/swarm.ts): RSS summed (the node binary's pages counted
  // twice), PSS summed (shared pages split between them), and the swarm process alone.
  const samples: Array<{ at: number; rss: number; pss: number; anon: number; cpu: number; processes: number }> = []
  const current = join(dir, 'peak', 'srv', 'web', 'current')
  let smapsAt = 0
  let smaps: string[] = []
  await waitFor('the agent to activate the 2 GiB release', async () => {
    const m = await treeMemory(agent.pid)
    samples.push({ at: Date.now(), rss: m.rss, pss: m.pss, anon: m.anon, cpu: await treeCpuSeconds(agent.pid), processes: m.processes })
    if (args.diagnose && m.rss > reportedAt + 20e6 && m.rss > 150e6) {
      reportedAt = m.rss
      // The agent and its swarm process, where the download runs: each writes its report.
      for (const pid of processTree(agent.pid)) process.kill(pid, 'SIGUSR2')
    }
    if (args.smaps && m.rss > smapsAt) {
      smapsAt = m.rss
      const read = await Promise.all(processTree(agent.pid).map((pid) => readFile(`/proc/${pid}/smaps`, 'utf8').catch(() => '')))
      if (read.every((text) => text !== '')) smaps = read
    }
    return stat(current).then(() => true, () => false)
  }, 1_200_000, 200)
  // VmHWM only grows: read once, at the end.
  const hwm = (await memory(agent.pid)).hwm
  const deployCpu = await treeCpuSeconds(agent.pid)
  const finished = Date.now()
  // After the deploy: the seed window ends, the swarm client closes; what does the agent keep?
  const logFile = join(dir, 'peak.log')
  await waitFor('the swarm client to close after the seed window', async () => (await readFile(logFile, 'utf8')).includes('"swarm client closed"'), (SEED_WINDOW_S + 60) * 1000, 500)
  await sleep(5000)
  const afterDeploy = await treeMemory(agent.pid)
  await agent.stop()

  // Phases from the agent's log: each line has pino's epoch-ms `time` and a `msg`.
  const events = (await readFile(join(dir, 'peak.log'), 'utf8')).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { time: string | number; msg: string })
  const at = (msg: string) => {
    const time = events.find((e) => e.msg === msg)?.time
    return time === undefined ? undefined : typeof time === 'number' ? time : Date.parse(time)
  }
  const marks = [
    ['start-up and manifest', started, at('download started')],
    ['download', at('download started'), at('download complete')],
    ['extract and sha256', at('download complete'), at('release extracted')],
    ['activate', at('release extracted'), finished],
  ] as Array<[string, number | undefined, number | undefined]>
  const rows: Array<Array<string | number>> = []
  for (const [phase, from, to] of marks) {
    if (from === undefined || to === undefined) continue
    const inPhase = samples.filter((s) => s.at >= from && s.at <= to)
    const max = Math.max(0, ...inPhase.map((s) => s.rss))
    const maxPss = Math.max(0, ...inPhase.map((s) => s.pss))
    const cpu = inPhase.length > 1 ? `, ${(inPhase.at(-1)!.cpu - inPhase[0]!.cpu).toFixed(1)} CPU s` : ''
    rows.push([`peak RSS summed: ${phase} (${((to - from) / 1000).toFixed(1)} s${cpu})`, mb(max), '<= 200 MB', max <= TARGETS.peakRss ? 'met' : 'NOT met'])
    rows.push([`  PSS summed`, mb(maxPss), '<= 200 MB', maxPss <= TARGETS.peakRss ? 'met' : 'NOT met'])
  }
  const maxSample = Math.max(...samples.map((s) => s.rss))
  if (args.diagnose) await printDiagnosis(reports)
  if (args.smaps) {
    console.log(`# smaps at RSS summed ${mb(smapsAt)}, the agent first, then its swarm process:`)
    for (const text of smaps) printSmaps(text)
  }
  rows.push(['peak RSS summed: whole deploy (max of samples)', mb(maxSample), '<= 200 MB', maxSample <= TARGETS.peakRss ? 'met' : 'NOT met'])
  const maxPss = Math.max(...samples.map((s) => s.pss))
  rows.push(['  PSS summed', mb(maxPss), '<= 200 MB', maxPss <= TARGETS.peakRss ? 'met' : 'NOT met'])
  rows.push(['  the agent process alone (VmHWM)', mb(hwm), '', ''])
  rows.push([`RSS after the deploy (seed window over; ${afterDeploy.processes} process${afterDeploy.processes === 1 ? '' : 'es'})`, mb(afterDeploy.rss), '', ''])
  rows.push(['agent CPU with its swarm process, start to activation', `${deployCpu.toFixed(1)} s`, '', ''])
  console.log(`# deploy took ${((finished - started) / 1000).toFixed(1)} s; ${samples.length} samples, max sampled VmRSS ${mb(maxSample)}; the tarball's sha256 is computed during the extraction, from the same reads`)
  const timeline = samples.filter((_, i) => i % 25 === 0).map((s) => `${((s.at - started) / 1000).toFixed(0)}s:${Math.round(s.rss / 1e6)}/${Math.round(s.pss / 1e6)}/${Math.round(s.anon / 1e6)}`)
  console.log(`# timeline (seconds:VmRSS/PSS/RssAnon in MB summed over the agent and its swarm process, every 5 s): ${timeline.join(' ')}`)
  return rows
}

/** One process's mappings, biggest resident first. */
function printSmaps(smaps: string): void {
  const maps: Array<{ name: string; size: number; rss: number; anon: number }> = []
  for (const line of smaps.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (head) maps.push({ name: `${head[1]} ${head[2] || '(anon)'}`, size: 0, rss: 0, anon: 0 })
    const kb = /^(Size|Rss|Anonymous):\s+(\d+) kB/.exec(line)
    if (kb && maps.length > 0) maps.at(-1)![kb[1] === 'Size' ? 'size' : kb[1] === 'Rss' ? 'rss' : 'anon'] = Number(kb[2]) * 1024
  }
  const top = maps.filter((m) => m.rss > 512 * 1024).sort((a, b) => b.rss - a.rss)
  const total = maps.reduce((a, m) => a + m.rss, 0)
  console.log(`# a process at RSS ${mb(total)}: ${maps.length} mappings; resident over 0.5 MB (size/rss/anon MB):`)
  for (const m of top.slice(0, 30)) console.log(`#   ${(m.size / 1e6).toFixed(1)}/${(m.rss / 1e6).toFixed(1)}/${(m.anon / 1e6).toFixed(1)} ${m.name}`)
  const small = maps.filter((m) => m.rss <= 512 * 1024)
  console.log(`#   and ${small.length} smaller: rss ${mb(small.reduce((a, m) => a + m.rss, 0))}`)
}

/** The diagnostic report with the highest RSS: where the memory is. */
async function printDiagnosis(reports: string): Promise<void> {
  const { readdir } = await import('node:fs/promises')
  type Report = { header: { filename: string }; javascriptHeap: { totalMemory: number; usedMemory: number; externalMemory: number; mallocedMemory: number; heapSpaces: Record<string, { memorySize: number; used: number }> }; resourceUsage: { rss: number } }
  const all: Report[] = []
  for (const f of await readdir(reports)) all.push(JSON.parse(await readFile(join(reports, f), 'utf8')) as Report)
  if (all.length === 0) return console.log('# diagnose: no report written')
  const r = all.sort((a, b) => Number(b.resourceUsage.rss) - Number(a.resourceUsage.rss))[0]!
  const h = r.javascriptHeap
  const rss = Number(r.resourceUsage.rss)
  console.log(`# diagnose (highest of ${all.length} reports): RSS ${mb(rss)} = V8 heap ${mb(h.totalMemory)} (used ${mb(h.usedMemory)}) + external ${mb(h.externalMemory)} (Buffers/ArrayBuffers) + rest ${mb(rss - h.totalMemory - h.externalMemory)} (node binary pages, native code, allocator)`)
  console.log(`# heap spaces (size/used MB): ${Object.entries(h.heapSpaces).filter(([, v]) => v.memorySize > 0).map(([k, v]) => `${k} ${(v.memorySize / 1e6).toFixed(1)}/${(v.used / 1e6).toFixed(1)}`).join(', ')}`)
}

await runBench(async () => {
  console.log(machineNote())
  const dir = await workDir('agent')
  if (args.packaged) {
    launcher = await stagePackage(dir)
    Object.assign(agentEnv, launcher.env.agent)
    const unitEnv = Object.entries(launcher.env.agent).map(([k, v]) => `${k}=${v}`)
    console.log(`# packaged (scripts/staged-package.ts): ${launcher.agentCommand.join(' ')}; unit environment: ${unitEnv.length > 0 ? unitEnv.join(' ') : 'none'}`)
  } else {
    console.log(`# from source: ${launcher.agentCommand.join(' ')}`)
  }
  // --agent-env comes last: it may override what the unit sets.
  Object.assign(agentEnv, assignments(args['agent-env']))
  if (args['agent-env'].length > 0) console.log(`# agent environment: ${args['agent-env'].join(' ')}`)
  const { url } = await startServer(join(dir, 'server'), { core: CORES.server })
  const rows: Array<Array<string | number>> = [['figure', 'measured', 'target', '']]
  if (!args['skip-idle']) rows.push(...(await idle(dir, url)))
  if (!args['skip-peak']) rows.push(...(await peak(dir, url)))
  console.log()
  printTable(rows)
})
