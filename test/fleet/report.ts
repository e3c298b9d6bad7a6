import { spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FleetResult, PhaseResult } from './fleet.ts'
import type { EveryPieceOut } from './phase-rookery.ts'

export interface Stats {
  done: number
  of: number
  median: number | null
  p90: number | null
  max: number | null
}

/** Median, p90 (nearest rank) and max of the hosts that finished; `done` says how many did. */
export function stats(values: Array<number | null>): Stats {
  const v = values.filter((x): x is number => x !== null).sort((a, b) => a - b)
  const n = v.length
  if (n === 0) return { done: 0, of: values.length, median: null, p90: null, max: null }
  const median = n % 2 ? v[(n - 1) / 2]! : (v[n / 2 - 1]! + v[n / 2]!) / 2
  return { done: n, of: values.length, median, p90: v[Math.ceil(0.9 * n) - 1]!, max: v[n - 1]! }
}

interface Row {
  label: string
  seconds: Array<number | null>
  phase: FleetResult['phases'][number]
}

function rows(result: FleetResult): Row[] {
  const out: Row[] = []
  for (const p of result.phases) {
    if (p.name === 'rookery') {
      out.push({ label: `${p.label}: current switched`, seconds: p.seconds, phase: p })
      // How much of that went before a byte could move: the manifest change reaching the host, the .torrent
      // fetch and the swarm process's start (all hosts at once, which on a small machine queues for CPU).
      out.push({ label: `${p.label}: download started`, seconds: p.extra.started_download_seconds as Array<number | null>, phase: p })
      out.push({ label: `${p.label}: download complete`, seconds: p.extra.downloaded_seconds as Array<number | null>, phase: p })
    } else {
      const failed = ((p.extra.tracker_errors as number[] | undefined) ?? []).filter((n) => n > 0).length
      out.push({ label: failed ? `${p.label} [announce failed on ${failed} hosts]` : p.label, seconds: p.seconds, phase: p })
    }
  }
  return out
}

const MiB = 2 ** 20

/** Share of the machine's cores that the phase's own processes (clients and server) used. */
export function ownShare(p: FleetResult['phases'][number]): number {
  return (p.clients.cpu_seconds_total + p.server_cpu_seconds) / Math.max(0.001, p.wall_seconds * p.cpu.cores)
}
const f1 = (x: number | null) => (x === null ? '-' : x.toFixed(1))
const f2 = (x: number | null) => (x === null ? '-' : x.toFixed(2))

/** Whether CPU limited the phase, and whose CPU it was (the machine may be shared with other work). */
export function cpuVerdict(p: FleetResult['phases'][number]): string {
  const own = ownShare(p)
  const others = Math.max(0, p.cpu.mean_busy - own)
  const pct = (x: number) => `${Math.round(x * 100)}%`
  const who = `its processes used ${pct(own)} of the cores, the rest (other processes, kernel packet work) about ${pct(others)}`
  if (p.cpu.saturated_share >= 0.5) {
    return `CPU-bound: all cores >= 95% busy for ${pct(p.cpu.saturated_share)} of ${p.cpu.seconds} s; ${who}${others > 0.25 ? ' (figures not clean: rerun on an idle machine)' : ''}`
  }
  return `not CPU-bound (cores saturated ${pct(p.cpu.saturated_share)} of ${p.cpu.seconds} s); ${who}`
}

/** The summary table, as printed by the bench (and kept in the JSON's `table`). */
export function table(result: FleetResult): string {
  const o = result.options
  const bound = result.lower_bound_seconds
  const lines = [
    `fleet: N=${o.hosts} hosts, C=${o.rateMbit} Mbit/s, F=${(o.sizeBytes / MiB).toFixed(1)} MiB (tarball ${result.release.size} bytes), ` +
      `${o.mtu && o.mtu !== 1500 ? `MTU ${o.mtu}, ` : ''}` +
      `F/C = ${bound.toFixed(2)} s; agents poll "${o.schedule}"; rookery runs ${o.launch === 'source' ? 'from the TypeScript sources' : 'as packaged (bundle)'}; ${result.machine.cores} cores, load ${result.machine.load_avg_at_start.map((x) => x.toFixed(1)).join(' ')} at start`,
    '',
    `${'method'.padEnd(44)} ${'done'.padStart(6)} ${'median'.padStart(7)} ${'p90'.padStart(7)} ${'max'.padStart(7)}  ${'med/FC'.padStart(6)} ${'p90/FC'.padStart(6)} ${'max/FC'.padStart(6)} ${'srv sent'.padStart(9)} ${'CPU busy'.padStart(8)} ${'CPU own'.padStart(7)}`,
  ]
  for (const r of rows(result)) {
    const s = stats(r.seconds)
    const ratio = (x: number | null) => (x === null ? null : x / bound)
    lines.push(
      `${r.label.padEnd(44)} ${`${s.done}/${s.of}`.padStart(6)} ${f1(s.median).padStart(7)} ${f1(s.p90).padStart(7)} ${f1(s.max).padStart(7)}  ` +
        `${f2(ratio(s.median)).padStart(6)} ${f2(ratio(s.p90)).padStart(6)} ${f2(ratio(s.max)).padStart(6)} ` +
        `${`${(r.phase.server_sent_bytes / result.release.size).toFixed(2)}xF`.padStart(9)} ${`${Math.round(r.phase.cpu.mean_busy * 100)}%`.padStart(8)} ${`${Math.round(ownShare(r.phase) * 100)}%`.padStart(7)}`,
    )
  }
  lines.push(
    '',
    'seconds from publish (rookery: the release entry\'s created_at) or from the clients\' start (baselines) to the whole',
    'file on the host (rookery\'s "download started": to its swarm\'s first request); srv sent: origin seeder + HTTP bytes',
    'the server sent in that phase; CPU busy: mean share of all cores busy during the phase, whoever used them (steal',
    'included); CPU own: share used by the phase\'s clients and server.',
  )
  for (const p of result.phases) {
    const c = p.cpu
    lines.push(
      `${p.name}: clients ${p.clients.cpu_seconds_total} CPU s (max ${p.clients.cpu_seconds_max} per host, peak RSS ${p.clients.peak_rss_mib_max} MiB), server ${p.server_cpu_seconds} CPU s; ` +
        `machine ${Math.round(c.mean_busy * 100)}% busy (p90 ${Math.round(c.p90_busy * 100)}%, steal ${Math.round(c.mean_steal * 100)}%); files identical: ${p.identical}`,
    )
    lines.push(`  -> ${cpuVerdict(p)}`)
    if (p.name === 'rookery') lines.push(...rookeryTimeline(p, result.release.size, bound))
  }
  return lines.join('\n')
}

