import { Client } from 'bittorrent-tracker'

/**
 * Keeps a misbehaving HTTP tracker from crashing the process. bittorrent-tracker's HTTP tracker sends
 * each request from an async `_request` that its callers never await: it catches errors of the request
 * itself, but not of reading the answer's body (`await res.arrayBuffer()`). A tracker that sends its
 * headers and then stalls (an overloaded or half-broken one) makes that read fail when the request
 * times out (15 s), or when the torrent is stopped meanwhile; the rejection is unhandled and Node ends
 * the agent, or the server (whose origin seeder announces too), with it.
 *
 * Here such a failure goes to the request's callback instead, as a failed request does: the client
 * emits a 'warning', which the download's watchdog answers with a re-announce (src/swarm/download.ts).
 * After the tracker is destroyed nobody waits for the answer and the failure is dropped, as
 * bittorrent-tracker drops a late answer. A rejection after the callback ran (a bug in its handler) is
 * thrown again, as before.
 *
 * The HTTP tracker class is not exported by the package, so its prototype is patched when a client
 * first announces or scrapes through an instance of it: before any of its requests.
 */
let patched = false
const patchedPrototypes = new WeakSet<object>()

export function catchTrackerBodyErrors(): void {
  if (patched) return
  patched = true
  const { _announce: announce, scrape } = Client.prototype
  Client.prototype._announce = function (this: Client, opts: unknown) {
    patchHttpTrackers(this)
    return announce.call(this, opts)
  }
  Client.prototype.scrape = function (this: Client, opts?: unknown) {
    patchHttpTrackers(this)
    return scrape.call(this, opts)
  }
}

function patchHttpTrackers(client: Client): void {
  for (const tracker of client._trackers) {
    if (!/^https?:/.test(tracker.announceUrl ?? '')) continue
    const proto = Object.getPrototypeOf(tracker) as HttpTrackerPrototype
    if (patchedPrototypes.has(proto) || typeof proto._request !== 'function') continue
    patchedPrototypes.add(proto)
    const original = proto._request
    proto._request = function (this: { destroyed: boolean }, url: string, params: unknown, cb: RequestCallback) {
      let called = false
      const once: RequestCallback = (err, data) => {
        called = true
        cb(err, data)
      }
      void Promise.resolve(original.call(this, url, params, once)).catch((err: unknown) => {
        if (called) throw err
        if (this.destroyed) return
        once(err instanceof Error ? err : new Error(String(err)))
      })
    }
  }
}

type RequestCallback = (err: Error | null, data?: unknown) => void

interface HttpTrackerPrototype {
  _request(this: { destroyed: boolean }, url: string, params: unknown, cb: RequestCallback): unknown
}
