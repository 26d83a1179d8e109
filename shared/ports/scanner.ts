/**
 * A malware scanner, fed the object's bytes as they stream past once. A version stays quarantined
 * (scan state `scanning` or `infected`, never downloadable) until a scanner says `clean`. A scanner
 * that cannot answer throws: the version stays `scanning` and is scanned again later.
 */
export interface ScanResult {
  verdict: 'clean' | 'infected';
  signature?: string;
}

export interface ScanSession {
  update(chunk: Buffer): void;
  finish(): Promise<ScanResult>;
}

export interface Scanner {
  readonly name: string;
  start(): ScanSession;
}
