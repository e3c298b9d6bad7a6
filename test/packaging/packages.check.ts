// The packaging stage (`npm run test:packaging`, run by .ci/run after `npm test`; not matched by
// test/**/*.test.ts because it needs root, apt-installed tools and a few minutes):
// builds the .deb and .rpm twice and compares them (reproducible), inspects and lints them, installs the
// .rpm into a scratch root with `rpm --root`, and installs the .deb into a Debian root booted with systemd
// under systemd-nspawn: units and user, a real publish and deploy with a hook running as another user,
// an upgrade in the middle of a running hook, the boot unit, and purge.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const repo = join(import.meta.dirname, '..', '..')
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }
const version = pkg.version
const upgradeVersion = `${version}+upgrade1` // sorts after `version` for dpkg
const work = mkdtempSync(join(tmpdir(), 'rookery-packaging-'))
const node = process.execPath
const timings: string[] = []

function sh(file: string, args: string[], options: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {}): string {
  const result = spawnSync(file, args, {
    encoding: 'utf8',
    env: { ...process.env, ...options.env },
    timeout: options.timeoutMs ?? 300_000,
    input: options.input ?? '',
    maxBuffer: 64 * 1024 * 1024,
  })
  if (result.error) throw new Error(`${file} ${args.join(' ')}: ${result.error.message}`)
  if (result.status !== 0) {
    throw new Error(`${file} ${args.join(' ')} exited ${result.status}:\n${(result.stdout + result.stderr).trim().split('\n').slice(-30).join('\n')}`)
  }
  return result.stdout
}

async function timed<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  const started = Date.now()
  const value = await fn()
  timings.push(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return value
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex')
}

function build(out: string, env: Record<string, string> = {}): { deb: string; rpm: string } {
  sh(node, [join(repo, 'scripts/package.ts')], { env: { ROOKERY_PKG_OUT: out, ...env }, timeoutMs: 600_000 })
  const v = env.ROOKERY_PKG_VERSION ?? version
  return { deb: join(out, `rookery_${v}_amd64.deb`), rpm: join(out, `rookery-${v}-1.x86_64.rpm`) }
}

let first: { deb: string; rpm: string }
let upgrade: { deb: string; rpm: string }
let rootfsTar: string

before(async () => {
  if (process.getuid?.() !== 0) throw new Error('the packaging test needs root (debootstrap, rpm --root, systemd-nspawn); run it as root')
  for (const tool of ['dpkg-deb', 'rpmbuild', 'rpm', 'lintian', 'rpmlint', 'debootstrap', 'systemd-nspawn', 'nsenter', 'strip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      throw new Error(`${tool} is missing: apt-get install dpkg rpm lintian rpmlint debootstrap systemd-container util-linux binutils`)
    }
  }
  rootfsTar = await timed('Debian root (debootstrap or cache)', () => sh('bash', [join(import.meta.dirname, 'rootfs.sh')], { timeoutMs: 900_000 }).trim())
})

after(() => {
  stopContainer()
  rmSync(work, { recursive: true, force: true })
  process.stdout.write(timings.map((t) => `# ${t}\n`).join(''))
})

/** What a package holds, independent of its compression: files with modes, owners, times and bytes; scripts. */
function debContents(deb: string): string {
  return ['--fsys-tarfile', '--ctrl-tarfile'].map((part) => createHash('sha256').update(spawnSync('dpkg-deb', [part, deb], { maxBuffer: 512 * 1024 * 1024 }).stdout).digest('hex')).join(' ')
}
function rpmContents(rpm: string): string {
  const payload = createHash('sha256').update(spawnSync('rpm2cpio', [rpm], { maxBuffer: 512 * 1024 * 1024 }).stdout).digest('hex')
  return [payload, sh('rpm', ['-qp', '--dump', rpm]), sh('rpm', ['-qp', '--scripts', '--requires', '--info', rpm])].join('\n')
}

