// `npm run bench:fleet [-- --hosts 24 --rate 25 --size 64MiB ...]`: rookery against central HTTP, aria2c
// and libtorrent on a namespaced, shaped test network. Needs root. Flags override FLEET_* variables,
// which override the defaults. Prints the table, writes result.json and plot.png.
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parse } from 'yaml'
import { PHASES, runFleet, type FleetResult, type Phase } from './fleet.ts'
import { table, writeReport } from './report.ts'

const USAGE = `usage: npm run bench:fleet -- [--hosts N] [--rate MBIT] [--size 64MiB] [--delay MS] [--queue MS] [--mtu 1500]
  [--phases rookery,http,aria2,libtorrent] [--schedule CRON] [--server-yaml YAML] [--agent-yaml YAML]
  [--launch package|source] [--out DIR] [--keep] [--no-install]
  npm run bench:fleet -- --report DIR    (table and plot again from DIR/result.json, no run)
env: FLEET_HOSTS FLEET_RATE_MBIT FLEET_SIZE FLEET_DELAY_MS FLEET_QUEUE_MS FLEET_MTU FLEET_PHASES FLEET_SCHEDULE
  FLEET_SERVER_YAML FLEET_AGENT_YAML FLEET_LAUNCH FLEET_OUT (e.g. FLEET_SERVER_YAML='{origin_upload_limit: 2MiB}')
  FLEET_NODE_ARGS: Node flags for every agent (e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof')`

function size(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(text.trim())
  if (!m) throw new Error(`bad size "${text}": use e.g. 64MiB, 512KiB or a byte count`)
  const unit = { b: 1, kib: 1024, mib: 2 ** 20, gib: 2 ** 30 }[(m[2] ?? 'B').toLowerCase() as 'b']
  return Math.round(Number(m[1]) * unit)
}

function positive(name: string, text: string, min = 0): number {
  const n = Number(text)
  if (!Number.isFinite(n) || n < min) throw new Error(`bad ${name} "${text}": want a number >= ${min}`)
  return n
}

function launchForm(text: string): 'package' | 'source' {
  if (text !== 'package' && text !== 'source') throw new Error(`bad --launch "${text}": want package (the bundle, as installed) or source (the TypeScript sources)`)
  return text
}

function yamlObject(name: string, text: string | undefined): Record<string, unknown> {
  if (!text) return {}
  const v = parse(text) as unknown
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`bad ${name}: want a YAML mapping like '{announce_interval: 5s}'`)
  return v as Record<string, unknown>
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      hosts: { type: 'string' },
      rate: { type: 'string' },
      size: { type: 'string' },
      delay: { type: 'string' },
      queue: { type: 'string' },
      mtu: { type: 'string' },
      phases: { type: 'string' },
      schedule: { type: 'string' },
      'server-yaml': { type: 'string' },
      'agent-yaml': { type: 'string' },
      launch: { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      'no-install': { type: 'boolean' },
      report: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (a.help) return console.log(USAGE)
  if (a.report) {
    const result = JSON.parse(await readFile(join(a.report, 'result.json'), 'utf8')) as FleetResult
    const printed = table(result)
    console.log(printed)
    await writeReport(result, a.report, printed)
    return
  }
  const env = process.env
  const phases = (a.phases ?? env.FLEET_PHASES ?? PHASES.join(',')).split(',').map((p) => p.trim()) as Phase[]
  const bad = phases.find((p) => !PHASES.includes(p))
  if (bad) throw new Error(`unknown phase "${bad}": choose from ${PHASES.join(',')}`)
  const out = a.out ?? env.FLEET_OUT ?? join('test-output', 'fleet', new Date().toISOString().replace(/[:.]/g, '-'))
  await mkdir(out, { recursive: true })
  const result = await runFleet({
    hosts: positive('--hosts', a.hosts ?? env.FLEET_HOSTS ?? '24', 1),
    rateMbit: positive('--rate', a.rate ?? env.FLEET_RATE_MBIT ?? '25', 0.1),
    sizeBytes: size(a.size ?? env.FLEET_SIZE ?? '64MiB'),
    delayMs: positive('--delay', a.delay ?? env.FLEET_DELAY_MS ?? '0'),
    queueMs: positive('--queue', a.queue ?? env.FLEET_QUEUE_MS ?? '50', 1),
    mtu: Math.round(positive('--mtu', a.mtu ?? env.FLEET_MTU ?? '1500', 576)),
    phases,
    schedule: a.schedule ?? env.FLEET_SCHEDULE ?? '* * * * * *',
    serverConfig: yamlObject('--server-yaml', a['server-yaml'] ?? env.FLEET_SERVER_YAML),
    agentConfig: yamlObject('--agent-yaml', a['agent-yaml'] ?? env.FLEET_AGENT_YAML),
    prefix: 'rkfb',
    subnet: '10.77.0',
    launch: launchForm(a.launch ?? env.FLEET_LAUNCH ?? 'package'),
    keep: a.keep ?? false,
    installTools: !(a['no-install'] ?? false),
    log: (line) => console.log(line),
  })
  const printed = table(result)
  console.log('\n' + printed + '\n')
  const files = await writeReport(result, out, printed)
  console.log(`# wrote ${files.json}${files.png ? ` and ${files.png}` : ''}`)
}

main().catch((err: Error) => {
  console.error(`bench:fleet: ${err.message}`)
  process.exit(1)
})
