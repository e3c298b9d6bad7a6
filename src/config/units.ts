/** Durations ("90s", "5m", "1h30m", "250ms") and sizes ("64MiB", "10GB") as users write them in config. */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/

/** Milliseconds in a duration string, or undefined when it is not one. A bare "0" is zero. */
export function parseDuration(text: string): number | undefined {
  let rest = text.trim()
  if (rest === '0') return 0
  if (rest === '') return undefined
  let total = 0
  while (rest !== '') {
    const m = DURATION.exec(rest)
    if (!m) return undefined
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!
    rest = rest.slice(m[0].length)
  }
  return Math.round(total)
}

const SIZE_UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
}

/** Bytes in a size string like "512MiB", "2GB" or "1024", or undefined when it is not one. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim())
  if (!m) return undefined
  const unit = SIZE_UNITS[(m[2] || 'b').toLowerCase()]
  return unit === undefined ? undefined : Math.round(Number(m[1]) * unit)
}

/** "1.5 GiB"-style rendering for logs and summaries. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let i = 0
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024
    i++
  }
  return `${i === 0 ? value : value.toFixed(1)} ${units[i]}`
}
