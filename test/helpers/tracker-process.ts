// A standalone BitTorrent HTTP tracker for the fault tests: `node tracker-process.ts <port>` listens on
// 127.0.0.1:<port> (bittorrent-tracker, HTTP only, 2 s announce interval) and prints one JSON line when it
// listens and one per announce. It tracks any torrent.
import { Server } from 'bittorrent-tracker'

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: tracker-process.ts <port>')
const server = new Server({ udp: false, ws: false, stats: false, http: true, interval: 2000 })
const print = (fields: Record<string, unknown>) => console.log(JSON.stringify({ time: new Date().toISOString(), ...fields }))
server.on('error', (err: Error) => print({ msg: 'error', err: err.message }))
server.on('warning', (err: Error) => print({ msg: 'warning', err: err.message }))
for (const event of ['start', 'update', 'complete', 'stop']) server.on(event, (addr: string) => print({ msg: 'announce', event, addr }))
;(server as unknown as { listen(port: number, host: string, cb: () => void): void }).listen(port, '127.0.0.1', () => print({ msg: 'tracker listening', port }))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
