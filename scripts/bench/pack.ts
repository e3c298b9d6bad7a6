/**
 * Pack and extract throughput: rookery's packDirectory + sha256File (what `rookery publish` does before
 * the torrent) and extractRelease (what the agent does after verifying), against GNU tar + gzip + sha256sum
 * on the same generated directory: thousands of small text files, medium and large files, about half of the
 * bytes compressible text and half random. Both sides run pinned to the same single core (GNU tar's gzip
 * child too), and their gzip level is 6. MB/s is of the directory's file bytes (1 MB = 10^6 bytes).
 *
 * A last row extracts a tree of small files only (--small-files, 1-16 KiB each), where the cost per file
 * sets the pace. BENCH_TMPDIR=/dev/shm runs it all on tmpfs, without this machine's disk.
 *
 *   npm run bench:pack -- [--size-mib 1024] [--small-files 10000] [--core 1|none]
 */
import { randomBytes } from 'node:crypto'
import { mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { CORES, fmt, machineNote, MiB, NODE, printTable, run, runBench, workDir } from './common.ts'

const WORKER = fileURLToPath(new URL('./pack-worker.ts', import.meta.url))

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    'small-files': { type: 'string', default: '10000' },
    core: { type: 'string', default: CORES.load },
  },
})
const core = args.core === 'none' ? undefined : args.core

const WORDS = 'const let function return import export default class extends async await if else for while of in new this null undefined true false string number object array map filter reduce promise resolve reject error throw catch try finally module require exports window document element style color margin padding border display flex grid width height position absolute relative static fixed index value key name type data config option release server agent manifest tracker peer piece torrent hash length buffer stream chunk'.split(' ')

/** Text that compresses like source code or minified assets (gzip -6: about 3 to 1). */
function textCorpus(bytes: number): Buffer {
  const picks = randomBytes(bytes / 4)
  const parts: string[] = []
  let size = 0
  for (let i = 0; size < bytes; i++) {
    const b = picks[i % picks.length]!
    const word = WORDS[b % WORDS.length]!
    const sep = b < 24 ? ';\n' : b < 60 ? '(' : b < 90 ? ') ' : b < 110 ? '.' : ' '
    const token = b > 240 ? `${word}${picks[(i * 7) % picks.length]}${sep}` : `${word}${sep}`
    parts.push(token)
    size += token.length
  }
  return Buffer.from(parts.join('')).subarray(0, bytes)
}

/** Writes the benchmark tree under `root`; returns its file count and bytes. */
async function makeTree(root: string, totalBytes: number): Promise<{ files: number; bytes: number }> {
  const corpus = textCorpus(16 * MiB)
  const text = (size: number) => {
    const at = Math.floor(Math.random() * (corpus.length - size))
    return corpus.subarray(at, at + size)
  }
  let files = 0
  let bytes = 0
  const put = async (rel: string, data: Buffer) => {
    await mkdir(join(root, rel, '..'), { recursive: true })
    await writeFile(join(root, rel), data)
    files++
    bytes += data.length
  }
  const rand = (min: number, max: number) => min + Math.floor(Math.random() * (max - min))
  // 10 % in small text files (1-32 KiB), 100 per directory, like node_modules or assets
  const small = await writeSmallFiles(join(root, 'lib'), corpus, 32, (_, done) => done >= totalBytes * 0.1)
  files += small.files
  bytes += small.bytes
  // 30 % in medium files (64 KiB-2 MiB), alternately text and random (images, fonts, compiled code)
  for (let done = 0, i = 0; done < totalBytes * 0.3; i++) {
    const size = rand(64 * 1024, 2 * MiB)
    await put(`assets/dir-${i % 16}/asset-${i}.${i % 2 ? 'bin' : 'css'}`, i % 2 ? randomBytes(size) : text(size))
    done += size
  }
  // 60 % in large files (16-64 MiB), alternately text and random, written in 4 MiB chunks
  for (let done = 0, i = 0; done < totalBytes * 0.6; i++) {
    const size = Math.min(rand(16 * MiB, 64 * MiB), Math.max(MiB, Math.ceil(totalBytes * 0.6 - done)))
    const chunks: Buffer[] = []
    for (let left = size; left > 0; left -= 4 * MiB) chunks.push(i % 2 ? randomBytes(Math.min(left, 4 * MiB)) : Buffer.from(text(Math.min(left, 4 * MiB))))
    await put(`data/large-${i}.${i % 2 ? 'bin' : 'txt'}`, Buffer.concat(chunks))
    done += size
  }
  return { files, bytes }
}

/**
 * Text files of 1 KiB to `maxKiB` cut from `corpus`, 100 per directory (like node_modules), written under
 * `root` until `enough(files, bytes)`.
 */
async function writeSmallFiles(root: string, corpus: Buffer, maxKiB: number, enough: (files: number, bytes: number) => boolean): Promise<{ files: number; bytes: number }> {
  let files = 0
  let bytes = 0
  for (; !enough(files, bytes); files++) {
    const size = 1024 + Math.floor(Math.random() * (maxKiB - 1) * 1024)
    const at = Math.floor(Math.random() * (corpus.length - size))
    const dir = join(root, `pkg-${Math.floor(files / 100)}`)
    if (files % 100 === 0) await mkdir(dir, { recursive: true })
    await writeFile(join(dir, `file-${files}.js`), corpus.subarray(at, at + size))
    bytes += size
  }
  return { files, bytes }
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000)

