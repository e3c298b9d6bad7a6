// A peer that seeds a corrupted copy of a release: `node corrupt-peer.ts <file.torrent> <dir>`, where
// <dir>/<name in the torrent> has the right size and wrong bytes. It claims every piece (skipVerify), announces
// to the torrent's tracker with the same datacenter settings as rookery, and prints one JSON line per second
// with what it uploaded. For test/faults only.
import { readFile } from 'node:fs/promises'
import { createSwarmClient, whenListening } from '../../src/swarm/client.ts'

const [torrentFile, dir] = process.argv.slice(2)
if (!torrentFile || !dir) throw new Error('usage: corrupt-peer.ts <file.torrent> <dir>')
const client = createSwarmClient({ torrentPort: 0 })
client.on('error', (err: Error) => console.log(JSON.stringify({ msg: 'error', err: err.message })))
await whenListening(client, 0)
const torrent = client.add(await readFile(torrentFile), { path: dir, skipVerify: true })
torrent.on('warning', (err: Error) => console.log(JSON.stringify({ msg: 'warning', err: err.message })))
torrent.once('ready', () => console.log(JSON.stringify({ msg: 'seeding', port: client.torrentPort })))
setInterval(() => console.log(JSON.stringify({ msg: 'uploaded', uploaded: torrent.uploaded, peers: torrent.numPeers })), 1000)
process.on('SIGTERM', () => client.destroy(() => process.exit(0)))
