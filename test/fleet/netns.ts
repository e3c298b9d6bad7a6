import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'

/**
 * A test network: one "switch" namespace holding a bridge, and one namespace per host joined to it by a
 * veth pair. Nothing is created in the machine's own namespace, so deleting the namespaces removes
 * everything (links, addresses, qdiscs) and the test can only reach addresses it made.
 *
 * Each host link is shaped in both directions with HTB at `rateMbit` (host egress on its own eth0, host
 * ingress on the switch-side veth), plus an optional one-way `delayMs` per direction (so two hosts see an
 * RTT of 4 x delayMs).
 */
export interface NetOptions {
  /** Namespace name prefix; a run deletes every namespace with this prefix left over by a crashed run. */
  prefix: string
  hosts: number
  rateMbit: number
  delayMs: number
  /** Queue of each shaped direction, in milliseconds of traffic at the link rate. */
  queueMs: number
  /** MTU of every link: 1500 (plain Ethernet) or e.g. 9001 (jumbo frames, as inside an AWS VPC). */
  mtu: number
  /** First three octets of the /24 used inside the namespaces, e.g. "10.77.0". */
  subnet: string
}

export interface Host {
  /** Index: 0 is the server, 1..N are agents. */
  index: number
  ns: string
  addr: string
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 })
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim()
    throw new Error(`${cmd} ${args.join(' ')} failed: ${stderr || (err as Error).message}`)
  }
}

/** Runs `ip` or `tc` commands inside namespace `ns` in one process (batch lines cannot switch namespaces). */
function batch(tool: 'ip' | 'tc', ns: string, lines: string[]): void {
  const res = spawnSync(tool, ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n', encoding: 'utf8', timeout: 60_000 })
  if (res.status === 0) return
  const err = res.stderr.trim() || res.error?.message || ''
  if (/netem/.test(lines.join('\n')) && /qdisc kind is unknown/.test(err)) {
    throw new Error('this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM), so links cannot get a delay: rerun with --delay 0')
  }
  throw new Error(`${tool} -n ${ns} -batch failed: ${err}`)
}

/**
 * Claims the prefix for this process with a lock file holding its pid, so a second run does not tear
 * down the namespaces of one still running; a lock whose process is gone was left by a crash.
 */
export function lockPrefix(prefix: string): () => void {
  const file = `/run/rookery-fleet-${prefix}.pid`
  try {
    const pid = Number(readFileSync(file, 'utf8'))
    if (pid && pid !== process.pid && isAlive(pid)) throw new Error(`another fleet run (pid ${pid}) is using the ${prefix}* namespaces: wait for it to end or stop it, then rerun`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  writeFileSync(file, String(process.pid))
  return () => rmSync(file, { force: true })
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export function namespacesWithPrefix(prefix: string): string[] {
  return run('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix))
}

/**
 * Kills whatever still runs in this prefix's namespaces (processes a crashed run of this test bed
 * started: nothing else can live there) and deletes the namespaces. Synchronous, so it also works from
 * an 'exit' handler.
 */
export function destroyNamespaces(prefix: string): void {
  for (const ns of namespacesWithPrefix(prefix)) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 10_000 }).stdout ?? ''
    for (const pid of pids.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {
        // already gone
      }
    }
    spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 })
  }
}

function qdiscLines(dev: string, opts: NetOptions): string[] {
  // A single HTB class is an exact rate limiter. The leaf is the queue: a byte FIFO holding queueMs of
  // traffic at the link rate (shallow, like a datacenter switch port, so RTTs stay short), or netem when
  // a delay is asked for (absent from some kernels: then this fails with tc's "qdisc kind is unknown").
  const bytes = Math.max(64 * 1024, Math.round((opts.rateMbit * 1e6 / 8) * (opts.queueMs / 1000)))
  const leaf = opts.delayMs > 0 ? `netem delay ${opts.delayMs}ms limit 100000` : `bfifo limit ${bytes}`
  return [
    `qdisc replace dev ${dev} root handle 1: htb default 1`,
    `class add dev ${dev} parent 1: classid 1:1 htb rate ${opts.rateMbit}mbit ceil ${opts.rateMbit}mbit quantum ${opts.mtu + 14}`,
    `qdisc add dev ${dev} parent 1:1 handle 10: ${leaf}`,
  ]
}

/** Host `index`'s eth0 address: locally administered (02:...), unique within the test network. */
function macOf(index: number): string {
  return `02:72:6b:00:${(index >> 8).toString(16).padStart(2, '0')}:${(index & 0xff).toString(16).padStart(2, '0')}`
}

/** Creates the switch and `hosts` + 1 host namespaces (index 0 for the server). Returns the hosts. */
export function createNetwork(opts: NetOptions): Host[] {
  if (opts.hosts + 11 > 254) throw new Error(`at most 243 hosts fit in ${opts.subnet}.0/24; use fewer hosts`)
  const sw = `${opts.prefix}sw`
  const hosts: Host[] = []
  for (let i = 0; i <= opts.hosts; i++) hosts.push({ index: i, ns: `${opts.prefix}h${i}`, addr: `${opts.subnet}.${i + 10}` })
  for (const ns of [sw, ...hosts.map((h) => h.ns)]) run('ip', ['netns', 'add', ns])
  const swLines = ['link add br0 type bridge', 'link set br0 up', 'link set lo up']
  for (const h of hosts) swLines.push(`link add v${h.index} mtu ${opts.mtu} type veth peer name eth0 netns ${h.ns} mtu ${opts.mtu} address ${macOf(h.index)}`, `link set v${h.index} master br0 up`)
  batch('ip', sw, swLines)
  // Every host knows every other host's MAC address from the start (permanent neighbour entries). The
  // kernel keeps one ARP table for all namespaces, with one size limit (net.ipv4.neigh.default.gc_thresh3,
  // 1024 entries): with 64 hosts, each learning 64 neighbours, it overflowed ("neighbor table overflow!"
  // in dmesg), and the hosts that came last could resolve no peer: their SYNs never left and 41-53 of
  // their connections sat in SYN-SENT (docs/performance.md, eleventh session). Real hosts each have their
  // own table. Permanent entries are exempt from that limit, and go with the namespaces.
  const neighbours = (self: Host) => hosts.filter((h) => h !== self).map((h) => `neigh replace ${h.addr} lladdr ${macOf(h.index)} dev eth0 nud permanent`)
  const swShaping: string[] = []
  for (const h of hosts) {
    batch('ip', h.ns, ['link set lo up', `addr add ${h.addr}/24 dev eth0`, 'link set eth0 up', ...neighbours(h)])
    batch('tc', h.ns, qdiscLines('eth0', opts))
    swShaping.push(...qdiscLines(`v${h.index}`, opts))
  }
  batch('tc', sw, swShaping)
  return hosts
}