test('both packages build reproducibly', async () => {
  const prebuilt = process.env.ROOKERY_PACKAGING_PREBUILT // a `work` dir of an earlier run, to iterate on the container part
  if (prebuilt) {
    first = { deb: join(prebuilt, `a/rookery_${version}_amd64.deb`), rpm: join(prebuilt, `a/rookery-${version}-1.x86_64.rpm`) }
    upgrade = { deb: join(prebuilt, `c/rookery_${upgradeVersion}_amd64.deb`), rpm: join(prebuilt, `c/rookery-${upgradeVersion}-1.x86_64.rpm`) }
    return
  }
  // One commit, one SOURCE_DATE_EPOCH (the script's default is HEAD's time, which moves with new commits).
  const epoch = sh('git', ['-C', repo, 'log', '-1', '--format=%ct']).trim()
  first = await timed('build .deb (xz) and .rpm (zstd 9)', () => build(join(work, 'a'), { SOURCE_DATE_EPOCH: epoch }))
  for (const file of [first.deb, first.rpm]) {
    timings.push(`${file.split('/').pop()}: ${(statSync(file).size / 1048576).toFixed(1)} MiB`)
  }
  // The second build only compresses faster; what is inside must be the same, byte for byte.
  const fast = { SOURCE_DATE_EPOCH: epoch, ROOKERY_DEB_COMPRESSION: 'gzip', ROOKERY_RPM_ZSTD_LEVEL: '3' }
  const again = await timed('build again (gzip, zstd 3)', () => build(join(work, 'b'), fast))
  assert.equal(debContents(again.deb), debContents(first.deb), 'two builds of the same commit put different contents in the .deb')
  assert.equal(rpmContents(again.rpm), rpmContents(first.rpm), 'two builds of the same commit put different contents in the .rpm')
  upgrade = await timed('build upgrade', () => build(join(work, 'c'), { ...fast, ROOKERY_PKG_VERSION: upgradeVersion }))
})

test('.deb metadata and contents', () => {
  const info = sh('dpkg-deb', ['-I', first.deb])
  assert.match(info, /^ Package: rookery$/m)
  assert.match(info, new RegExp(`^ Version: ${version.replaceAll('.', '\\.')}$`, 'm'))
  assert.match(info, /^ Architecture: amd64$/m)
  assert.match(info, /^ Depends: .*libc6 \(>= 2\.28\).*util-linux/m)
  for (const script of ['postinst', 'prerm', 'postrm', 'md5sums']) assert.match(info, new RegExp(`\\b${script}\\b`))
  const listing = sh('dpkg-deb', ['-c', first.deb]).trim().split('\n')
  const paths = listing.map((line) => line.split(/\s+/).slice(5).join(' '))
  for (const path of [
    './usr/bin/rookery',
    './usr/lib/rookery/node',
    './usr/lib/rookery/rookery.mjs',
    './usr/lib/systemd/system/rookery-agent.service',
    './usr/lib/systemd/system/rookery-server.service',
    './usr/lib/systemd/system/rookery-boot.service',
    './usr/lib/sysusers.d/rookery.conf',
    './usr/share/rookery/agent.yaml',
    './usr/share/rookery/server.yaml',
    './usr/share/doc/rookery/copyright',
  ]) {
    assert.ok(paths.includes(path), `${path} is not in the .deb`)
  }
  // The live config is created by postinst, never shipped (an edited one must survive upgrades unprompted).
  assert.ok(!paths.some((p) => p.startsWith('./etc/rookery/')), 'the .deb ships files in /etc/rookery')
  assert.ok(listing.every((line) => line.split(/\s+/)[1] === 'root/root'), 'a file in the .deb is not owned by root/root')
  const conffiles = spawnSync('dpkg-deb', ['-f', first.deb, 'Conffiles'], { encoding: 'utf8' }).stdout.trim()
  assert.equal(conffiles, '', 'no conffiles expected')
})

