/**
 * Manifest benchmark: conditional GETs (If-None-Match -> 304) per second against `rookery server` and
 * against nginx (Debian) serving the same manifest bytes with the same ETag, on loopback, one core each:
 * the server on one core, wrk on the other. Two modes: keep-alive connections, and a new connection per
 * request (what agents polling every 10 s mostly do). Rounds alternate nginx and rookery; the best round
 * of each counts. Target: rookery >= 0.5 x nginx.
 *
 *   npm run bench:manifest -- [--seconds 10] [--connections 50] [--rounds 2]
 */
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { CORES, NODE, ensureDebianTools, wrk, type WrkResult, fmt, freePort, machineNote, printTable, Proc, publish, run, runBench, startServer, waitFor, workDir } from './common.ts'

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '2' },
  },
})

/** A GET with If-None-Match must answer 304 with the same ETag; a plain GET the same bytes. */
async function check(url: string, etag: string, bytes: Buffer, who: string): Promise<void> {
  const conditional = await fetch(url, { headers: { 'If-None-Match': etag } })
  if (conditional.status !== 304 || conditional.headers.get('etag') !== etag) {
    throw new Error(`${who}: If-None-Match answered ${conditional.status} with ETag ${conditional.headers.get('etag')}, expected 304 and ${etag}`)
  }
  const plain = await fetch(url)
  const body = Buffer.from(await plain.arrayBuffer())
  if (plain.status !== 200 || !body.equals(bytes) || plain.headers.get('etag') !== etag) throw new Error(`${who}: GET does not serve the same manifest bytes and ETag`)
}

async function startNginx(dir: string, bytes: Buffer, etag: string): Promise<{ proc: Proc; url: string }> {
  const port = await freePort()
  await mkdir(join(dir, 'www'), { recursive: true })
  await mkdir(join(dir, 'tmp'))
  await writeFile(join(dir, 'www', 'manifest.json'), bytes)
  // The ETag holds only hex and quotes (checked below), so it can sit in a single-quoted nginx string.
  if (!/^"[0-9A-Za-z_-]+"$/.test(etag)) throw new Error(`unexpected ETag form ${etag}`)
  const conf = `
worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${port};
    root ${dir}/www;
    location = /manifest {
      default_type application/json;
      etag off;
      if_modified_since off;
      add_header ETag '${etag}' always;
      add_header Cache-Control 'no-cache' always;
      if ($http_if_none_match = '${etag}') { return 304; }
      try_files /manifest.json =404;
    }
  }
}
`
  await writeFile(join(dir, 'nginx.conf'), conf)
  const proc = new Proc(['nginx', '-c', join(dir, 'nginx.conf'), '-p', dir], join(dir, 'nginx.log'), { core: CORES.server })
  const url = `http://127.0.0.1:${port}/manifest`
  await waitFor('nginx to answer', () => fetch(url).then((r) => r.ok), 10_000)
  return { proc, url }
}

/**
 * For attribution only: a bare node:http server on the same runtime answering the same 304, so the table
 * shows how much of the gap to nginx is Node's HTTP stack and how much is rookery's own request path.
 */
async function startBareNode(dir: string, bytes: Buffer, etag: string): Promise<{ proc: Proc; url: string }> {
  const port = await freePort()
  await writeFile(join(dir, 'bare-manifest.json'), bytes)
  const program = `
    const bytes = require('node:fs').readFileSync(${JSON.stringify(join(dir, 'bare-manifest.json'))})
    const etag = ${JSON.stringify(etag)}
    require('node:http').createServer((req, res) => {
      const headers = { ETag: etag, 'Cache-Control': 'no-cache' }
      if (req.headers['if-none-match'] === etag) { res.writeHead(304, headers); return void res.end() }
      res.writeHead(200, { ...headers, 'Content-Type': 'application/json', 'Content-Length': bytes.length })
      res.end(bytes)
    }).listen(${port}, '127.0.0.1')`
  const proc = new Proc([NODE, '--input-type=commonjs', '-e', program], join(dir, 'bare-node.log'), { core: CORES.server })
  const url = `http://127.0.0.1:${port}/manifest`
  await waitFor('the bare node server to answer', () => fetch(url).then((r) => r.ok), 10_000)
  return { proc, url }
}

