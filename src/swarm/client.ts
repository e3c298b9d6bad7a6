import WebTorrent from 'webtorrent'
import { coalesceTorrentUpdates } from './coalesce-updates.ts'
import { skipWorkForCompleteTorrents } from './complete-torrent.ts'
import { pipePeersDirectly } from './direct-pipes.ts'
import { patchRarestPicker } from './picker.ts'
import { refuseSelfConnections } from './refuse-self.ts'
import { patchWireIo } from './wire-io.ts'
import { setRequestPipeline, shortenRequestPipelines } from './request-pipeline.ts'
import { catchTrackerBodyErrors } from './tracker-errors.ts'
import { ExitCode, RookeryError } from '../errors.ts'

patchRarestPicker()
refuseSelfConnections()
coalesceTorrentUpdates()
skipWorkForCompleteTorrents()
patchWireIo()
pipePeersDirectly()
shortenRequestPipelines()
catchTrackerBodyErrors()

/**
 * A webtorrent client set up for a datacenter swarm instead of the internet: peers come only from our
 * tracker (no DHT, local discovery or peer exchange), over TCP only (no uTP, no WebRTC), with no NAT
 * traversal. Protocol encryption is off fleet-wide: peers with different settings may fail to talk, and
 * integrity comes from piece hashes and the tarball's SHA-256, not from obfuscation.
 */
export interface SwarmClientOptions {
  /** TCP port peers connect to; 0 lets the system pick one. */
  torrentPort: number
  /** Outgoing connections per torrent. */
  maxConns?: number
  /** Upload cap in bytes per second; 0 or undefined: none. */
  uploadLimit?: number
  /** Seconds of each peer's rate to keep requested (src/swarm/request-pipeline.ts); default 0.1. */
  requestPipelineSeconds?: number
}

export function createSwarmClient(options: SwarmClientOptions): WebTorrent {
  const client = new WebTorrent({
    dht: false,
    lsd: false,
    utPex: false,
    utp: false,
    natUpnp: false,
    natPmp: false,
    secure: 0,
    torrentPort: options.torrentPort,
    maxConns: options.maxConns ?? 55,
    ...(options.uploadLimit ? { uploadLimit: options.uploadLimit } : {}),
  })
  if (options.requestPipelineSeconds !== undefined) setRequestPipeline(client, options.requestPipelineSeconds)
  return client
}

/** Resolves once the client listens for peers (so its port is known), rejects on a listen error. */
export function whenListening(client: WebTorrent, port: number): Promise<void> {
  if (client.listening) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const onError = (err: Error) =>
      reject(new RookeryError('ROOKERY_LISTEN', `cannot listen for peers on TCP port ${port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, {
        exitCode: ExitCode.usage,
        hint: 'another process uses it (a server and an agent on one host need different torrent_port values)',
      }))
    client.once('error', onError)
    client.once('listening', () => {
      client.off('error', onError)
      resolve()
    })
  })
}

/** Destroys the client and waits for its sockets to close. */
export function destroySwarmClient(client: WebTorrent): Promise<void> {
  return new Promise((resolve) => client.destroy(() => resolve()))
}
