/**
 * A malware scanner. A version stays quarantined (scan state `scanning` or `infected`, never
 * downloadable) until a scanner says `clean`. A scanner that cannot answer yet throws: the version
 * stays `scanning` and is scanned again later (`UploadVerification.rescanPending`).
 *
 * Two kinds fit the port. A stream scanner (EICAR, a ClamAV daemon) is fed the object's bytes as
 * they stream past once. An object scanner (GuardDuty Malware Protection for S3) scans the object
 * where it lies and only reports: it reads nothing (`needsBytes` false) and answers from the
 * object's `target`.
 */
export interface ScanResult {
  verdict: 'clean' | 'infected';
  signature?: string;
}

/** The stored object a scan is about. */
export interface ScanTarget {
  nodeId: string;
  key: string;
}

export interface ScanSession {
  update(chunk: Buffer): void;
  finish(): Promise<ScanResult>;
  /**
   * The session's state as a string, so a verification that runs out of time can stop and a later
   * run `resume` where it stopped. Scanners without it cannot scan a file across runs.
   */
  checkpoint?(): string;
}

export interface Scanner {
  readonly name: string;
  /** False for a scanner that answers from the stored object and is fed nothing. */
  readonly needsBytes: boolean;
  start(target: ScanTarget): ScanSession;
  /** A session continuing from a `checkpoint()` of an earlier one over the same object. */
  resume?(target: ScanTarget, state: string): ScanSession;
}