test('.rpm metadata and contents', () => {
  const info = sh('rpm', ['-qpi', first.rpm])
  assert.match(info, /^Name\s*: rookery$/m)
  assert.match(info, new RegExp(`^Version\\s*: ${version.replaceAll('.', '\\.')}$`, 'm'))
  assert.match(info, /^Architecture: x86_64$/m)
  const files = sh('rpm', ['-qpl', first.rpm]).trim().split('\n')
  for (const path of ['/usr/bin/rookery', '/usr/lib/rookery/node', '/usr/lib/rookery/rookery.mjs', '/usr/lib/systemd/system/rookery-agent.service', '/usr/lib/sysusers.d/rookery.conf']) {
    assert.ok(files.includes(path), `${path} is not in the .rpm`)
  }
  const scripts = sh('rpm', ['-qp', '--scripts', first.rpm])
  assert.match(scripts, /postinstall scriptlet[\s\S]*systemd-sysusers rookery\.conf/)
  assert.match(scripts, /preuninstall scriptlet[\s\S]*disable --now/)
  assert.match(scripts, /postuninstall scriptlet[\s\S]*try-restart/)
})

test('lintian and rpmlint: nothing but the justified overrides', async () => {
  const lintian = await timed('lintian', () => spawnSync('lintian', ['--tag-display-limit', '0', first.deb], { encoding: 'utf8', timeout: 300_000 }))
  const lintianTags = (lintian.stdout + lintian.stderr).split('\n').filter((l) => /^[EWX]: /.test(l))
  assert.deepEqual(lintianTags, [], 'lintian found problems (fix them, or add a justified line to packaging/deb/lintian-overrides)')
  const rpmlint = await timed('rpmlint', () =>
    spawnSync('rpmlint', ['-c', join(repo, 'packaging/rpm/rpmlint.toml'), first.rpm], { encoding: 'utf8', timeout: 300_000 }),
  )
  const rpmlintTags = rpmlint.stdout.split('\n').filter((l) => /^rookery\.\S+: [EW]: /.test(l))
  assert.deepEqual(rpmlintTags, [], 'rpmlint found problems (fix them, or add a justified filter to packaging/rpm/rpmlint.toml)')
  assert.match(rpmlint.stdout, /0 errors, 0 warnings/)
})

test('.rpm into a scratch root: files, user, enabled units, config; erase disables', async () => {
  const root = join(work, 'rpmroot')
  await timed('rpm --root install and erase', () => {
    extractRoot(root)
    const rpm = (...args: string[]) => sh('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', ...args])
    rpm('--initdb')
    // The scratch root is Debian: its libraries are not in an rpm database, hence --nodeps.
    rpm('-i', '--nodeps', first.rpm)
    assert.equal(rpm('-q', 'rookery').trim(), `rookery-${version}-1.x86_64`)
    assert.equal(sh('chroot', [root, '/usr/bin/rookery', '--version']).trim(), version, 'the installed rookery does not run in the scratch root')
    assert.match(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^rookery:x:\d+:\d+:rookery server:\/var\/lib\/rookery\/server:\/usr\/sbin\/nologin$/m)
    const uid = Number(/^rookery:x:(\d+):/m.exec(readFileSync(join(root, 'etc/passwd'), 'utf8'))![1])
    assert.equal(statSync(join(root, 'var/lib/rookery/server')).uid, uid, '/var/lib/rookery/server is not owned by the rookery user')
    assert.equal(readFileSync(join(root, 'etc/rookery/agent.yaml'), 'utf8'), readFileSync(join(root, 'usr/share/rookery/agent.yaml'), 'utf8'))
    for (const unit of ['rookery-agent.service', 'rookery-server.service', 'rookery-boot.service']) {
      const link = join(root, 'etc/systemd/system/multi-user.target.wants', unit)
      assert.ok(lstatSync(link).isSymbolicLink(), `${unit} is not enabled`)
    }
    rpm('-e', 'rookery')
    assert.ok(!existsSync(join(root, 'usr/bin/rookery')), 'rpm -e left /usr/bin/rookery')
    for (const unit of ['rookery-agent.service', 'rookery-server.service', 'rookery-boot.service']) {
      assert.ok(!existsSync(join(root, 'etc/systemd/system/multi-user.target.wants', unit)), `${unit} is still enabled after rpm -e`)
    }
  })
  rmSync(root, { recursive: true, force: true })
})