/** The rookery phase's own lines: when the origin had sent every piece once, and the time from `rookery publish`. */
function rookeryTimeline(p: PhaseResult, size: number, bound: number): string[] {
  const lines: string[] = []
  const { median, max } = stats(p.seconds)
  const out = p.extra.origin_every_piece_out as EveryPieceOut | null | undefined
  if (out) {
    const sent = out.uploaded === null ? '' : ` (it had sent ${(out.uploaded / size).toFixed(2)} x F by then)`
    lines.push(
      `  -> the origin had sent every piece once ${out.seconds.toFixed(1)} s after the publish${sent}; ` +
        `the median host switched ${median === null ? '-' : (median - out.seconds).toFixed(1)} s after that (the hosts' relay tail)`,
    )
  }
  const before = p.extra.entry_after_publish_start_seconds as number | undefined
  if (before !== undefined) {
    const early = ((p.extra.early_swarm_start as boolean[] | undefined) ?? []).filter(Boolean).length
    const at = (s: number | null) => (s === null ? '-' : `${(before + s).toFixed(1)} s (${((before + s) / bound).toFixed(2)} x F/C)`)
    lines.push(
      `  -> from the start of \`rookery publish\` (pack, hash, upload; the entry came ${before.toFixed(1)} s after it): median host switched at ${at(median)}, ` +
        `last at ${at(max)}; ${early}/${p.seconds.length} hosts started their swarm process during the upload`,
    )
  }
  return lines
}

/** Writes result.json, the gnuplot data and script, and plot.png (completion time per host, sorted). */
export async function writeReport(result: FleetResult, dir: string, printed: string): Promise<{ json: string; png: string | null }> {
  const json = join(dir, 'result.json')
  await writeFile(json, JSON.stringify({ ...result, table: printed }, null, 2) + '\n')
  const rs = rows(result)
  const sorted = rs.map((r) => r.seconds.filter((x): x is number => x !== null).sort((a, b) => a - b))
  const data: string[] = [`# rank ${rs.map((r) => JSON.stringify(r.label)).join(' ')}`]
  for (let i = 0; i < result.options.hosts; i++) data.push([i + 1, ...sorted.map((s) => (s[i] === undefined ? '?' : s[i]!.toFixed(3)))].join(' '))
  await writeFile(join(dir, 'plot.dat'), data.join('\n') + '\n')
  const o = result.options
  const plots = rs.map((r, k) => `'plot.dat' using 1:${k + 2} with linespoints pt 7 ps 0.6 title ${JSON.stringify(r.label)}`)
  plots.push(`${result.lower_bound_seconds} with lines dt 2 lc rgb "black" title "F/C = ${result.lower_bound_seconds.toFixed(1)} s"`)
  const script = [
    'set terminal pngcairo size 1100,650 font "sans,10"',
    "set output 'plot.png'",
    'set datafile missing "?"',
    `set title "${o.hosts} hosts, ${o.rateMbit} Mbit/s links, ${(o.sizeBytes / MiB).toFixed(0)} MiB release: completion time per host"`,
    'set xlabel "hosts, sorted by completion time"',
    'set ylabel "seconds (log scale)"',
    'set logscale y',
    'set grid',
    'set key outside bottom center horizontal',
    'set bmargin 7',
    `set xrange [0:${o.hosts + 1}]`,
    `plot ${plots.join(', \\\n  ')}`,
  ].join('\n')
  await writeFile(join(dir, 'plot.gp'), script + '\n')
  const res = spawnSync('gnuplot', ['plot.gp'], { cwd: dir, encoding: 'utf8', timeout: 60_000 })
  if (res.status !== 0) {
    console.error(`# gnuplot failed, no plot.png: ${res.stderr?.trim() || res.error?.message}`)
    return { json, png: null }
  }
  return { json, png: join(dir, 'plot.png') }
}
