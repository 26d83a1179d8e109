/**
 * The reference scanner: finds the EICAR anti-virus test string anywhere in the stream (also when
 * it straddles two chunks). Real deployments put a ClamAV or vendor adapter behind the same port.
 */
import type { Scanner, ScanResult, ScanSession, ScanTarget } from '../../ports/scanner.ts';

export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
const NEEDLE = Buffer.from(EICAR, 'latin1');

export class EicarScanner implements Scanner {
  readonly name = 'eicar';
  readonly needsBytes = true;

  start(): ScanSession {
    return this.session(Buffer.alloc(0), false);
  }

  /** The state is the last bytes seen (a needle may straddle the stop) and whether it was found. */
  resume(_target: ScanTarget, state: string): ScanSession {
    const { tail, found } = JSON.parse(state) as { tail: string; found: boolean };
    return this.session(Buffer.from(tail, 'base64'), found);
  }

  private session(seen: Buffer, wasFound: boolean): ScanSession {
    let tail = seen;
    let found = wasFound;
    return {
      update(chunk: Buffer) {
        if (found) return;
        const window = tail.length ? Buffer.concat([tail, chunk]) : chunk;
        if (window.includes(NEEDLE)) found = true;
        tail = Buffer.from(window.subarray(Math.max(0, window.length - (NEEDLE.length - 1))));
      },
      async finish(): Promise<ScanResult> {
        return found ? { verdict: 'infected', signature: 'EICAR-Test-File' } : { verdict: 'clean' };
      },
      checkpoint: () => JSON.stringify({ tail: tail.toString('base64'), found }),
    };
  }
}

/** A scanner that cannot be reached: what a crashed ClamAV daemon looks like. For tests and drills. */
export class UnavailableScanner implements Scanner {
  readonly name = 'unavailable';
  readonly needsBytes = true;
  start(): ScanSession {
    return {
      update() {},
      finish: () => Promise.reject(new Error('scanner unreachable')),
    };
  }
}