// --- the .deb in a booted Debian ------------------------------------------------------------------------

let container: { proc: ChildProcess; root: string; pid?: number } | undefined

function extractRoot(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  sh('mkdir', ['-p', dir])
  sh('tar', ['-C', dir, '-xf', rootfsTar], { timeoutMs: 300_000 })
}

/** systemd-nspawn with the Debian root as a booted system; its network is its own loopback only. */
async function startContainer(root: string): Promise<number> {
  const name = `rookery-test-${process.pid}`
  const proc = spawn('systemd-nspawn', ['-D', root, '--boot', '--register=no', '--keep-unit', '--console=pipe', '--private-network', `--machine=${name}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  container = { proc, root }
  let output = ''
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()))
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()))
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`systemd-nspawn exited ${proc.exitCode}: ${output.slice(-2000)}`)
    const pid = initPid(proc.pid!)
    if (pid) {
      container.pid = pid
      const state = spawnSync('nsenter', ['-t', String(pid), '-a', 'systemctl', 'is-system-running', '--wait'], { encoding: 'utf8', timeout: 60_000 }).stdout.trim()
      if (state === 'running' || state === 'degraded') return pid
    }
    await sleep(200)
  }
  throw new Error(`the container did not boot within 60 s: ${output.slice(-2000)}`)
}

/** The container's systemd: the first descendant of systemd-nspawn named systemd. */
function initPid(parent: number): number | undefined {
  const children = (pid: number) =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .map(Number)
      .filter((p) => {
        try {
          return Number(readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]) === pid
        } catch {
          return false
        }
      })
  let level = children(parent)
  for (let depth = 0; depth < 3 && level.length > 0; depth++) {
    for (const pid of level) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd') return pid
      } catch {
        // gone
      }
    }
    level = level.flatMap(children)
  }
  return undefined
}

function stopContainer(): void {
  if (!container) return
  const { proc, pid } = container
  if (proc.exitCode === null && pid) spawnSync('nsenter', ['-t', String(pid), '-a', 'systemctl', 'poweroff'], { timeout: 10_000 })
  const deadline = Date.now() + 20_000
  while (proc.exitCode === null && Date.now() < deadline) spawnSync('sleep', ['0.2'])
  if (proc.exitCode === null) {
    proc.kill('SIGKILL')
    spawnSync('sleep', ['1'])
  }
  rmSync(container.root, { recursive: true, force: true })
  container = undefined
}

// The container's commands get a plain environment, not this test's (NODE_OPTIONS and the like).
const cleanEnv = ['env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8']

/** A command inside the container, through sh. */
function inside(command: string, timeoutMs = 120_000): string {
  return sh('nsenter', ['-t', String(container!.pid), '-a', ...cleanEnv, 'sh', '-c', command], { timeoutMs })
}

function insideStatus(command: string): { status: number | null; output: string } {
  const r = spawnSync('nsenter', ['-t', String(container!.pid), '-a', ...cleanEnv, 'sh', '-c', command], { encoding: 'utf8', timeout: 120_000 })
  return { status: r.status, output: (r.stdout + r.stderr).trim() }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

async function until(what: string, timeoutMs: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (check()) return
    await sleep(250)
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)
}

const token = 'packaging-test-token-0123456789'
const serverYaml = `listen: 127.0.0.1:8998
public_url: http://127.0.0.1:8998
publish_tokens: [${token}]
# Not the default 6881: the agent on this host, started by the install with the example config, has it.
torrent_port: 6891
announce_interval: 5s
`
// The admin's edit of the config the package created: it must survive the upgrade byte for byte.
const agentYaml = `# edited by the admin
server: http://127.0.0.1:8998
schedule: "* * * * * *"
torrent_port: 6882
seed_window: 5s
webseed_fallback: 2s
apps:
  - name: web
    deploy_to: /srv/web
    post_install: ./hook.sh
    hook_timeout: 60s
    user: hooker
`

/** A release directory with a hook that records who ran it, then sleeps `hookSeconds`. */
function release(dir: string, tag: string, hookSeconds: number): void {
  sh('mkdir', ['-p', dir])
  writeFileSync(join(dir, 'index.html'), `release ${tag}\n`.repeat(20000))
  writeFileSync(
    join(dir, 'hook.sh'),
    `#!/bin/sh
set -e
echo "$(id -un) $(id -Gn | tr ' ' ,) $HOME $ROOKERY_TAG" > /var/tmp/hook-started-${tag}
sleep ${hookSeconds}
echo done > /var/tmp/hook-done-${tag}
`,
    { mode: 0o755 },
  )
}

test('.deb in a Debian root booted with systemd: install, deploy, upgrade during a hook, boot unit, purge', async () => {
  const root = join(work, 'nspawn')
  await timed('extract Debian root', () => extractRoot(root))
  sh('cp', [first.deb, upgrade.deb, join(root, 'root/')])
  sh('mkdir', ['-p', join(root, 'etc/rookery')])
  // A server host: its config is there before the install, so the package starts the server too.
  writeFileSync(join(root, 'etc/rookery/server.yaml'), serverYaml)
  release(join(root, 'root/build-v1'), 'v1', 0)
  release(join(root, 'root/build-v2'), 'v2', 8)
  await timed('boot the container', () => startContainer(root))

  await timed('install, deploy, upgrade, boot unit, purge', async () => {
    try {
    // Install
    inside('useradd --create-home --user-group hooker && groupadd hookgrp && usermod -aG hookgrp hooker')
    inside(`dpkg -i /root/rookery_${version}_amd64.deb`)
    assert.match(inside('getent passwd rookery'), /^rookery:x:\d+:\d+:rookery server:\/var\/lib\/rookery\/server:\/usr\/sbin\/nologin$/m)
    assert.equal(inside('systemctl is-enabled rookery-agent.service rookery-server.service rookery-boot.service').trim(), 'enabled\nenabled\nenabled')
    await until('rookery-agent and rookery-server to be active', 20_000, () => insideStatus('systemctl is-active rookery-agent.service rookery-server.service').status === 0)
    assert.equal(inside('stat -c %U /var/lib/rookery/server').trim(), 'rookery')
    const owner = (unit: string) => inside(`stat -c %U /proc/$(systemctl show -P MainPID ${unit})`).trim()
    assert.equal(owner('rookery-agent.service'), 'root')
    assert.equal(owner('rookery-server.service'), 'rookery')
    assert.equal(inside('cat /etc/rookery/agent.yaml'), inside('cat /usr/share/rookery/agent.yaml'), 'postinst did not create agent.yaml from the example')

    const healthz = "/usr/lib/rookery/node -e \"fetch('http://127.0.0.1:8998/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))\""
    await until('the server to answer /healthz', 20_000, () => insideStatus(healthz).status === 0)

    // Deploy: the admin edits the config; publish with the installed CLI; the installed agent activates.
    writeFileSync(join(root, 'etc/rookery/agent.yaml'), agentYaml)
    inside('systemctl restart rookery-agent.service')
    const published = inside(`ROOKERY_TOKEN=${token} rookery publish /root/build-v1 --app web --tag v1 --server http://127.0.0.1:8998`)
    assert.match(published, /sha256/)
    await until('v1 to be current with its hook done', 60_000, () => existsSync(join(root, 'var/tmp/hook-done-v1')))
    assert.equal(readlinkSync(join(root, 'srv/web/current')), '/srv/web/releases/v1')
    const [user, groups, home, tag] = readFileSync(join(root, 'var/tmp/hook-started-v1'), 'utf8').trim().split(' ')
    assert.equal(user, 'hooker')
    assert.deepEqual(groups!.split(',').sort(), ['hooker', 'hookgrp'], 'the hook did not get the user\'s supplementary groups')
    assert.equal(home, '/home/hooker')
    assert.equal(tag, 'v1')

    // Upgrade while v2's hook runs: the agent's restart waits for the hook instead of killing it.
    inside(`ROOKERY_TOKEN=${token} rookery publish /root/build-v2 --app web --tag v2 --server http://127.0.0.1:8998`)
    await until('v2 hook to start', 60_000, () => existsSync(join(root, 'var/tmp/hook-started-v2')))
    const upgradeStarted = Date.now()
    inside(`dpkg -i /root/rookery_${upgradeVersion}_amd64.deb`, 120_000)
    assert.ok(existsSync(join(root, 'var/tmp/hook-done-v2')), 'the upgrade killed the running hook (or did not wait for it)')
    timings.push(`upgrade during an 8 s hook: ${((Date.now() - upgradeStarted) / 1000).toFixed(1)} s`)
    assert.equal(inside('rookery --version').trim(), upgradeVersion)
    assert.equal(inside('cat /etc/rookery/agent.yaml'), agentYaml, 'the upgrade changed the edited agent.yaml')
    await until('the upgraded agent to be active', 20_000, () => insideStatus('systemctl is-active rookery-agent.service').status === 0)
    assert.equal(readlinkSync(join(root, 'srv/web/current')), '/srv/web/releases/v2', 'v2 is not current after its hook finished')
    const state = JSON.parse(inside('cat /var/lib/rookery/agent/state.json')) as Record<string, unknown>
    assert.doesNotMatch(JSON.stringify(state), /"v2"[^}]*"failed/i, 'the agent recorded v2 as failed')

    // Boot: rookery-boot.service is the first deploy of a fresh host (agent --once); it succeeds only deployed.
    inside('systemctl stop rookery-agent.service && rm -rf /srv/web /var/lib/rookery/agent/* /var/tmp/hook-*')
    inside('systemctl restart rookery-boot.service', 120_000)
    assert.equal(inside('systemctl is-active rookery-boot.service').trim(), 'active')
    assert.equal(readlinkSync(join(root, 'srv/web/current')), '/srv/web/releases/v2', 'rookery-boot.service did not deploy the current release')
    assert.ok(existsSync(join(root, 'var/tmp/hook-done-v2')), 'rookery-boot.service finished before the hook did')
    // --once against a server that is not there: exit 5 and one line saying so.
    writeFileSync(join(root, 'var/tmp/unreachable.yaml'), agentYaml.replace('127.0.0.1:8998', '127.0.0.1:1').replace('/srv/web', '/srv/other'))
    const once = insideStatus('rookery agent --once --config /var/tmp/unreachable.yaml 2>&1 >/dev/null')
    assert.equal(once.status, 5, `agent --once against no server: ${once.output}`)
    assert.match(once.output, /^rookery: .*127\.0\.0\.1:1/m)

    // Purge: units stopped and gone, state and config removed; deployed releases and the user stay.
    inside('dpkg --purge rookery')
    const states = insideStatus('systemctl is-active rookery-agent.service rookery-server.service rookery-boot.service').output.split('\n')
    assert.deepEqual(states, ['inactive', 'inactive', 'inactive'], 'a rookery unit is still active after purge')
    assert.equal(insideStatus('pgrep -x node').status, 1, 'a rookery process survived the purge')
    for (const gone of ['var/lib/rookery', 'etc/rookery', 'usr/bin/rookery', 'usr/lib/systemd/system/rookery-agent.service', 'etc/systemd/system/multi-user.target.wants/rookery-agent.service']) {
      assert.ok(!existsSync(join(root, gone)), `/${gone} is still there after purge`)
    }
    assert.ok(existsSync(join(root, 'srv/web/releases/v2/index.html')), 'purge removed deployed releases')
    } catch (err) {
      // What the units said is what explains a failure here.
      const journal = insideStatus('journalctl --no-pager -n 40 -u rookery-agent -u rookery-server -u rookery-boot').output
      throw new Error(`${(err as Error).message}\n--- journal:\n${journal}`, { cause: err })
    }
  })
  stopContainer()
})
