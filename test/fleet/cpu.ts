import { readFileSync } from 'node:fs'

/** Whole-machine CPU use, sampled once a second from /proc/stat, so each phase can say if CPU was the limit. */
export interface CpuSummary {
  cores: number
  seconds: number
  /** Mean share of all cores busy (0..1). */
  mean_busy: number
  p90_busy: number
  /** Share of the one-second samples with all cores at least 95 % busy. */
  saturated_share: number
  /** Mean share taken by the hypervisor (steal), included in busy: CPU this machine did not get. */
  mean_steal: number
}

function totals(): { busy: number; steal: number; all: number; cores: number } {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n')
  const f = lines[0]!.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal: idle and iowait are the not-busy ones.
  const all = f.slice(0, 8).reduce((a, b) => a + b, 0)
  const idle = f[3]! + f[4]!
  return { busy: all - idle, steal: f[7]!, all, cores: lines.filter((l) => /^cpu\d/.test(l)).length }
}

export class CpuSampler {
  readonly #samples: Array<{ at: number; busy: number; steal: number }> = []
  readonly #timer: NodeJS.Timeout
  readonly cores: number

  constructor() {
    let last = totals()
    this.cores = last.cores
    this.#timer = setInterval(() => {
      const now = totals()
      const all = now.all - last.all
      if (all > 0) this.#samples.push({ at: Date.now(), busy: (now.busy - last.busy) / all, steal: (now.steal - last.steal) / all })
      last = now
    }, 1000)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  summary(from: number, to: number): CpuSummary {
    const window = this.#samples.filter((x) => x.at > from && x.at <= to + 1000)
    const s = window.map((x) => x.busy)
    const sorted = [...s].sort((a, b) => a - b)
    const round = (x: number) => Math.round(x * 1000) / 1000
    return {
      cores: this.cores,
      seconds: s.length,
      mean_busy: round(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)),
      p90_busy: round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))] ?? 0),
      saturated_share: round(s.filter((x) => x >= 0.95).length / Math.max(1, s.length)),
      mean_steal: round(window.reduce((a, x) => a + x.steal, 0) / Math.max(1, window.length)),
    }
  }
}