await runBench(async () => {
  ensureDebianTools({ wrk: 'wrk', nginx: 'nginx-light' })
  console.log(machineNote())
  const dir = await workDir('manifest')
  await chmod(dir, 0o755) // nginx's worker runs as an unprivileged user and must read the file

  const { url: serverUrl } = await startServer(join(dir, 'rookery'), { core: CORES.server })
  // A manifest of realistic size: 3 apps with 3 kept releases each.
  const source = await mkdtemp(join(dir, 'src-'))
  await writeFile(join(source, 'app.txt'), 'hello\n')
  for (const app of ['web', 'api', 'worker']) for (const tag of ['v1', 'v2', 'v3']) await publish(serverUrl, source, app, tag)

  const res = await fetch(`${serverUrl}/manifest`)
  const bytes = Buffer.from(await res.arrayBuffer())
  const etag = res.headers.get('etag')!
  const rookeryUrl = `${serverUrl}/manifest`
  const nginx = await startNginx(join(dir, 'nginx'), bytes, etag)
  await check(rookeryUrl, etag, bytes, 'rookery')
  await check(nginx.url, etag, bytes, 'nginx')
  const bare = await startBareNode(dir, bytes, etag)
  await check(bare.url, etag, bytes, 'bare node:http')
  console.log(`# manifest: ${bytes.length} bytes, ETag ${etag}; server on core ${CORES.server}, wrk on core ${CORES.load} (-t1 -c${args.connections}), ${args.seconds} s per run, best of ${args.rounds} alternating rounds`)

  const rows: Array<Array<string | number>> = [['mode', 'nginx req/s', 'rookery req/s', 'rookery/nginx', 'target >= 0.5', 'p50 nginx', 'p50 rookery', 'bare node:http req/s', 'rookery/bare']]
  let keepAliveRatio = 0
  for (const close of [false, true]) {
    const best: Record<string, WrkResult | undefined> = {}
    for (let round = 0; round < Number(args.rounds); round++) {
      for (const [who, url] of [['nginx', nginx.url], ['rookery', rookeryUrl], ['bare', bare.url]] as const) {
        const headers = [`If-None-Match: ${etag}`, ...(close ? ['Connection: close'] : [])]
        const r = wrk(url, { seconds: Number(args.seconds), connections: Number(args.connections), headers })
        console.log(`# round ${round + 1} ${close ? 'close     ' : 'keep-alive'} ${who.padEnd(7)} ${fmt(r.rps)} req/s, p50 ${r.p50}${r.errors ? `, ${r.errors} errors (${r.errorText}): not counted` : ''}`)
        // A round with errors (e.g. a stall while other jobs hog the core) is shown but does not count.
      if (r.errors > 0) continue
        if (!best[who] || r.rps > best[who]!.rps) best[who] = r
      }
    }
    for (const who of ['nginx', 'rookery', 'bare']) if (!best[who]) throw new Error(`${who}: no round without errors; rerun with more --rounds when the machine is quieter`)
    const ratio = best.rookery!.rps / best.nginx!.rps
    if (!close) keepAliveRatio = ratio
    const vsBare = best.rookery!.rps / best.bare!.rps
    rows.push([close ? 'new connection per request' : 'keep-alive', fmt(best.nginx!.rps), fmt(best.rookery!.rps), ratio.toFixed(2), ratio >= 0.5 ? 'met' : 'NOT met', best.nginx!.p50, best.rookery!.p50, fmt(best.bare!.rps), vsBare.toFixed(2)])
  }
  console.log()
  printTable(rows)
  console.log(`\nmanifest 304/s rookery/nginx (keep-alive): ${keepAliveRatio.toFixed(2)} (target >= 0.5)`)
})
