import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import type { Host } from './netns.ts'
import type { FleetContext, Phase, PhaseResult } from './fleet.ts'
import { clientUsage, NsProcess } from './procs.ts'
import { DEBIAN_PYTHON } from './tools.ts'

const LT_CLIENT = fileURLToPath(new URL('./lt-client.py', import.meta.url))

async function sha256(file: string): Promise<string | null> {
  const hash = createHash('sha256')
  try {
    await pipeline(createReadStream(file), hash)
    return hash.digest('hex')
  } catch {
    return null
  }
}

/** Lines of a log matching `pattern`: how many, and the first (aria2 writes progress with \r). */
async function grepLog(file: string, pattern: RegExp): Promise<{ count: number; first: string | null }> {
  const lines = (await readFile(file, 'utf8').catch(() => '')).split(/[\r\n]+/).filter((l) => pattern.test(l))
  return { count: lines.length, first: lines[0] ?? null }
}

const mtime = (file: string) => stat(file).then((s) => s.mtimeMs, () => null)

interface Client {
  /** The command run in the host's namespace; `dir` is the host's empty download directory. */
  argv: (host: Host, dir: string) => string[]
  /** A line in the client's log saying an announce failed (then the swarm is not measured, only the webseed). */
  trackerError?: RegExp
  /** Epoch ms when the host had the whole file, or null while it has not. */
  doneAt: (proc: NsProcess, dir: string) => Promise<number | null>
}

/**
 * Starts one client per host at the same moment, waits until each has the whole tarball, then stops
 * them (the swarm clients seed until then, so late hosts still have peers) and checks every file's SHA-256.
 */
async function runClients(ctx: FleetContext, name: Phase, label: string, client: Client): Promise<PhaseResult> {
  const { agents, workDir, release, opts } = ctx
  const dirs = agents.map((h) => join(workDir, h.ns, name))
  await Promise.all(dirs.map((d) => mkdir(d, { recursive: true })))
  const sentBefore = await ctx.serverSent()
  const serverCpuBefore = ctx.serverCpuSeconds()
  const start = Date.now()
  const procs = agents.map((h, i) => new NsProcess(h.ns, client.argv(h, dirs[i]!), join(dirs[i]!, '..', `${name}.log`)))
  const bound = (release.size * 8) / (opts.rateMbit * 1e6)
  const deadline = start + (1.5 * agents.length * bound + 60) * 1000
  const done: Array<number | null> = procs.map(() => null)
  for (;;) {
    for (const p of procs) p.usage() // curl exits when done: keep its last CPU figure
    await Promise.all(procs.map(async (p, i) => (done[i] ??= await client.doneAt(p, dirs[i]!))))
    if (done.every((d, i) => d !== null || !procs[i]!.running) || Date.now() > deadline) break
    await new Promise((r) => setTimeout(r, 250))
  }
  const end = Math.max(...done.map((d) => d ?? Date.now()))
  const clients = clientUsage(procs)
  const sentAfter = await ctx.serverSent()
  const serverCpu = ctx.serverCpuSeconds() - serverCpuBefore
  await Promise.all(procs.map((p) => p.stop(10_000)))
  const file = basename(new URL(release.tarballUrl).pathname)
  const hashes = await Promise.all(dirs.map((d, i) => (done[i] === null ? null : sha256(join(d, file)))))
  // Downloads are not needed after the check; 24 x 64 MiB per baseline adds up.
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  const grep = client.trackerError ? await Promise.all(agents.map((h) => grepLog(join(workDir, h.ns, `${name}.log`), client.trackerError!))) : []
  const trackerErrors = grep.map((g) => g.count)
  const failing = trackerErrors.filter((n) => n > 0).length
  if (failing > 0) opts.log(`# ${name}: announces failed on ${failing} of ${agents.length} hosts: not a swarm (see ${workDir}/<host>/${name}.log)`)
  const missing = done.filter((d) => d === null).length
  if (missing > 0) opts.log(`# ${name}: ${missing} hosts did not finish (logs: ${workDir}/<host>/${name}.log)`)
  return {
    name,
    label,
    seconds: done.map((d) => (d === null ? null : Math.round(d - start) / 1000)),
    wall_seconds: Math.round(end - start) / 1000,
    cpu: ctx.cpu.summary(start, end),
    clients,
    server_cpu_seconds: Math.round(serverCpu * 10) / 10,
    server_sent_bytes: sentAfter - sentBefore,
    identical: hashes.every((h) => h === null || h === release.sha256) && hashes.some((h) => h !== null),
    extra: { sha256_ok: hashes.map((h) => h === release.sha256), tracker_errors: trackerErrors, tracker_error_sample: grep.find((g) => g.first)?.first ?? null },
  }
}

/** The centralized deploy: every host GETs the tarball from the server's webseed URL at once. */
export function runHttp(ctx: FleetContext): Promise<PhaseResult> {
  const file = basename(new URL(ctx.release.tarballUrl).pathname)
  return runClients(ctx, 'http', 'central HTTP (curl)', {
    argv: (_h, dir) => ['curl', '-sS', '--fail', '--max-time', '3600', '-o', join(dir, file), ctx.release.tarballUrl],
    doneAt: async (p) => (p.exitedAt !== undefined && p.child.exitCode === 0 ? p.exitedAt : null),
  })
}

/**
 * aria2c on the same .torrent (tracker: the rookery server, seeder: its origin seeder; aria2 also uses the
 * torrent's webseed URL, as any client would). It seeds after completing until the phase ends.
 */
export async function runAria2(ctx: FleetContext): Promise<PhaseResult> {
  const hook = join(ctx.workDir, 'aria2-done.sh')
  // aria2 runs this when the download is complete, before seeding ($3 is the file's path): its mtime is
  // the completion time.
  await writeFile(hook, '#!/bin/sh\n: > "$3.done"\n')
  await chmod(hook, 0o755)
  const file = basename(new URL(ctx.release.tarballUrl).pathname)
  return runClients(ctx, 'aria2', 'aria2c swarm', {
    argv: (_h, dir) => [
      'aria2c',
      `--dir=${dir}`,
      '--seed-ratio=0.0', // seed until stopped
      '--enable-dht=false',
      '--enable-dht6=false',
      '--bt-enable-lpd=false',
      '--enable-peer-exchange=false',
      '--disable-ipv6=true',
      '--listen-port=6882',
      '--file-allocation=none',
      `--on-bt-download-complete=${hook}`,
      '--console-log-level=warn',
      '--summary-interval=0',
      ctx.release.torrentFile,
    ],
    trackerError: /Exception: .*(Tracker returned failure|announce)/,
    doneAt: (_p, dir) => mtime(join(dir, `${file}.done`)),
  })
}

/** python3-libtorrent (rasterbar) with its defaults, minus DHT/LSD/UPnP/NAT-PMP and uTP (TCP, like rookery). */
export function runLibtorrent(ctx: FleetContext): Promise<PhaseResult> {
  return runClients(ctx, 'libtorrent', 'libtorrent swarm', {
    argv: (h, dir) => [DEBIAN_PYTHON, LT_CLIENT, ctx.release.torrentFile, dir, `${h.addr}:6883`, join(dir, 'done')],
    trackerError: /^tracker error:/,
    doneAt: (_p, dir) => mtime(join(dir, 'done')),
  })
}
