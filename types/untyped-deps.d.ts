// Types for dependencies that ship none.

declare module 'encodeurl' {
  /** Percent-encodes what a URL may not contain, leaving valid escapes. */
  function encodeUrl(url: string): string
  export = encodeUrl
}

declare module 'negotiator' {
  import type { IncomingMessage } from 'node:http'
  /** Content negotiation over a request's Accept-* headers. */
  class Negotiator {
    constructor(request: Pick<IncomingMessage, 'headers'>)
    /**
     * The `available` encodings the request accepts (q > 0), best first;
     * ties go to the order of `preferred`. Without Accept-Encoding, only
     * 'identity'.
     */
    encodings(available?: string[], options?: { preferred?: string[] }): string[]
    /** The best of the `available` media types the request's Accept takes, or undefined. */
    mediaType(available?: string[]): string | undefined
  }
  export = Negotiator
}

declare module 'vary' {
  import type { ServerResponse } from 'node:http'
  /** Adds `field` to the response's Vary header, once. */
  function vary(res: Pick<ServerResponse, 'getHeader' | 'setHeader'>, field: string | string[]): void
  export = vary
}
