/**
 * Runs one of rookery's release steps in a process of its own, so the pack benchmark can pin it to a core
 * like GNU tar; prints one JSON line of timings (ms).
 *
 *   node scripts/bench/pack-worker.ts pack DIR OUT.tar.gz      packDirectory, then sha256File
 *   node scripts/bench/pack-worker.ts extract TARBALL TARGET   extractRelease
 */
import { extractRelease } from '../../src/release/extract.ts'
import { sha256File } from '../../src/release/hash.ts'
import { packDirectory } from '../../src/release/pack.ts'

const [op, a, b] = process.argv.slice(2)
if (!a || !b) throw new Error('usage: pack-worker.ts pack DIR OUT | extract TARBALL TARGET')
if (op === 'pack') {
  let t = performance.now()
  const packed = await packDirectory(a, b)
  const packMs = performance.now() - t
  t = performance.now()
  const sha256 = await sha256File(b)
  const hashMs = performance.now() - t
  console.log(JSON.stringify({ packMs, hashMs, sha256, ...packed }))
} else if (op === 'extract') {
  const t = performance.now()
  const result = await extractRelease(a, b)
  console.log(JSON.stringify({ extractMs: performance.now() - t, ...result }))
} else {
  throw new Error(`unknown operation ${op}`)
}
