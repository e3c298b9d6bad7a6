import { formatBytes } from '../config/units.ts'

/**
 * A one-line progress display on stderr, redrawn at most every 100 ms, only on a terminal: logs and CI
 * output stay clean.
 */
export function progressLine(label: string): { update(done: number, total: number): void; done(): void } {
  const tty = process.stderr.isTTY === true
  let last = 0
  let drawn = false
  return {
    update(done, total) {
      if (!tty) return
      const now = Date.now()
      if (now - last < 100 && done < total) return
      last = now
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100
      const width = 30
      const filled = Math.round((pct / 100) * width)
      process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${formatBytes(done)}/${formatBytes(total)}`)
      drawn = true
    },
    done() {
      if (drawn) process.stderr.write('\r\x1b[K')
    },
  }
}
