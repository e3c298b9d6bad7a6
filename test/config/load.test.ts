import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { agentConfigSchema } from '../../src/agent/config.ts'
import { loadConfigFile, parseConfigText } from '../../src/config/load.ts'
import { ConfigError, ExitCode } from '../../src/errors.ts'
import { serverConfigSchema } from '../../src/server/config.ts'

const EXAMPLES = new URL('../../config/', import.meta.url)

let tmp = ''
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'rookery-config-'))
})
after(() => rm(tmp, { recursive: true, force: true }))

/** A minimal valid agent config, one line per entry so line numbers in the cases are easy to count. */
function agentYaml(...extraAppLines: string[]): string {
  return ['server: http://rookery.example:8998', 'apps:', '  - name: web', '    deploy_to: /srv/web', ...extraAppLines, ''].join('\n')
}

/** Asserts that parsing fails with a ConfigError whose message contains every fragment. */
function assertConfigError(fn: () => unknown, fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`)
    assert.equal(err.code, 'ROOKERY_CONFIG')
    assert.equal(err.exitCode, ExitCode.usage)
    assert.ok(!err.message.includes('\n'), `message is one line: ${err.message}`)
    for (const fragment of fragments) assert.ok(err.message.includes(fragment), `${JSON.stringify(err.message)} lacks ${JSON.stringify(fragment)}`)
    return true
  })
}

describe('parseConfigText errors name file, line and key', () => {
  const agentCases: Array<{ name: string; text: string; expect: string[] }> = [
    {
      name: 'unknown key in an app',
      text: agentYaml('    keep_releases: 3', '', '    deploy-to: /srv/other'),
      expect: ['agent.yaml:7: ', 'apps[0].deploy-to: ', 'unknown key'],
    },
    {
      name: 'unknown top-level key (a typo of a required one)',
      text: ['sever: http://rookery.example:8998', 'apps:', '  - name: web', '    deploy_to: /srv/web'].join('\n'),
      expect: ['agent.yaml:1: sever: unknown key'],
    },
    {
      name: 'unknown key whose value is a block map points at the key line, not the value',
      text: agentYaml('    extra:', '      nested: 1'),
      expect: ['agent.yaml:5: apps[0].extra: unknown key'],
    },
    {
      name: 'wrong type',
      text: agentYaml('    keep_releases: five'),
      expect: ['agent.yaml:5: apps[0].keep_releases: ', 'expected number'],
    },
    {
      name: 'wrong type of a block value points at its key',
      text: ['server: http://rookery.example:8998', 'apps:', '  web:', '    deploy_to: /srv/web'].join('\n'),
      expect: ['agent.yaml:2: apps: ', 'expected array'],
    },
    {
      name: 'number out of range',
      text: agentYaml('    keep_releases: 0'),
      expect: ['agent.yaml:5: apps[0].keep_releases: '],
    },
    {
      name: 'bad cron expression',
      text: ['server: http://rookery.example:8998', 'schedule: "every minute"', 'apps:', '  - name: web', '    deploy_to: /srv/web'].join('\n'),
      expect: ['agent.yaml:2: schedule: not a valid cron expression'],
    },
    {
      name: 'bad duration',
      text: ['server: http://rookery.example:8998', 'apps:', '  - name: web', '    deploy_to: /srv/web', 'seed_window: 5 minutes'].join('\n'),
      expect: ['agent.yaml:5: seed_window: not a duration: "5 minutes"'],
    },
    {
      name: 'bad duration in an app',
      text: agentYaml('    hook_timeout: soon'),
      expect: ['agent.yaml:5: apps[0].hook_timeout: not a duration: "soon"'],
    },
    {
      name: 'relative deploy_to',
      text: ['server: http://rookery.example:8998', 'apps:', '  - name: web', '    deploy_to: srv/web'].join('\n'),
      expect: ['agent.yaml:4: apps[0].deploy_to: must be an absolute path'],
    },
    {
      name: 'duplicate app names',
      text: agentYaml('  - name: api', '    deploy_to: /srv/api', '  - name: web', '    deploy_to: /srv/web2'),
      expect: ['agent.yaml:7: apps[2].name: app web is listed twice'],
    },
    {
      name: 'missing required key in an app points at the app',
      text: ['server: http://rookery.example:8998', 'apps:', '  - name: web', '    keep_releases: 2'].join('\n'),
      expect: ['agent.yaml:3: apps[0].deploy_to: required'],
    },
    {
      name: 'missing required top-level key',
      text: ['server: http://rookery.example:8998', '# no apps'].join('\n'),
      expect: ['agent.yaml:1: apps: required'],
    },
    {
      name: 'empty app list',
      text: ['server: http://rookery.example:8998', 'apps: []'].join('\n'),
      expect: ['agent.yaml:2: apps: list at least one app'],
    },
    {
      name: 'not an http URL',
      text: ['# comment', 'server: ftp://rookery.example', 'apps:', '  - name: web', '    deploy_to: /srv/web'].join('\n'),
      expect: ['agent.yaml:2: server: not an http(s) URL'],
    },
    {
      name: 'unsafe app name',
      text: ['server: http://rookery.example:8998', 'apps:', '  - name: ../web', '    deploy_to: /srv/web'].join('\n'),
      expect: ['agent.yaml:3: apps[0].name: not a valid app name'],
    },
    {
      name: 'bad user name',
      text: agentYaml('    user: "root; rm -rf /"'),
      expect: ['agent.yaml:5: apps[0].user: not a user name'],
    },
    {
      name: 'invalid YAML syntax',
      text: ['server: http://rookery.example:8998', 'apps:', '  - name: web', '   deploy_to: [', ''].join('\n'),
      expect: ['agent.yaml:4: invalid YAML: '],
    },
    {
      name: 'duplicate YAML key',
      text: ['server: http://a.example', 'jitter: 1s', 'jitter: 2s', 'apps:', '  - name: web', '    deploy_to: /srv/web'].join('\n'),
      expect: ['agent.yaml:3: invalid YAML: ', 'unique'],
    },
    {
      name: 'a document that is not a map',
      text: '- just\n- a list\n',
      expect: ['agent.yaml:1: ', 'expected object'],
    },
  ]
  for (const c of agentCases) {
    test(`agent: ${c.name}`, () => assertConfigError(() => parseConfigText(c.text, 'agent.yaml', agentConfigSchema), c.expect))
  }

  const serverCases: Array<{ name: string; text: string; expect: string[] }> = [
    { name: 'listen without port', text: 'data_dir: /d\nlisten: localhost\n', expect: ['server.yaml:2: listen: not a listen address'] },
    { name: 'listen port out of range', text: 'listen: 0.0.0.0:70000\n', expect: ['server.yaml:1: listen: not a listen address'] },
    { name: 'short token', text: 'publish_tokens:\n  - abcdefghijklmnopq\n  - short\n', expect: ['server.yaml:3: publish_tokens[1]: tokens must be at least 16 characters'] },
    { name: 'bad size', text: 'max_upload_size: lots\n', expect: ['server.yaml:1: max_upload_size: not a size: "lots"'] },
    { name: 'negative size', text: 'origin_upload_limit: -5\n', expect: ['server.yaml:1: origin_upload_limit: '] },
    { name: 'too few peers', text: '\n\nmax_peers_per_swarm: 5\n', expect: ['server.yaml:3: max_peers_per_swarm: '] },
    { name: 'unknown key', text: 'listen: 0.0.0.0:80\nkeep: 3\n', expect: ['server.yaml:2: keep: unknown key'] },
  ]
  for (const c of serverCases) {
    test(`server: ${c.name}`, () => assertConfigError(() => parseConfigText(c.text, 'server.yaml', serverConfigSchema), c.expect))
  }
})

describe('loadConfigFile', () => {
  test('names the full path and line of a file on disk', async () => {
    const file = join(tmp, 'agent.yaml')
    await writeFile(file, agentYaml('    keep_releases: 3', '', '    deploy-to: /srv/other'))
    await assert.rejects(loadConfigFile(file, agentConfigSchema), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.ok(err.message.startsWith(`${file}:7: apps[0].deploy-to: `), err.message)
      return true
    })
  })

  test('a missing file is a ConfigError with a hint', async () => {
    const file = join(tmp, 'does-not-exist.yaml')
    await assert.rejects(loadConfigFile(file, agentConfigSchema), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.match(err.message, /cannot read config .*does-not-exist\.yaml: ENOENT/)
      assert.ok(err.hint)
      return true
    })
  })

  test('a directory is a ConfigError too', async () => {
    await assert.rejects(loadConfigFile(tmp, serverConfigSchema), (err: unknown) => err instanceof ConfigError && /EISDIR/.test(err.message))
  })

  test('reads and validates a good file', async () => {
    const file = join(tmp, 'good.yaml')
    await writeFile(file, agentYaml('    keep_releases: 2'))
    const config = await loadConfigFile(file, agentConfigSchema)
    assert.equal(config.apps[0]?.keep_releases, 2)
  })
})

describe('agentConfigSchema', () => {
  test('applies defaults', () => {
    const config = parseConfigText(agentYaml(), 'agent.yaml', agentConfigSchema)
    assert.deepEqual(config, {
      server: 'http://rookery.example:8998',
      state_dir: '/var/lib/rookery/agent',
      schedule: '*/10 * * * * *',
      jitter: 0,
      long_poll: 30_000,
      early_swarm_start: 120_000,
      seed_window: 300_000,
      torrent_port: 6881,
      stall_timeout: 60_000,
      request_pipeline: 100,
      webseed_fallback: 5000,
      retry_backoff: 15_000,
      max_release_size: 20 * 1024 ** 3,
      max_release_entries: 1_000_000,
      request_timeout: 10_000,
      trusted_keys: [],
      groups: [],
      report: true,
      report_interval: 60_000,
      host_id: hostname(),
      apps: [{ name: 'web', deploy_to: '/srv/web', keep_releases: 5, hook_timeout: 600_000 }],
    })
  })

  test('converts what users write', () => {
    const text = [
      'server: https://rookery.example/',
      'schedule: "0 */5 * * * *"',
      'jitter: 30s',
      'seed_window: 1h30m',
      'torrent_port: 0',
      'announce: [http://tracker.example:6969/announce]',
      'host_id: web-17',
      'apps:',
      '  - name: web',
      '    deploy_to: /srv/web',
      '    post_install: ./bin/post-install',
      '    hook_timeout: 90s',
      '    user: www-data',
      '  - name: api',
      '    deploy_to: /srv/api',
      '    keep_releases: 1',
    ].join('\n')
    const config = parseConfigText(text, 'agent.yaml', agentConfigSchema)
    assert.equal(config.server, 'https://rookery.example') // trailing slash removed
    assert.equal(config.schedule, '0 */5 * * * *')
    assert.equal(config.jitter, 30_000)
    assert.equal(config.seed_window, 5_400_000)
    assert.equal(config.torrent_port, 0)
    assert.deepEqual(config.announce, ['http://tracker.example:6969/announce'])
    assert.equal(config.host_id, 'web-17')
    assert.deepEqual(config.apps, [
      { name: 'web', deploy_to: '/srv/web', keep_releases: 5, post_install: './bin/post-install', hook_timeout: 90_000, user: 'www-data' },
      { name: 'api', deploy_to: '/srv/api', keep_releases: 1, hook_timeout: 600_000 },
    ])
  })

  test('the example config/agent.yaml parses cleanly', async () => {
    const text = await readFile(new URL('agent.yaml', EXAMPLES), 'utf8')
    const config = parseConfigText(text, 'config/agent.yaml', agentConfigSchema)
    assert.equal(config.server, 'http://127.0.0.1:8998')
    assert.equal(config.schedule, '*/10 * * * * *')
    assert.equal(config.seed_window, 300_000)
    assert.deepEqual(config.apps, [{ name: 'web', deploy_to: '/srv/web', keep_releases: 5, hook_timeout: 600_000 }])
    // "the other values shown are the defaults": the example equals the defaults plus server and apps
    const minimal = parseConfigText(agentYaml(), 'agent.yaml', agentConfigSchema)
    assert.deepEqual(config, { ...minimal, server: config.server })
  })
})

describe('serverConfigSchema', () => {
  const defaults = {
    listen: { host: '0.0.0.0', port: 8998 },
    public_url: 'http://127.0.0.1:8998',
    data_dir: '/var/lib/rookery/server',
    publish_tokens: [],
    agent_tokens: [],
    stale_after: 300_000,
    forget_after: 86_400_000,
    max_hosts: 100_000,
    keep_releases: 5,
    max_upload_size: 20 * 1024 ** 3,
    torrent_port: 6880,
    origin_upload_limit: 0,
    announce_interval: 30_000,
    max_peers_per_swarm: 20_000,
  }

  for (const text of ['', '# only a comment\n', '{}']) {
    test(`an empty config (${JSON.stringify(text)}) gives the defaults`, () => {
      assert.deepEqual(parseConfigText(text, 'server.yaml', serverConfigSchema), defaults)
    })
  }

  const listenCases: Array<[string, { host: string; port: number }]> = [
    ['127.0.0.1:9000', { host: '127.0.0.1', port: 9000 }],
    [':9000', { host: '0.0.0.0', port: 9000 }],
    ['"[::1]:9000"', { host: '::1', port: 9000 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
  ]
  for (const [listen, expected] of listenCases) {
    test(`listen ${listen}`, () => {
      assert.deepEqual(parseConfigText(`listen: ${listen}\n`, 'server.yaml', serverConfigSchema).listen, expected)
    })
  }

  test('converts sizes and durations', () => {
    const text = 'max_upload_size: 512MiB\norigin_upload_limit: 100MiB\nannounce_interval: 2m\npublic_url: http://seed.example:80//\n'
    const config = parseConfigText(text, 'server.yaml', serverConfigSchema)
    assert.equal(config.max_upload_size, 512 * 1024 ** 2)
    assert.equal(config.origin_upload_limit, 100 * 1024 ** 2)
    assert.equal(config.announce_interval, 120_000)
    assert.equal(config.public_url, 'http://seed.example:80')
  })

  test('the example config/server.yaml parses cleanly and shows the defaults', async () => {
    const text = await readFile(new URL('server.yaml', EXAMPLES), 'utf8')
    assert.deepEqual(parseConfigText(text, 'config/server.yaml', serverConfigSchema), defaults)
  })
})

describe('directories are checked at start', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['state_dir under a file', 'server: http://x:1\nstate_dir: /etc/hostname/state\napps:\n  - name: web\n    deploy_to: /tmp/rookery-web\n', /^agent\.yaml:2: state_dir: cannot use \/etc\/hostname\/state: ENOTDIR/],
    ['deploy_to that is a file', 'server: http://x:1\napps:\n  - name: web\n    deploy_to: /etc/hostname\n', /^agent\.yaml:4: apps\[0\]\.deploy_to: \/etc\/hostname exists and is not a directory/],
  ]
  for (const [name, text, message] of cases) {
    test(name, () => {
      assert.throws(() => parseConfigText(text, 'agent.yaml', agentConfigSchema), (err: Error) => message.test(err.message))
    })
  }
  test('a directory that does not exist yet is fine when it can be created', () => {
    const config = parseConfigText('server: http://x:1\nstate_dir: /tmp/rookery-not-yet/a/b\napps:\n  - name: web\n    deploy_to: /tmp/rookery-not-yet/srv\n', 'agent.yaml', agentConfigSchema)
    assert.equal(config.state_dir, '/tmp/rookery-not-yet/a/b')
  })
})
