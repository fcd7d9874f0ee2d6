// Types for dependencies that ship none.

declare module 'encodeurl' {
  /** Percent-encodes what a URL may not contain, leaving valid escapes. */
  function encodeUrl(url: string): string
  export = encodeUrl
}
