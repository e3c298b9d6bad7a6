/**
 * `npm run demo`: a local rookery fleet on loopback. Starts a server and three agents as real
 * processes, publishes a generated 32 MiB release, waits until every host runs it, publishes a second
 * one, rolls back, prints what happened, and cleans up. Pass --keep to leave the files for a look.
 */
import { readFile, mkdtemp, readlink, rm, writeFile, appendFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Daemon, freePort, runRookery, waitFor } from '../test/helpers/processes.ts'
import { makeReleaseTree } from '../test/helpers/trees.ts'

const HOSTS = 3
const TOKEN = 'demo-token-0123456789abcdef'
const HOOK = '#!/bin/sh\necho "post-install: $ROOKERY_APP $ROOKERY_TAG (previous: ${ROOKERY_PREVIOUS_TAG:-none}) in $(pwd)"\n'
const keep = process.argv.includes('--keep')

const root = await mkdtemp(join(tmpdir(), 'rookery-demo-'))
const port = await freePort()
const server = `http://127.0.0.1:${port}`
const daemons: Daemon[] = []
const say = (line: string) => process.stdout.write(`${line}\n`)

try {
  await writeFile(join(root, 'server.yaml'), [
    `listen: 127.0.0.1:${port}`,
    `public_url: ${server}`,
    `data_dir: ${join(root, 'server')}`,
    `publish_tokens: [${TOKEN}]`,
    'torrent_port: 0',
    'origin_upload_limit: 8MiB',
  ].join('\n'))
  daemons.push(new Daemon(['server', '--config', join(root, 'server.yaml')], join(root, 'server.log')))
  await waitFor('the server', () => fetch(`${server}/healthz`).then((r) => r.ok, () => false), 20_000)
  say(`server on ${server} (data in ${root}/server)`)

  const source = join(root, 'build')
  await makeReleaseTree(source, 32 * 2 ** 20, HOOK)
  const publish = async (tag: string) => {
    const r = await runRookery(['publish', source, '--app', 'web', '--tag', tag, '--server', server], { ROOKERY_TOKEN: TOKEN })
    if (r.code !== 0) throw new Error(`publish failed: ${r.stderr}`)
    say(`$ rookery publish ${source} --app web --tag ${tag}\n  ${r.stdout.trim()}`)
  }
  await publish('v1')

  const hosts = Array.from({ length: HOSTS }, (_, i) => join(root, `host${i}`))
  for (const [i, host] of hosts.entries()) {
    await writeFile(join(root, `agent${i}.yaml`), [
      `server: ${server}`,
      `state_dir: ${host}/state`,
      'schedule: "*/2 * * * * *"',
      'seed_window: 1m',
      'torrent_port: 0',
      `host_id: host${i}`,
      'apps:',
      '  - name: web',
      `    deploy_to: ${host}/srv/web`,
      '    post_install: ./bin/post-install',
    ].join('\n'))
    daemons.push(new Daemon(['agent', '--config', join(root, `agent${i}.yaml`)], join(root, `agent${i}.log`)))
  }
  const allOn = (tag: string) => waitFor(`every host on ${tag}`, async () => {
    const tags = await Promise.all(hosts.map((h) => readlink(join(h, 'srv/web/current')).catch(() => '')))
    return tags.every((t) => t.endsWith(`/releases/${tag}`))
  }, 120_000)

  let started = Date.now()
  await allOn('v1')
  say(`${HOSTS} agents started; all on v1 after ${Date.now() - started} ms`)
  for (const [i, agent] of daemons.slice(1).entries()) {
    const complete = (await agent.logLines()).find((l) => l.msg === 'download complete')
    const hook = (await agent.logLines()).find((l) => l.msg === 'hook output')
    say(`  host${i}: downloaded in ${complete?.download_ms} ms, ${mib(complete?.from_peers)} from the swarm, ${mib(complete?.from_webseed)} from the webseed; ${hook?.line}`)
  }
  const stats = JSON.parse(await (await fetch(`${server}/api/v1/stats`)).text()) as Record<string, number>
  say(`  the server uploaded ${mib((stats.origin_seeder_uploaded_bytes ?? 0) + (stats.webseed_bytes ?? 0))}: the rest came from peers`)

  await appendFile(join(source, 'README.txt'), 'v2\n')
  await publish('v2')
  started = Date.now()
  await allOn('v2')
  say(`all on v2 ${Date.now() - started} ms after the publish (agents poll every 2 s)`)

  const r = await runRookery(['rollback', '--app', 'web', '--to', 'v1', '--server', server], { ROOKERY_TOKEN: TOKEN })
  say(`$ rookery rollback --app web --to v1\n  ${r.stdout.trim()}`)
  started = Date.now()
  await allOn('v1')
  say(`all back on v1 ${Date.now() - started} ms later, without downloading`)
  say(`layout of host0: ${(await readlink(join(hosts[0]!, 'srv/web/current')))} <- current`)
  say(`agent state: ${(await readFile(join(hosts[0]!, 'state/state.json'), 'utf8')).length} bytes in ${hosts[0]}/state/state.json`)
} finally {
  await Promise.all(daemons.map((d) => d.stop()))
  if (keep) say(`files kept in ${root}`)
  else await rm(root, { recursive: true, force: true })
}

function mib(bytes: unknown): string {
  return `${(Number(bytes ?? 0) / 2 ** 20).toFixed(1)} MiB`
}
