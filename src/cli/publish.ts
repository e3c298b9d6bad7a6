import { createReadStream } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import type { Command } from 'commander'
import { formatBytes } from '../config/units.ts'
import { releaseUrls } from '../manifest/manifest.ts'
import { assertSafeName, tarballName } from '../release/names.ts'
import { sha256File } from '../release/hash.ts'
import { packDirectory } from '../release/pack.ts'
import { makeTorrent } from '../release/torrent.ts'
import { readFile } from 'node:fs/promises'
import { RefusedError, UsageError } from '../errors.ts'
import { parsePrivateKey, signRelease } from '../release/sign.ts'
import { callApi, publishToken, serverUrl } from './api-client.ts'
import { progressLine } from './progress.ts'
import { parsePercent } from './rollout.ts'

interface PublishFlags {
  app: string
  tag: string
  server?: string
  activate: boolean
  sign?: string
  canary?: string
  group?: string[]
}

export function registerPublish(program: Command): void {
  program
    .command('publish')
    .description('pack DIR into a release tarball, make its torrent and publish it as APP TAG')
    .argument('<dir>', 'directory to release (.git is skipped)')
    .requiredOption('--app <name>', 'app name')
    .requiredOption('--tag <tag>', 'release tag, e.g. v42')
    .option('--server <url>', 'rookery server (default $ROOKERY_SERVER or http://127.0.0.1:8998)')
    .option('--no-activate', 'publish without making it the current release')
    .option('--canary <percent>', 'start a staged rollout to this share of hosts instead of making it current (e.g. 10%)')
    .option('--group <name...>', 'start a staged rollout to these host groups instead of making it current')
    .option('--sign <keyfile>', 'sign the release with this Ed25519 private key (see `rookery keygen`)')
    .addHelpText('after', '\nThe publish token is read from ROOKERY_TOKEN.')
    .action(async (dir: string, flags: PublishFlags) => publish(dir, flags))
}

async function publish(dir: string, flags: PublishFlags): Promise<void> {
  const app = assertSafeName('app', flags.app)
  const tag = assertSafeName('tag', flags.tag)
  const server = serverUrl(flags.server)
  const token = publishToken()
  const signingKey = flags.sign ? parsePrivateKey(await readKeyFile(flags.sign), flags.sign) : undefined
  // The torrent carries the server's public URLs (tracker, webseed): ask the server for them first.
  const info = await callApi(server, 'GET', '/api/v1/info')
  const name = tarballName(app, tag)
  const urls = releaseUrls(String(info.public_url), app, tag, name)

  const work = await mkdtemp(join(tmpdir(), 'rookery-publish-'))
  try {
    const tarball = join(work, name)
    const packing = progressLine(`packing ${dir}`)
    const packed = await packDirectory(dir, tarball, { onProgress: (done, total) => packing.update(done, total) })
    packing.done()
    const sha256 = await sha256File(tarball)
    const torrent = await makeTorrent(tarball, { name, announce: String(info.announce_url), webseed: urls.tarball })
    const size = (await stat(tarball)).size
    const known = await publishedRelease(server, app, tag)
    if (known && known.sha256 !== sha256) {
      throw new RefusedError('ROOKERY_TAG_EXISTS', `${app} ${tag} is already published with other content (sha256 ${known.sha256}, this build ${sha256}): publish a new tag`)
    }

    const signature = signingKey
      ? signRelease({ app, tag, sha256, infohash: torrent.infoHash, size, signed_at: new Date().toISOString() }, signingKey)
      : undefined
    const uploading = progressLine('uploading')
    let sent = 0
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sent += chunk.length
        uploading.update(sent, size)
        cb(null, chunk)
      },
    })
    const query = new URLSearchParams()
    if (!flags.activate) query.set('activate', 'false')
    if (flags.canary !== undefined) query.set('rollout_percent', String(parsePercent(flags.canary)))
    for (const group of flags.group ?? []) query.append('rollout_group', group)
    const answer = await callApi(server, 'PUT', `/api/v1/releases/${encodeURIComponent(app)}/${encodeURIComponent(tag)}${query.size ? `?${query}` : ''}`, {
      token,
      body: createReadStream(tarball).pipe(meter),
      headers: {
        'content-type': 'application/gzip',
        'content-length': String(size),
        'x-rookery-sha256': sha256,
        'x-rookery-infohash': torrent.infoHash,
        ...(signature ? { 'x-rookery-signature': `${signature.key_id} ${signature.signed_at} ${signature.value}` } : {}),
      },
    })
    uploading.done()
    const verb = answer.created ? 'published' : 'already published'
    const signed = signature ? `, signed by ${signature.key_id}` : ''
    const rollout = answer.rollout as { tag: string; percent?: number; groups?: string[] } | null
    const staged = rollout?.tag === tag ? `, rollout to ${[rollout.percent !== undefined ? `${rollout.percent}%` : '', ...(rollout.groups ?? [])].filter(Boolean).join(', ')}` : ''
    process.stdout.write(
      `${verb} ${app} ${tag}: ${formatBytes(size)} (${packed.files} files, ${formatBytes(packed.bytes)}), sha256 ${sha256}, infohash ${torrent.infoHash}${signed}, current ${String(answer.current)}${staged}\n`,
    )
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** The manifest's entry for app/tag, if published: a conflicting tag is refused before uploading anything. */
async function publishedRelease(server: string, app: string, tag: string): Promise<{ sha256: string } | undefined> {
  const manifest = (await callApi(server, 'GET', '/manifest')) as { apps?: Record<string, { releases?: Array<{ tag: string; sha256: string }> }> }
  return manifest.apps?.[app]?.releases?.find((r) => r.tag === tag)
}

async function readKeyFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read signing key ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`)
  }
}
