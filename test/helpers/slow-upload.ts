import { request, type ClientRequest } from 'node:http'

/**
 * A publish upload (`PUT /api/v1/releases/<app>/<tag>`) whose body is sent in two halves, the second when
 * the test says: the release is "being uploaded" in between. `req.destroy()` abandons it.
 */
export class SlowUpload {
  readonly req: ClientRequest
  readonly answered: Promise<number>
  readonly #body: Buffer

  constructor(server: string, token: string, path: string, body: Buffer, sha256: string) {
    this.#body = body
    this.req = request(`${server}/api/v1/releases/${path}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'x-rookery-sha256': sha256, 'content-length': body.length, 'content-type': 'application/gzip' },
    })
    this.answered = new Promise((resolve, reject) => {
      this.req.on('response', (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      this.req.on('error', reject)
    })
    this.answered.catch(() => {}) // awaited by the tests that finish the upload; an abandoned one fails by design
    this.req.write(body.subarray(0, body.length >> 1)) // the first half: the server has started receiving
  }

  /** Sends the rest; the answer's status. */
  finish(): Promise<number> {
    this.req.end(this.#body.subarray(this.#body.length >> 1))
    return this.answered
  }
}