await runBench(async () => {
  console.log(machineNote())
  const dir = await workDir('pack')
  const tree = join(dir, 'tree')
  const t0 = performance.now()
  const { files, bytes } = await makeTree(tree, Number(args['size-mib']) * MiB)
  console.log(`# generated ${files} files, ${fmt(bytes / 1e6)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s; both sides ${core === undefined ? 'unpinned' : `pinned to core ${core}`}`)
  run(['sync'])

  // GNU: the same deterministic choices as rookery (sorted, fixed mtime, owner 0), gzip -6 (its default).
  const gnuTar = join(dir, 'gnu.tar.gz')
  const gnuPack = run(['tar', '--sort=name', '--mtime=2000-01-01 00:00:00Z', '--owner=0', '--group=0', '--numeric-owner', '--exclude=.git', '-czf', gnuTar, '-C', tree, '.'], { core })
  const gnuHash = run(['sha256sum', gnuTar], { core })
  run(['sync'])
  const rk = JSON.parse(run([NODE, WORKER, 'pack', tree, join(dir, 'rookery.tar.gz')], { core }).stdout) as { packMs: number; hashMs: number; files: number; bytes: number }
  if (rk.files !== files || rk.bytes !== bytes) throw new Error(`rookery packed ${rk.files} files / ${rk.bytes} bytes, expected ${files} / ${bytes}`)
  const sizes = { gnu: (await stat(gnuTar)).size, rookery: (await stat(join(dir, 'rookery.tar.gz'))).size }
  run(['sync'])

  await rm(tree, { recursive: true, force: true }) // room for two extractions
  await mkdir(join(dir, 'gnu-out'))
  const gnuExtract = run(['tar', '-xzf', gnuTar, '-C', join(dir, 'gnu-out'), '--no-same-owner'], { core })
  await rm(join(dir, 'gnu-out'), { recursive: true, force: true })
  run(['sync'])
  const rkx = JSON.parse(run([NODE, WORKER, 'extract', join(dir, 'rookery.tar.gz'), join(dir, 'rookery-out')], { core }).stdout) as { extractMs: number; files: number; bytes: number }
  if (rkx.files !== files || rkx.bytes !== bytes) throw new Error(`rookery extracted ${rkx.files} files / ${rkx.bytes} bytes, expected ${files} / ${bytes}`)
  await rm(join(dir, 'rookery-out'), { recursive: true, force: true })

  // Small files only, as in node_modules: here the cost per file, not per byte, sets the pace. Both sides
  // extract the same tarball (rookery's).
  const smallCount = Number(args['small-files'])
  const small = await writeSmallFiles(join(dir, 'small'), textCorpus(4 * MiB), 16, (files) => files >= smallCount)
  run([NODE, WORKER, 'pack', join(dir, 'small'), join(dir, 'small.tar.gz')], { core })
  await rm(join(dir, 'small'), { recursive: true, force: true })
  run(['sync'])
  await mkdir(join(dir, 'gnu-small'))
  const gnuSmall = run(['tar', '-xzf', join(dir, 'small.tar.gz'), '-C', join(dir, 'gnu-small'), '--no-same-owner'], { core })
  await rm(join(dir, 'gnu-small'), { recursive: true, force: true })
  run(['sync'])
  const rkSmall = JSON.parse(run([NODE, WORKER, 'extract', join(dir, 'small.tar.gz'), join(dir, 'rookery-small')], { core }).stdout) as { extractMs: number; files: number; bytes: number }
  if (rkSmall.files !== small.files || rkSmall.bytes !== small.bytes) throw new Error(`rookery extracted ${rkSmall.files} files / ${rkSmall.bytes} bytes of the small files, expected ${small.files} / ${small.bytes}`)

  const row = (step: string, gnuMs: number, rkMs: number, of = bytes) => [step, fmt(mbps(of, gnuMs), 1), fmt(mbps(of, rkMs), 1), (gnuMs / rkMs).toFixed(2), `${(gnuMs / 1000).toFixed(1)} s`, `${(rkMs / 1000).toFixed(1)} s`]
  console.log()
  printTable([
    ['step', 'GNU MB/s', 'rookery MB/s', 'rookery/GNU', 'GNU time', 'rookery time'],
    row('pack (tar + gzip -6)', gnuPack.ms, rk.packMs),
    row('sha256 of the tarball', gnuHash.ms, rk.hashMs),
    row('pack + sha256', gnuPack.ms + gnuHash.ms, rk.packMs + rk.hashMs),
    row('extract (gunzip + untar)', gnuExtract.ms, rkx.extractMs),
    row(`extract ${small.files} small files`, gnuSmall.ms, rkSmall.extractMs, small.bytes),
  ])
  console.log(`\n# tarballs: GNU ${fmt(sizes.gnu / 1e6, 1)} MB, rookery ${fmt(sizes.rookery / 1e6, 1)} MB (of ${fmt(bytes / 1e6, 1)} MB in ${files} files); GNU times include process start, rookery's are measured inside its process; the small files: ${fmt(small.bytes / 1e6, 1)} MB in ${small.files} files of 1-16 KiB, 100 per directory`)
})
