/**
 * The reference scanner: finds the EICAR anti-virus test string anywhere in the stream (also when
 * it straddles two chunks). Real deployments put a ClamAV or vendor adapter behind the same port.
 */
import type { Scanner, ScanResult, ScanSession } from '../../ports/scanner.ts';

export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
const NEEDLE = Buffer.from(EICAR, 'latin1');

export class EicarScanner implements Scanner {
  readonly name = 'eicar';

  start(): ScanSession {
    let tail = Buffer.alloc(0);
    let found = false;
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
    };
  }
}

/** A scanner that cannot be reached: what a crashed ClamAV daemon looks like. For tests and drills. */
export class UnavailableScanner implements Scanner {
  readonly name = 'unavailable';
  start(): ScanSession {
    return {
      update() {},
      finish: () => Promise.reject(new Error('scanner unreachable')),
    };
  }
}
